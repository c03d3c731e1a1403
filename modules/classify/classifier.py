"""The audio classifier: fixed-length clip -> multi-resolution log-mel -> K CNNs -> averaged probabilities.

Keyword spotting (one class per clip) and class distributions (DACON overlapped
speech) share it; training, validation and inference all go through it, and its
`state_dict` (plain types only) is everything a checkpoint needs to rebuild it.
An ensemble is simply K models whose softmax outputs are averaged.
"""
import os
import warnings
from dataclasses import asdict, dataclass, field

import torch
from tqdm import tqdm

from .. import __version__
from ..audio import AudioError, list_audio_files, load_audio
from ..features import FeatureConfig, MultiResolutionLogMel, SpecAugmentConfig, spec_augment
from .clips import SINGLE, fix_length
from .resnet import ResNetClassifier, ResNetClassifierConfig


def classifier_feature_config(n_mels: int = 40) -> FeatureConfig:
    return FeatureConfig(n_mels=n_mels, db=True, normalize="clip")


@dataclass
class ClassifierSpec:
    """What defines the classifier's input and output (shared by every ensemble member)."""
    classes: list
    kind: str = SINGLE                # SINGLE (one label) or DISTRIBUTION (probabilities)
    clip_seconds: float = 1.0
    fft_sizes: list = field(default_factory=lambda: [512])
    feature_config: FeatureConfig = field(default_factory=classifier_feature_config)
    model_config: ResNetClassifierConfig = field(default_factory=ResNetClassifierConfig)


class AudioClassifier:
    def __init__(self, spec: ClassifierSpec, device: torch.device):
        self.spec, self.device = spec, device
        self.featurizer = MultiResolutionLogMel(spec.feature_config, spec.fft_sizes).to(device)
        self.models = []  # ensemble members

    @property
    def clip_samples(self) -> int:
        return int(round(self.spec.clip_seconds * self.spec.feature_config.sample_rate))

    def new_model(self) -> ResNetClassifier:
        model = ResNetClassifier(self.spec.model_config, len(self.spec.fft_sizes), self.spec.feature_config.n_mels,
                                 len(self.spec.classes))
        model.to(self.device)
        self.models.append(model)
        return model

    def features(self, waves: torch.Tensor, augment: SpecAugmentConfig = None) -> torch.Tensor:
        """(B, N) clips -> (B, C, T, M) features (SpecAugment masks, same for every channel, if given)."""
        waves = waves.to(self.device, non_blocking=True)
        lengths = torch.full((len(waves),), waves.size(1), device=self.device)
        feats, frame_lengths = self.featurizer(waves, lengths)
        if augment is not None:
            # One seed for all channels: the same bands and spans are masked at every resolution.
            seed = int(torch.randint(2 ** 31, (1,)))
            feats = torch.stack([spec_augment(feats[:, ch], frame_lengths, augment,
                                              torch.Generator().manual_seed(seed))
                                 for ch in range(feats.size(1))], dim=1)
        return feats

    @torch.no_grad()
    def predict_proba(self, waves: torch.Tensor) -> torch.Tensor:
        """(B, n_classes) probabilities, the mean of the ensemble members' softmax outputs."""
        if not self.models:
            raise RuntimeError("the classifier has no trained model")
        feats = self.features(waves)
        probs = 0
        for model in self.models:
            model.eval()
            probs = probs + torch.softmax(model(feats).float(), dim=-1)
        return (probs / len(self.models)).cpu()

    def classify_files(self, paths: list, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
        """(len(paths), n_classes) probabilities; an unreadable file gets the uniform distribution."""
        probs = torch.full((len(paths), len(self.spec.classes)), 1.0 / len(self.spec.classes))
        for start in tqdm(range(0, len(paths), batch_size), desc="infer", unit="batch",
                          disable=None if progress else True):
            rows, waves = [], []
            for i in range(start, min(start + batch_size, len(paths))):
                try:
                    wave = torch.from_numpy(load_audio(paths[i], self.spec.feature_config.sample_rate))
                except AudioError as e:
                    warnings.warn(f"{e}; it gets the uniform distribution")
                    continue
                rows.append(i)
                waves.append(fix_length(wave, self.clip_samples, random_crop=False))
            if rows:
                probs[rows] = self.predict_proba(torch.stack(waves))
        return probs

    def records(self, names: list, probs: torch.Tensor) -> list:
        """Submission records: `{'filename', 'label'}` (single) or `{'filename', 'probs': {class: p}}`."""
        if self.spec.kind == SINGLE:
            return [{"filename": n, "label": self.spec.classes[int(p.argmax())]} for n, p in zip(names, probs)]
        return [{"filename": n, "probs": dict(zip(self.spec.classes, map(float, p)))} for n, p in zip(names, probs)]

    def classify_folder(self, folder: str, **options) -> list:
        """One record per file in `folder`, sorted by filename."""
        names = list_audio_files(folder)
        return self.records(names, self.classify_files([os.path.join(folder, n) for n in names], **options))

    def classify_path(self, path: str):
        """A folder gives its sorted records; a single file gives its record."""
        if os.path.isdir(path):
            return self.classify_folder(path)
        return self.records([os.path.basename(path)], self.classify_files([path], progress=False))[0]

    def state_dict(self) -> dict:
        spec = self.spec
        return {
            "kit_version": __version__,
            "classes": list(spec.classes),
            "kind": spec.kind,
            "clip_seconds": spec.clip_seconds,
            "fft_sizes": list(spec.fft_sizes),
            "feature_config": asdict(spec.feature_config),
            "model_config": asdict(spec.model_config),
            "models": [m.state_dict() for m in self.models],
        }

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device):
        spec = ClassifierSpec(classes=list(state["classes"]), kind=state["kind"], clip_seconds=state["clip_seconds"],
                              fft_sizes=list(state["fft_sizes"]), feature_config=FeatureConfig(**state["feature_config"]),
                              model_config=ResNetClassifierConfig(**state["model_config"]))
        classifier = cls(spec, device)
        for weights in state["models"]:
            classifier.new_model().load_state_dict(weights)
        return classifier
