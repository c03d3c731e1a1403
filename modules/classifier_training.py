"""Training audio classifiers (`main.py --task classify`): K seeds in one session, probabilities averaged.

The epoch loop follows modules/training.py (AdamW, the shared warmup + cosine
schedule by progress = max(step fraction, time-budget fraction), clipping, tqdm,
validation every epoch); the loss is cross-entropy for one label per clip and
KL divergence for class distributions.
"""
import copy
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .classifier import AudioClassifier, ClassifierSpec, classifier_feature_config
from .clips import SINGLE, ClipDataset, collate_clips, read_classification_set, split_by_group
from .features import SpecAugmentConfig
from .metrics import accuracy, kl_divergence, macro_f1
from .models.resnet_classifier import ResNetClassifierConfig
from .training import budget_spent, training_progress, warmup_cosine_lr


@dataclass
class ClassifierTrainConfig:
    epochs: int = 30
    max_minutes: float = 0.0       # wall-clock budget for this model; 0 = none
    batch_size: int = 64           # clips
    lr: float = 3e-3
    weight_decay: float = 1e-2
    warmup_fraction: float = 0.08
    final_lr_ratio: float = 0.02
    grad_clip: float = 5.0
    specaugment: bool = True
    num_workers: int = 0
    seed: int = 0
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


class ClassifierTrainer:
    """Trains one ensemble member (`model`, already in `classifier.models`, initialised under
    `torch.manual_seed(config.seed)`) and keeps its last or its best validation epoch (`config.keep`)."""

    def __init__(self, classifier: AudioClassifier, model, config: ClassifierTrainConfig, train_clips, valid_clips):
        self.classifier, self.model, self.config = classifier, model, config
        spec = classifier.spec
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        self.train_loader = torch.utils.data.DataLoader(
            ClipDataset(train_clips, spec.clip_seconds, train=True), batch_size=config.batch_size, shuffle=True,
            generator=generator, collate_fn=collate_clips, num_workers=config.num_workers, drop_last=False)
        self.valid_clips = valid_clips
        self.valid_loader = torch.utils.data.DataLoader(
            ClipDataset(valid_clips, spec.clip_seconds, train=False), batch_size=2 * config.batch_size,
            collate_fn=collate_clips, num_workers=config.num_workers)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.total_steps = config.epochs * len(self.train_loader)
        self.augment = SpecAugmentConfig(freq_masks=2, freq_width=6, time_masks=2, time_width=0.1) \
            if config.specaugment else None
        self.epoch = self.step = 0
        self.best_score, self.best_weights = -math.inf, None
        self.start = time.time()

    def progress(self) -> float:
        return training_progress(self.step, self.total_steps, self.start, self.config.max_minutes)

    def out_of_time(self) -> bool:
        return budget_spent(self.start, self.config.max_minutes)

    def train_epoch(self) -> dict:
        self.model.train()
        kind = self.classifier.spec.kind
        total, count, clips, start = 0.0, 0, 0, time.time()
        # A live bar on a terminal; in a log file (NSML) a plain line a minute instead, as modules/training.py does.
        bar = tqdm(self.train_loader, desc=f"epoch {self.epoch + 1}", unit="batch", leave=False, disable=None)
        last_line = start
        for batch in bar:
            if batch is None:
                continue
            lr = warmup_cosine_lr(self.progress(), self.config)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            logits = self.model(self.classifier.features(batch["waves"], self.augment))
            loss = classification_loss(logits, batch["targets"].to(logits.device), kind)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.step += 1
            total, count, clips = total + loss.item(), count + 1, clips + len(batch["indices"])
            bar.set_postfix(loss=f"{total / count:.3f}", lr=f"{lr:.2e}")
            if bar.disable and time.time() - last_line > 60:
                last_line = time.time()
                print(f"  epoch {self.epoch + 1} step {count}/{len(self.train_loader)} loss {total / count:.3f} "
                      f"lr {lr:.2e}", flush=True)
            if self.out_of_time():
                break
        bar.close()
        return {"train_loss": total / max(count, 1), "clips_per_second": clips / max(time.time() - start, 1e-9),
                "lr": warmup_cosine_lr(self.progress(), self.config)}

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

    def fit(self, on_epoch_end=None):
        """Train until `epochs` or the time budget; with `keep="best"`, then restore the best validation
        epoch's weights. The default keeps the end of the cosine schedule, where every member has
        converged alike: on a small validation set the best epoch is partly chance."""
        while self.epoch < self.config.epochs and not self.out_of_time():
            metrics = self.train_epoch()
            metrics.update(self.evaluate())
            self.epoch += 1
            improved = metrics["score"] > self.best_score
            if improved:
                self.best_score, self.best_weights = metrics["score"], copy.deepcopy(self.model.state_dict())
            metrics.update(epoch=self.epoch, improved=improved, minutes=(time.time() - self.start) / 60)
            if on_epoch_end:
                on_epoch_end(metrics)
        if self.config.keep == "best" and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)


