"""Training an audio classifier (or an ensemble of K) from a dataset folder.

    read the clips -> split by speaker -> K members, each trained with its own seed and saved
    every epoch -> 'best': the ensemble so far whenever its validation score did not drop

Everything the platform does (report, save, log) goes through `callbacks`; this file never
imports nsml.
"""
import math
import warnings

import torch

from ..options import config_from
from ..tasks import Callbacks
from .classifier import AudioClassifier, ClassifierSpec, classifier_feature_config
from .clips import read_classification_set, split_by_group
from .options import Options, parse_list
from .resnet import ResNetClassifierConfig
from .trainer import ClassifierTrainConfig, ClassifierTrainer


def train(options: Options, dataset_path: str, device: torch.device, callbacks: Callbacks = Callbacks(),
          loaded_state: dict = None) -> AudioClassifier:
    """Train `options.ensemble` classifiers (more, if a loaded checkpoint already holds some)."""
    log = callbacks.log
    classes = parse_list(options.classes) or None
    clip_set = read_classification_set(dataset_path, classes, options.clip_seconds)
    train_clips, valid_clips = split_by_group(clip_set.clips, options.valid_fraction, options.seed)
    if not valid_clips or not train_clips:
        warnings.warn(f"too few speakers to hold out {options.valid_fraction:.0%}; validating on the training clips")
        train_clips = valid_clips = clip_set.clips
    log(f"[data] {len(train_clips)} train / {len(valid_clips)} validation clips, {len(clip_set.classes)} classes "
        f"({clip_set.kind}): {', '.join(clip_set.classes)}")
    if loaded_state is None:
        classifier = AudioClassifier(ClassifierSpec(
            classes=clip_set.classes, kind=clip_set.kind, clip_seconds=options.clip_seconds,
            fft_sizes=parse_list(options.fft_sizes, int), feature_config=classifier_feature_config(options.n_mels),
            model_config=ResNetClassifierConfig(width=options.width, stages=options.stages, blocks=options.blocks,
                                                dropout=options.dropout)), device)
    else:
        classifier = AudioClassifier.from_state_dict(loaded_state["classifier"], device)
        if classifier.spec.classes != clip_set.classes:
            raise SystemExit(f"the loaded classifier's classes {classifier.spec.classes} differ from the data's "
                             f"{clip_set.classes}")

    def state():
        return {"classifier": classifier.state_dict()}

    done = len(classifier.models)
    per_model_minutes = options.max_minutes / max(options.ensemble - done, 1) if options.max_minutes else 0.0
    best_score, epoch_offset = -math.inf, 0
    for member in range(done, options.ensemble):
        torch.manual_seed(options.seed + member)  # the member's seed decides its initial weights too
        model = classifier.new_model()
        if member == done:
            n_params = sum(p.numel() for p in model.parameters())
            log(f"[model] resnet classifier: {n_params / 1e6:.2f} M parameters x {options.ensemble}, "
                f"inputs {len(classifier.spec.fft_sizes)}x{classifier.spec.feature_config.n_mels} mels, "
                f"device {device}")
        config = config_from(ClassifierTrainConfig, options, max_minutes=per_model_minutes, seed=options.seed + member)
        trainer = ClassifierTrainer(classifier, model, config, train_clips, valid_clips)

        def on_epoch_end(m, member=member):
            step = epoch_offset + m["epoch"]
            kl = f" | val_kl {m['kl']:.4f}" if "kl" in m else ""
            log(f"model {member + 1} epoch {m['epoch']:3d}/{m['epochs']} | train_loss {m['train_loss']:.3f} | "
                f"val_loss {m['val_loss']:.3f} | val_acc {m['accuracy']:.3f} | val_f1 {m['macro_f1']:.3f}{kl} | "
                f"{m['throughput']:.0f} clips/s | {m['minutes']:.1f} min | eta {m['eta_minutes']:.1f} min")
            scores = {f"val_{k}": v for k, v in m.items() if k in ("accuracy", "macro_f1", "kl")}
            callbacks.report(step, epoch=step, train_loss=m["train_loss"], val_loss=m["val_loss"], lr=m["lr"],
                             **scores)
            callbacks.save(step, state())

        trainer.fit(on_epoch_end)
        epoch_offset += trainer.epoch
        if options.keep == "best":  # the member's last checkpoint then holds the weights it keeps
            callbacks.save(epoch_offset, state())
        scores = trainer.evaluate(classifier.models)
        single = trainer.evaluate()["score"]  # the weights this member keeps
        named = {k.removeprefix("val_"): v for k, v in scores.items() if k != "score"}
        log(f"[ensemble] {len(classifier.models)} model(s), validation: " + " | ".join(
            f"{k} {v:.4f}" for k, v in named.items()) + f" (score {scores['score']:.4f}; this model alone "
            f"{single:.4f})")
        callbacks.report(epoch_offset, ensemble_size=len(classifier.models),
                         **{f"ensemble_{k}": v for k, v in named.items()})
        if scores["score"] >= best_score:
            best_score = scores["score"]
            callbacks.save("best", state())
    log(f"[done] {len(classifier.models)} model(s), best ensemble validation score {best_score:.4f}")
    return classifier
