"""Training one audio classifier: cross-entropy for one label per clip, KL divergence for class
distributions, scored on validation clips by accuracy, macro-F1 (and KL).

The loop itself is modules/training.py. A member keeps its last epoch (the end of the cosine
schedule) or, with keep="best", its best validation epoch.
"""
import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import distributed
from ..features import SpecAugmentConfig
from ..loading import dataloader_options, loader_settings
from ..metrics import accuracy, kl_divergence, macro_f1
from ..samplers import BatchByCountSampler
from ..training import LoopConfig, Trainer
from .classifier import AudioClassifier
from .clips import SINGLE, ClipDataset, collate_clips


@dataclass
class ClassifierTrainConfig(LoopConfig):
    epochs: int = 30
    lr: float = 3e-3
    final_lr_ratio: float = 0.02
    batch_size: int = 64           # clips
    specaugment: bool = True
    keep: str = "last"             # weights a member keeps: the schedule's end ("last") or its best validation epoch


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """Cross-entropy against class indices, or KL(target || predicted) against distributions."""
    if kind == SINGLE:
        return F.cross_entropy(logits, targets)
    return F.kl_div(F.log_softmax(logits, dim=-1), targets, reduction="batchmean")


def classification_scores(probs: np.ndarray, targets: list, kind: str, n_classes: int) -> dict:
    """accuracy and macro-F1 (argmax against the label, or against the distribution's top class); KL for
    distributions. `score` is the one to select on, higher is better."""
    probs = np.asarray(probs)
    predicted = probs.argmax(1).tolist()
    expected = list(targets) if kind == SINGLE else np.asarray(targets).argmax(1).tolist()
    scores = {"accuracy": accuracy(predicted, expected), "macro_f1": macro_f1(predicted, expected, n_classes)}
    if kind == SINGLE:
        scores["score"] = scores["accuracy"]
    else:
        scores["kl"] = kl_divergence(np.asarray(targets), probs)
        scores["score"] = -scores["kl"]
    return scores


class ClassifierTrainer(Trainer):
    """Trains one ensemble member (`model`, already in `classifier.models`, initialised under
    `torch.manual_seed(config.seed)`) and keeps its last or its best validation epoch (`config.keep`)."""

    metric = "score"
    higher_is_better = True

    def __init__(self, classifier: AudioClassifier, model, config: ClassifierTrainConfig, train_clips, valid_clips):
        self.classifier = classifier
        spec = classifier.spec
        torch.manual_seed(config.seed)
        train_set = ClipDataset(train_clips, spec.clip_seconds, train=True)
        world = distributed.world_size()
        sampler = BatchByCountSampler(len(train_set), config.batch_size * world, seed=config.seed)
        if world > 1:
            sampler = distributed.ShardedBatchSampler(sampler, distributed.rank(), world)
        workers, pin_memory = loader_settings(classifier.device, config.num_workers)
        batch_bytes = 4 * train_set.length * config.batch_size  # float32 clips of a fixed length
        train_loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, collate_fn=collate_clips,
                                                   **dataloader_options(workers, pin_memory, batch_bytes))
        self.valid_clips = valid_clips
        self.valid_loader = torch.utils.data.DataLoader(
            ClipDataset(valid_clips, spec.clip_seconds, train=False), batch_size=2 * config.batch_size,
            collate_fn=collate_clips, **dataloader_options(workers, pin_memory, 2 * batch_bytes, persistent=False,
                                                           name="validation"))
        super().__init__(model, config, classifier.device, train_loader)
        self.augment = SpecAugmentConfig(freq_masks=2, freq_width=6, time_masks=2, time_width=0.1) \
            if config.specaugment else None
        self.best_weights = None

    def loss(self, batch):
        feats = self.classifier.features(batch["waves"], self.augment)
        with self.autocast():
            logits = self.net(feats)
        loss = classification_loss(logits.float(), batch["targets"].to(logits.device), self.classifier.spec.kind)
        return loss, len(batch["indices"])

    @torch.no_grad()
    def validation_probs(self, models) -> tuple:
        """(probabilities averaged over `models`, targets) on the validation clips (never augmented)."""
        for m in models:
            m.eval()
        probs, targets = [], []
        for batch in self.valid_loader:
            if batch is None:
                continue
            feats = self.classifier.features(batch["waves"])
            probs.append(sum(torch.softmax(m(feats).float(), -1) for m in models).cpu() / len(models))
            targets += batch["targets"].tolist()
        return torch.cat(probs).numpy(), targets

    def evaluate(self, models=None) -> dict:
        spec = self.classifier.spec
        probs, targets = self.validation_probs(models or [self.model])
        scores = classification_scores(probs, targets, spec.kind, len(spec.classes))
        logits = torch.log(torch.from_numpy(probs).clamp(min=1e-7))
        target_tensor = torch.tensor(targets, dtype=torch.long if spec.kind == SINGLE else torch.float32)
        scores["val_loss"] = float(classification_loss(logits, target_tensor, spec.kind))
        return scores

    def after_epoch(self, improved: bool):
        if improved and self.config.keep == "best":
            self.best_weights = copy.deepcopy(self.model.state_dict())

    def fit(self, on_epoch_end=None):
        """Train until `epochs` or the time budget; with `keep="best"`, then restore the best validation
        epoch's weights. The default keeps the end of the cosine schedule, where every member has
        converged alike: on a small validation set the best epoch is partly chance."""
        super().fit(on_epoch_end)
        if self.config.keep == "best" and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
