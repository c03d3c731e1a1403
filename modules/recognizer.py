"""The speech recognizer: features -> acoustic model -> CTC decoding -> text.

Training, validation and inference all run audio through this one object, and
its `state_dict` is everything a checkpoint needs to rebuild it.
"""
from dataclasses import asdict

import torch

from . import __version__
from .decoding import ctc_greedy_decode
from .features import FeatureConfig, LogMelFilterbank, SpecAugmentConfig, spec_augment
from .models import build_model, model_options
from .text import TextConfig
from .tokenizers import tokenizer_from_state


class SpeechRecognizer:
    def __init__(self, model_name: str, model, tokenizer, feature_config: FeatureConfig,
                 text_config: TextConfig, device: torch.device):
        self.model_name = model_name
        self.model = model.to(device)
        self.tokenizer = tokenizer
        self.feature_config = feature_config
        self.text_config = text_config
        self.featurizer = LogMelFilterbank(feature_config).to(device)
        self.device = device
        self.merge_repeats = True  # CTC decoding; False only to reproduce the 2022 baseline

    @classmethod
    def create(cls, model_name: str, tokenizer, feature_config: FeatureConfig, text_config: TextConfig,
               device: torch.device, **model_opts):
        model = build_model(model_name, feature_config.n_mels, len(tokenizer), **model_opts)
        return cls(model_name, model, tokenizer, feature_config, text_config, device)

    def forward(self, waves: torch.Tensor, wave_lengths: torch.Tensor, augment: SpecAugmentConfig = None,
                augment_rows: torch.Tensor = None):
        """Padded waveforms -> (B, T', V) log-probabilities and output lengths.

        `augment` applies SpecAugment to every utterance, or only to those where the
        (B,) bool `augment_rows` is True.
        """
        waves, wave_lengths = waves.to(self.device, non_blocking=True), wave_lengths.to(self.device)
        feats, lengths = self.featurizer(waves, wave_lengths)
        return self.forward_features(feats, lengths, augment, augment_rows)

    def forward_features(self, feats: torch.Tensor, lengths: torch.Tensor, augment: SpecAugmentConfig = None,
                         augment_rows: torch.Tensor = None):
        """Padded features (from `featurizer` or the feature cache) -> log-probabilities and lengths."""
        feats, lengths = feats.to(self.device, non_blocking=True), lengths.to(self.device)
        if augment is not None:
            augmented = spec_augment(feats, lengths, augment)
            feats = augmented if augment_rows is None else torch.where(
                augment_rows.to(feats.device)[:, None, None], augmented, feats)
        return self.model(feats, lengths)

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list:
        return [self.tokenizer.decode(ids) for ids in ctc_greedy_decode(log_probs, lengths,
                                                                       merge_repeats=self.merge_repeats)]

    @torch.no_grad()
    def transcribe_batch(self, waves: torch.Tensor, wave_lengths: torch.Tensor) -> list:
        self.model.eval()
        return self.decode(*self.forward(waves, wave_lengths))

    def state_dict(self) -> dict:
        return {
            "kit_version": __version__,
            "model_name": self.model_name,
            "model_options": model_options(self.model),
            "feature_config": asdict(self.feature_config),
            "text_config": asdict(self.text_config),
            "tokenizer": self.tokenizer.state_dict(),
            "model": self.model.state_dict(),
            "merge_repeats": self.merge_repeats,
        }

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device):
        tokenizer = tokenizer_from_state(state["tokenizer"])
        recognizer = cls.create(state["model_name"], tokenizer, FeatureConfig(**state["feature_config"]),
                                TextConfig(**state["text_config"]), device, **state["model_options"])
        recognizer.model.load_state_dict(state["model"])
        recognizer.merge_repeats = state.get("merge_repeats", True)
        recognizer.model.eval()
        return recognizer


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
