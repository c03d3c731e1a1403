"""Training a speech recognizer from a dataset folder, start to finish.

    read the dataset -> split 8:2 (no sentence or speaker on both sides) -> the plan (plan.py: every
    setting, from the options, the device and the corpus) -> tokenizer over every label -> model ->
    n-gram LM over the training transcripts -> train, saving every epoch and 'best' -> choose the LM
    fusion weights on validation -> save 'best' again (and 'avg')

After the plan is made, nothing here reads the options: each step takes its part of the plan, and
every checkpoint records the plan.

Everything the platform does (report, save, log) goes through `callbacks`; this file never
imports nsml.
"""
import time
from dataclasses import replace

import torch

from .. import distributed
from ..averaging import cpu_copy
from ..task_interface import Callbacks
from . import auto
from .corpus import read_training_set
from .fusion import FusionGrid, tune_lm_fusion
from .lm import CharNgramLM
from .options import Options
from .plan import LMPlan, Plan, make_plan, text_config
from .recognizer import SpeechRecognizer
from .split import split_by_names, split_by_sentence
from .tokenizers import build_tokenizer
from .trainer import SpeechTrainer


def build(options: Options, dataset_path: str, device: torch.device, loaded_state: dict = None,
          log=print) -> SpeechTrainer:
    """Everything training needs: data, split, the plan (printed as `[recipe]` lines), recognizer (new, or
    the forked checkpoint's), decoder, LM and the trainer (`trainer.recognizer`, `trainer.plan`), resumed
    when `loaded_state` is given."""
    loaded = SpeechRecognizer.from_state_dict(loaded_state["recognizer"], device) if loaded_state else None
    resume = loaded_state.get("trainer") if loaded_state else None

    # A forked session keeps its checkpoint's text settings, units and split.
    utterances = read_training_set(dataset_path, text_config(options, loaded), options.label_map,
                                   options.speaker_pattern, max_seconds=options.max_duration)
    if resume and resume.get("valid_files"):
        train_utts, valid_utts = split_by_names(utterances, resume["valid_files"])
    else:
        train_utts, valid_utts = split_by_sentence(utterances, options.valid_fraction, options.seed)
    log(f"[data] {len(train_utts)} train / {len(valid_utts)} validation utterances "
        f"({sum(u.duration for u in train_utts) / 60:.1f} / {sum(u.duration for u in valid_utts) / 60:.1f} min)")

    plan = make_plan(options, auto.Machine.of(device), sum(u.duration for u in train_utts) / 3600, loaded)
    for line in plan.describe():
        log(line)
    recognizer = loaded or new_recognizer(plan, [u.text for u in utterances], options.seed, device)
    recognizer.decoder_config = plan.decoder
    recognizer.lm = train_lm(plan.lm, recognizer, train_utts, options.seed, log)
    n_params = sum(p.numel() for p in recognizer.model.parameters())
    log(f"[model] {recognizer.model_name}: {n_params / 1e6:.2f} M parameters, "
        f"{len(recognizer.tokenizer)} units, device {device}")

    config = plan.training
    trainer = SpeechTrainer(recognizer, config, train_utts, valid_utts)
    trainer.plan = plan  # recorded in every checkpoint
    if len(trainer.scored_valid_utts) < len(valid_utts):
        log(f"[data] validation scores a fixed sample of {len(trainer.scored_valid_utts)} of the {len(valid_utts)} "
            f"validation utterances each epoch and at the end (--valid_max_utterances)")
    if resume is not None:  # continue epoch, optimizer and schedule
        trainer.load_state_dict(resume)
        log(f"[resume] from epoch {trainer.epoch}, step {trainer.step}, {trainer.elapsed() / 60:.1f} min trained")
        if resume.get("max_minutes", config.max_minutes) != config.max_minutes:
            log(f"[resume] --max_minutes {resume['max_minutes']:g} -> {config.max_minutes:g}: the budget counts the "
                "minutes trained before the fork, and the LR schedule stretches (or shrinks) to the new length")
        nothing_left = trainer.nothing_left()
        if nothing_left:
            log(f"[resume] nothing left to train: {nothing_left}")
    return trainer