def add_classifier_args(parser):
    g = parser.add_argument_group("classification (--task classify)")
    g.add_argument("--classes", type=str, default="",
                   help="comma-separated keywords; other labels -> unknown, plus silence (default: every label)")
    g.add_argument("--clip_seconds", type=float, default=1.0, help="fixed input length: pad or crop")
    g.add_argument("--fft_sizes", type=str, default="512",
                   help="one log-mel channel per FFT size, same hop, e.g. 256,512,1024,2048")
    g.add_argument("--n_mels", type=int, default=40)
    g.add_argument("--width", type=int, default=ResNetClassifierConfig.width)
    g.add_argument("--stages", type=int, default=ResNetClassifierConfig.stages, help="depth: residual stages")
    g.add_argument("--blocks", type=int, default=ResNetClassifierConfig.blocks, help="residual blocks per stage")
    g.add_argument("--dropout", type=float, default=ResNetClassifierConfig.dropout)
    g.add_argument("--batch_size", type=int, default=ClassifierTrainConfig.batch_size)
    g.add_argument("--ensemble", type=int, default=1, help="models trained with seeds seed..seed+K-1, averaged")
    g.add_argument("--keep", choices=["last", "best"], default=ClassifierTrainConfig.keep,
                   help="each model keeps its last epoch (end of the cosine schedule) or its best validation epoch")


def _parse_list(text: str, cast=str) -> list:
    return [cast(x.strip()) for x in text.split(",") if x.strip()]


def train_classifier(kit, args, dataset_path: str):
    """Train `args.ensemble` classifiers (more, if a loaded checkpoint already holds some) and save the
    ensemble after every epoch (`nsml.save(epoch)`) and when a member finishes (`nsml.save('best')`)."""
    import nsml  # main.py has made it importable (the platform's, or the bundled stand-in)

    classes = _parse_list(args.classes) or None
    clip_set = read_classification_set(dataset_path, classes, args.clip_seconds)
    train_clips, valid_clips = split_by_group(clip_set.clips, args.valid_fraction, args.seed)
    if not valid_clips or not train_clips:
        warnings.warn(f"too few speakers to hold out {args.valid_fraction:.0%}; validating on the training clips")
        train_clips = valid_clips = clip_set.clips
    print(f"[data] {len(train_clips)} train / {len(valid_clips)} validation clips, {len(clip_set.classes)} classes "
          f"({clip_set.kind}): {', '.join(clip_set.classes)}", flush=True)
    if kit.classifier is None:
        kit.classifier = AudioClassifier(ClassifierSpec(
            classes=clip_set.classes, kind=clip_set.kind, clip_seconds=args.clip_seconds,
            fft_sizes=_parse_list(args.fft_sizes, int), feature_config=classifier_feature_config(args.n_mels),
            model_config=ResNetClassifierConfig(width=args.width, stages=args.stages, blocks=args.blocks,
                                                dropout=args.dropout)), kit.device)
    elif kit.classifier.spec.classes != clip_set.classes:
        raise SystemExit(f"the loaded classifier's classes {kit.classifier.spec.classes} differ from the data's "
                         f"{clip_set.classes}")
    classifier, done = kit.classifier, len(kit.classifier.models)
    per_model_minutes = args.max_minutes / max(args.ensemble - done, 1) if args.max_minutes else 0.0
    best_score, epoch_offset = -math.inf, 0
    for member in range(done, args.ensemble):
        torch.manual_seed(args.seed + member)  # the member's seed decides its initial weights too
        model = classifier.new_model()
        if member == done:
            n_params = sum(p.numel() for p in model.parameters())
            print(f"[model] resnet classifier: {n_params / 1e6:.2f} M parameters x {args.ensemble}, "
                  f"inputs {len(classifier.spec.fft_sizes)}x{classifier.spec.feature_config.n_mels} mels, "
                  f"device {kit.device}", flush=True)
        config = ClassifierTrainConfig(epochs=args.epochs, max_minutes=per_model_minutes, batch_size=args.batch_size,
                                       lr=args.lr, num_workers=args.num_workers, seed=args.seed + member,
                                       keep=args.keep)
        trainer = ClassifierTrainer(classifier, model, config, train_clips, valid_clips)

        def on_epoch_end(m, member=member):
            step = epoch_offset + m["epoch"]
            kl = f" | val_kl {m['kl']:.4f}" if "kl" in m else ""
            print(f"model {member + 1} epoch {m['epoch']:3d} | train_loss {m['train_loss']:.3f} | "
                  f"val_loss {m['val_loss']:.3f} | val_acc {m['accuracy']:.3f} | val_f1 {m['macro_f1']:.3f}{kl} | "
                  f"{m['clips_per_second']:.0f} clips/s | {m['minutes']:.1f} min", flush=True)
            report = {f"val_{k}": v for k, v in m.items() if k in ("accuracy", "macro_f1", "kl")}
            nsml.report(summary=True, scope=None, step=step, epoch=step, train_loss=m["train_loss"],
                        val_loss=m["val_loss"], lr=m["lr"], **report)
            nsml.save(step)

        trainer.fit(on_epoch_end)
        epoch_offset += trainer.epoch
        if args.keep == "best":  # the member's last checkpoint then holds the weights it keeps
            nsml.save(epoch_offset)
        scores = trainer.evaluate(classifier.models)
        single = trainer.evaluate()["score"]  # the weights this member keeps
        named = {k.removeprefix("val_"): v for k, v in scores.items() if k != "score"}
        print(f"[ensemble] {len(classifier.models)} model(s), validation: " + " | ".join(
            f"{k} {v:.4f}" for k, v in named.items()) + f" (score {scores['score']:.4f}; this model alone "
            f"{single:.4f})", flush=True)
        nsml.report(summary=True, scope=None, step=epoch_offset, ensemble_size=len(classifier.models),
                    **{f"ensemble_{k}": v for k, v in named.items()})
        if scores["score"] >= best_score:
            best_score = scores["score"]
            nsml.save("best")
    print(f"[done] {len(classifier.models)} model(s), best ensemble validation score {best_score:.4f}", flush=True)