def train(options: Options, dataset_path: str, device: torch.device, callbacks: Callbacks = Callbacks(),
          loaded_state: dict = None) -> SpeechRecognizer:
    """Train as `options` say on `dataset_path`; `loaded_state` (a forked checkpoint's) continues it."""
    log = callbacks.log
    trainer = build(options, dataset_path, device, loaded_state, log)
    recognizer = trainer.recognizer

    plan = trainer.plan

    def state():
        return {"recognizer": recognizer.state_dict(), "trainer": trainer.state_dict(), "plan": plan.state_dict()}

    best_weights = {}  # the weights saved as 'best', kept for tuning the LM fusion at the end
    every, saved = plan.save_every, set()

    def on_epoch_end(m):
        log(f"epoch {m['epoch']:3d}/{m['epochs']} | train_loss {m['train_loss']:.3f} | val_loss {m['val_loss']:.3f} | "
            f"val_cer {m['val_cer']:.3f} | {m['throughput']:.0f} audio-s/s | {m['minutes']:.1f} min | "
            f"eta {m['eta_minutes']:.1f} min")
        for hyp, ref in m["val_examples"][:1]:
            log(f"    ref: {ref}\n    hyp: {hyp}")
        callbacks.report(m["epoch"], epoch=m["epoch"], train_loss=m["train_loss"], val_loss=m["val_loss"],
                         val_cer=m["val_cer"], lr=m["lr"])
        if m["epoch"] % every == 0:
            callbacks.save(m["epoch"], state())
            saved.add(m["epoch"])
        if m["improved"]:
            callbacks.save("best", state())
            if plan.lm.tune or trainer.averaging:
                best_weights.update({k: v.detach().to("cpu", copy=True)
                                     for k, v in recognizer.model.state_dict().items()})

    trainer.fit(on_epoch_end)
    if trainer.epoch not in saved:  # the last epoch is always a checkpoint, wherever the budget ended it
        callbacks.save(trainer.epoch, state())
    main_process = distributed.is_main_process()
    # What is left (LM fusion tuning, averaging, the beam decode) is rank 0's alone: the other ranks
    # leave now rather than wait at a barrier for as long as it takes, and exit.
    trainer.leave_process_group()
    if not main_process:
        return recognizer
    log(f"[done] best val_cer {trainer.best:.4f} (greedy) after {trainer.epoch} epochs")
    if trainer.averaging and best_weights:  # 'best' gets the plain, EMA or averaged weights, whichever validates best
        if trainer.choose_final_weights(best_weights, log) != "plain":
            best_weights = cpu_copy(recognizer.model)
            callbacks.save("best", state())
    decoder = recognizer.decoder_config
    uses_lm = recognizer.lm is not None and decoder.decoder == "beam" and decoder.lm_weight > 0
    if best_weights and uses_lm:
        tune_fusion_of_best(recognizer, trainer, best_weights, callbacks, state)
    weights = trainer.final_weights if trainer.averaging else "final"  # what the model holds now
    if plan.training.average_last and trainer.recent_weights:
        recognizer.model.load_state_dict(trainer.averaged_weights())
        weights = "averaged"
        m = trainer.evaluate()
        log(f"[avg] last {len(trainer.recent_weights)} epochs averaged: val_cer {m['val_cer']:.4f}")
        callbacks.report(trainer.epoch, epoch=trainer.epoch, avg_val_cer=m["val_cer"])
        callbacks.save("avg", state())
    if recognizer.decoder_config.decoder != "greedy":
        start = time.time()
        m = trainer.evaluate(decoder=recognizer.decoder_config)
        log(f"[decode] {recognizer.decoder_config.decoder} (beam {recognizer.decoder_config.beam_width}, lm_weight "
            f"{recognizer.decoder_config.lm_weight}): val_cer {m['val_cer']:.4f} on the {weights} weights, "
            f"{len(trainer.scored_valid_utts)} validation utterances in {time.time() - start:.0f} s")
    return recognizer


def new_recognizer(plan: Plan, texts: list, seed: int, device: torch.device) -> SpeechRecognizer:
    """A fresh model and tokenizer as planned. The tokenizer sees every label's characters, validation
    included, so no character is ever dropped."""
    torch.manual_seed(seed)  # same initial weights in every run (and on every DDP rank)
    tokenizer = build_tokenizer(plan.units.kind, texts, vocab_size=plan.units.vocab_size)
    return SpeechRecognizer.create(plan.model.name, tokenizer, plan.features, plan.text, device, **plan.model.config)


def train_lm(lm: LMPlan, recognizer: SpeechRecognizer, train_utts: list, seed: int, log):
    """The planned n-gram LM over the units the model emits (syllables or jamo), from the training
    transcripts only: a language model that saw validation text would flatter its CER. None when not used."""
    if not lm.order:
        if lm.why_none and "lm_order 0" not in lm.why_none and "lm_weight 0" not in lm.why_none:
            log(f"[lm] no language model: {lm.why_none}")
        return None
    kind = recognizer.tokenizer.kind
    texts = ["".join(recognizer.tokenizer.split(u.text)) for u in train_utts]
    model = CharNgramLM.train(texts, order=lm.order, max_texts=lm.max_texts, seed=seed)
    sampled = f"a random {lm.max_texts} of " if 0 < lm.max_texts < len(texts) else ""
    log(f"[lm] {lm.order}-gram of {kind} units from {sampled}{len(texts)} training transcripts: "
        f"{model.num_ngrams()} n-grams")
    return model


def tune_fusion_of_best(recognizer, trainer, best_weights: dict, callbacks: Callbacks, state):
    """Choose lm_weight / lm_bonus for the 'best' weights on validation data and save 'best' again
    with them; the model is left with its final weights."""
    start, model = time.time(), recognizer.model
    final_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_weights)
    results = tune_lm_fusion(recognizer, trainer.valid_utts)
    (val_cer, weight, bonus), given = results[0], recognizer.decoder_config
    before = {(w, b): c for c, w, b in results}.get((given.lm_weight, given.lm_bonus))
    recognizer.decoder_config = replace(given, lm_weight=weight, lm_bonus=bonus)
    lowest = min(results)
    kept = f"; {lowest[1]}/{lowest[2]} scored {lowest[0]:.4f}, within noise" if lowest[0] < val_cer else ""
    callbacks.log(f"[lm] fusion tuned on {min(len(trainer.valid_utts), FusionGrid.max_utterances)} validation "
                  f"utterances in {time.time() - start:.0f} s: lm_weight {weight}, lm_bonus {bonus}, beam val_cer "
                  f"{val_cer:.4f}" + (f" (given {given.lm_weight}/{given.lm_bonus}: {before:.4f}{kept})"
                                      if before is not None else ""))
    # At the best epoch's step, with its epoch and greedy val_cer: this report is the summary the 'best'
    # checkpoint keeps (`nsml ps`, `nsml model ls`), which must still say which epoch it is and how good.
    callbacks.report(trainer.best_epoch, epoch=trainer.best_epoch, val_cer=trainer.best, tuned_lm_weight=weight,
                     tuned_lm_bonus=bonus, tuned_beam_val_cer=val_cer)
    callbacks.save("best", state())
    model.load_state_dict(final_weights)
