"""NSML entry file: train a Korean speech recognizer, or load one and transcribe (submit).

On NSML:   nsml run -d DATASET -a "--max_minutes 60"   /   nsml submit SESSION best
Locally:   python main.py            (trains on ./sample_dataset through nsml_local)
"""
import argparse
import os
import sys
import time
import warnings
from dataclasses import fields, replace

import torch

try:
    import nsml
except ImportError:  # local run without `pip install -e nsml_local`: use the bundled stand-in
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "nsml_local"))
    import nsml

from modules import distributed
from modules.checkpoint import load_checkpoint, save_checkpoint
from modules.classifier import TASK as CLASSIFY, AudioClassifier
from modules.classifier_training import add_classifier_args, train_classifier
from modules.data import read_training_set, split_by_names, split_by_sentence
from modules.decoding import DecoderConfig
from modules.feature_cache import cache_dir_from_option
from modules.features import FeatureConfig
from modules.fusion import FusionGrid, tune_lm_fusion
from modules.inference import transcribe_files, transcribe_folder
from modules.lm import CharNgramLM
from modules.models import MODELS
from modules.presets import PRESETS, apply_preset
from modules.recognizer import SpeechRecognizer, default_device
from modules.text import TextConfig
from modules.tokenizers import TOKENIZERS, build_tokenizer
from modules.training import TrainConfig, Trainer

CHECKPOINT_FILE = "model.pt"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    # Reserved by NSML: fork and submit pass these; renaming them breaks both.
    p.add_argument("--mode", type=str, default="train", help="train, or test on `nsml submit` (reserved)")
    p.add_argument("--iteration", type=str, default="0", help="checkpoint to load on fork/submit (reserved)")
    p.add_argument("--pause", type=int, default=0, help="1 when NSML is loading a model (reserved)")
    # The kit's own options.
    p.add_argument("--task", type=str, default="transcribe", choices=["transcribe", CLASSIFY],
                   help="transcribe speech, or classify fixed-length clips (keywords, class distributions)")
    p.add_argument("--preset", type=str, default=None, choices=sorted(PRESETS),
                   help="a named set of defaults (modules/presets.py), e.g. baseline2022; options given still win")
    p.add_argument("--dataset_path", type=str, default=None, help="override nsml.DATASET_PATH")
    p.add_argument("--model", type=str, default="deepspeech2", choices=sorted(MODELS), help="see docs/models.md")
    # Model options: unset ones keep the chosen model's own defaults (modules/models/*.py).
    p.add_argument("--rnn_hidden", type=int, default=None, help="deepspeech2 (256)")
    p.add_argument("--rnn_layers", type=int, default=None, help="deepspeech2 (2)")
    p.add_argument("--time_stride", type=int, default=None,
                   help="model output frame = time_stride x 10 ms (deepspeech2 6, conformer 4; "
                        f"{JAMO_TIME_STRIDE} with --unit jamo)")
    p.add_argument("--conformer_size", type=str, default=None, help="conformer: small | medium | large (small)")
    p.add_argument("--d_model", type=int, default=None, help="conformer: width (overrides the size)")
    p.add_argument("--layers", type=int, default=None, help="conformer: blocks (overrides the size)")
    p.add_argument("--heads", type=int, default=None, help="conformer: attention heads (overrides the size)")
    # Decoding, recorded in the checkpoint: `nsml submit` passes no kit option, so it decodes as trained.
    p.add_argument("--decoder", type=str, default="beam", choices=["greedy", "beam", "attention", "joint"],
                   help="beam: CTC prefix beam search + LM; attention: the attention model's own beam search; "
                        "joint: that search rescored with its CTC head's prefix scores (--decode_ctc_weight)")
    p.add_argument("--decode_ctc_weight", type=float, default=DecoderConfig.ctc_weight,
                   help="--decoder joint: score = (1 - w) x decoder + w x CTC prefix score")
    p.add_argument("--beam_width", type=int, default=DecoderConfig.beam_width)
    p.add_argument("--lm_order", type=int, default=None,
                   help="n-gram order over the output units; 0 = no language model "
                        f"(default: {LM_ORDER_BY_UNIT['char']} for char, {LM_ORDER_BY_UNIT['jamo']} for jamo)")
    p.add_argument("--lm_max_texts", type=int, default=20000,
                   help="the LM counts at most this many training transcripts (a seeded sample): bounds its time and memory")
    p.add_argument("--lm_weight", type=float, default=DecoderConfig.lm_weight)
    p.add_argument("--lm_bonus", type=float, default=DecoderConfig.lm_bonus, help="per-unit insertion bonus")
    p.add_argument("--no_tune_lm", dest="tune_lm", action="store_false",
                   help="keep --lm_weight/--lm_bonus as given instead of choosing them on validation data "
                        "after training (modules/fusion.py)")
    p.add_argument("--infer_budget_s", type=float, default=DecoderConfig.infer_budget_s,
                   help="projected inference seconds above which a submit falls back to greedy decoding")
    p.add_argument("--conv_kernels", type=str, default="", help="conv front end (freq x time) kernels, "
                   "e.g. 41x11,21x11; empty = the kit's 3x3")
    p.add_argument("--conv_strides", type=str, default="", help="conv front end strides, e.g. 2x2,2x1; "
                   "empty = (2x2, 2x time_stride/2)")
    p.add_argument("--win_ms", type=float, default=FeatureConfig.win_ms, help="feature window length")
    # Data and text (docs/data.md).
    p.add_argument("--unit", type=str, default="jamo", choices=sorted(TOKENIZERS),
                   help="output text unit: Hangul jamo, characters (syllables), or SentencePiece subwords")
    p.add_argument("--vocab_size", type=int, default=500, help="SentencePiece vocabulary size (--unit spm)")
    p.add_argument("--no_spaces", action="store_true", help="train without spaces (CER ignores them)")
    p.add_argument("--dual", type=str, default=TextConfig.dual, choices=["spelling", "pronunciation"],
                   help="which side of a (spelling)/(pronunciation) transcription to keep")
    p.add_argument("--punctuation", type=str, default=TextConfig.punctuation, choices=["keep", "remove"])
    p.add_argument("--label_map", type=str, default=None,
                   help="2019 layout: id->character file (default: *.labels beside the dataset or the code)")
    p.add_argument("--speaker_pattern", type=str, default=None,
                   help="regex whose first group (or match) in a file name is its speaker, for the split")
    p.add_argument("--trim_silence", type=float, default=0.0, metavar="TOP_DB",
                   help="trim leading/trailing audio TOP_DB below peak, in training and inference; 0 = off")
    p.add_argument("--feature_cache", type=str, default="off",
                   help="on-disk feature cache: off, on (~/.cache/korean_asr_kit/features) or a folder")
    p.add_argument("--sortagrad", action="store_true", help="first epoch from shortest to longest utterance")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--max_minutes", type=float, default=0.0, help="training wall-clock budget; 0 = none")
    p.add_argument("--batch_seconds", type=float, default=0.0, help="padded audio seconds per batch; 0 = auto")
    p.add_argument("--batch_utterances", type=int, default=0, help="utterances per batch instead of --batch_seconds")
    p.add_argument("--specaugment_copies", action="store_true",
                   help="train on each utterance once clean and once SpecAugmented per epoch")
    p.add_argument("--optimizer", type=str, default=TrainConfig.optimizer, choices=["adamw", "adam"])
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--weight_decay", type=float, default=TrainConfig.weight_decay)
    p.add_argument("--lr_schedule", type=str, default=TrainConfig.lr_schedule, choices=["cosine", "tri_stage"])
    p.add_argument("--no_merge_repeats", action="store_true",
                   help="greedy CTC decoding without merging repeats (the 2022 baseline's bug)")
    p.add_argument("--infer_batch_seconds", type=float, default=300.0,
                   help="padded audio seconds per inference batch; 0 = one file at a time")
    p.add_argument("--heap_limit_mib", type=float, default=TrainConfig.heap_limit_mib,
                   help="training returns freed memory to the system above this resident size; 0 = never")
    p.add_argument("--num_workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--valid_fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--specaugment", type=str, default="on", choices=["auto", "on", "off"],
                   help=f"auto: on for budgets of {SPECAUGMENT_MIN_MINUTES:g} min or more (or no --max_minutes), "
                        "off for shorter ones; it helped 5-minute runs on a 0.5 h corpus but hurt on sample_dataset")
    p.add_argument("--speed_perturb", type=str, default="0.9,1.0,1.1",
                   help="comma-separated speeds, one drawn per training batch; off = none")
    p.add_argument("--no_specaugment", dest="specaugment", action="store_const", const="off",
                   default=argparse.SUPPRESS, help="same as --specaugment off")
    p.add_argument("--amp", type=str, default="auto", choices=["auto", "off", "bf16", "fp16"],
                   help="mixed precision; auto = bf16/fp16 on GPU, off on CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the model for training")
    p.add_argument("--average_last", type=int, default=0, help="save 'avg': mean weights of the last N epochs")
    p.add_argument("--ctc_weight", type=float, default=TrainConfig.ctc_weight, help="models with a decoder")
    p.add_argument("--device", type=str, default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    add_classifier_args(p)
    preset = p.parse_known_args(argv)[0].preset
    if preset:
        apply_preset(p, preset)
    args = p.parse_args(argv)
    if args.time_stride is None and args.unit == "jamo" and not args.conv_strides:
        args.time_stride = JAMO_TIME_STRIDE
    return args


# Jamo come ~2.5 per syllable, up to ~17 per second: at 60 ms per output frame fast speech has
# fewer frames than CTC needs, so jamo models emit every 40 ms.
JAMO_TIME_STRIDE = 4


# Default n-gram order per output unit: about two to three syllables of context either way
# (a Hangul syllable is 2-3 jamo).
LM_ORDER_BY_UNIT = {"char": 5, "jamo": 10}


# Measured on the bench corpus (0.5 h, 5 min of DeepSpeech2 on one core): without SpecAugment the
# best validation CER was 0.49 (test 0.49 with beam + LM), with it 0.71 (test 0.65); switched on
# half-way, 0.69. But on sample_dataset (8 min of audio, 100 epochs in 4 min) it overfitted without
# SpecAugment: ./run.sh's test CER went from 0.30 to 0.40. What matters is passes over the data, not
# minutes, so "auto" is an option and SpecAugment stays on by default.
SPECAUGMENT_MIN_MINUTES = 60.0


def use_specaugment(args) -> bool:
    if args.specaugment == "auto":
        return not args.max_minutes or args.max_minutes >= SPECAUGMENT_MIN_MINUTES
    return args.specaugment == "on"


def speed_factors(text: str) -> tuple:
    """'0.9,1.0,1.1' -> (0.9, 1.0, 1.1); '' or 'off' -> ()."""
    if text.strip().lower() in ("", "off", "none"):
        return ()
    try:
        factors = tuple(float(v) for v in text.split(","))
    except ValueError:
        sys.exit(f"--speed_perturb takes comma-separated numbers such as 0.9,1.0,1.1, not {text!r}")
    if any(not 0.5 <= f <= 2.0 for f in factors):
        sys.exit(f"--speed_perturb factors must lie in [0.5, 2.0], got {text!r}")
    return factors


def conv_pairs(text: str):
    """'41x11,21x11' -> [[41, 11], [21, 11]]; '' -> None (the model's default)."""
    return [[int(v) for v in pair.split("x")] for pair in text.split(",")] if text else None


class Kit:
    """What save/load/infer share: the recognizer (or, for --task classify, the classifier) and,
    while training, the trainer."""

    def __init__(self, device):
        self.device = device
        self.recognizer = None
        self.classifier = None
        self.trainer = None
        self.resume_state = None  # training state of a loaded checkpoint, applied when training starts
        self.infer_batch_seconds = 300.0  # 0: one file at a time


def bind_model(kit: Kit):
    def save(dir_path, **kwargs):
        if kit.classifier is not None:
            save_checkpoint({"task": CLASSIFY, "classifier": kit.classifier.state_dict()},
                            os.path.join(dir_path, CHECKPOINT_FILE))
            return
        payload = {"recognizer": kit.recognizer.state_dict()}
        if kit.trainer is not None:
            payload["trainer"] = kit.trainer.state_dict()
        save_checkpoint(payload, os.path.join(dir_path, CHECKPOINT_FILE))

    def load(dir_path, **kwargs):
        payload = load_checkpoint(os.path.join(dir_path, CHECKPOINT_FILE))
        if payload.get("task") == CLASSIFY:  # the checkpoint says which kind of model it holds
            kit.classifier = AudioClassifier.from_state_dict(payload["classifier"], kit.device)
            spec = kit.classifier.spec
            print(f"[load] {dir_path}: classifier, {len(kit.classifier.models)} model(s), "
                  f"{len(spec.classes)} classes ({spec.kind})", flush=True)
            return
        kit.recognizer = SpeechRecognizer.from_state_dict(payload["recognizer"], kit.device)
        kit.resume_state = payload.get("trainer")
        print(f"[load] {dir_path}: {kit.recognizer.model_name}, {len(kit.recognizer.tokenizer)} units", flush=True)

    def infer(path, **kwargs):
        """A folder gives `[{'filename', 'text'}, ...]` sorted by filename (2022 protocol);
        a single file gives its transcript (2019 per-file protocol). A classifier gives
        `{'filename', 'label'}` or `{'filename', 'probs': {class: p}}` records."""
        if kit.classifier is not None:
            return kit.classifier.classify_path(path)
        if kit.recognizer is None:
            raise RuntimeError("infer called before a model was loaded")
        if os.path.isdir(path):
            return transcribe_folder(kit.recognizer, path, batch_seconds=kit.infer_batch_seconds)
        return transcribe_files(kit.recognizer, [path], progress=False)[0]

    nsml.bind(save=save, load=load, infer=infer)


def dataset_root(args) -> str:
    root = args.dataset_path or nsml.DATASET_PATH
    if isinstance(root, (list, tuple)):  # NSML gives a list when a session has several datasets
        root = root[0]
    if not root or not os.path.isdir(root):
        sys.exit(f"dataset path {root!r} does not exist; pass --dataset_path or `nsml run -d DATASET`")
    return root


def build_trainer(kit: Kit, args) -> Trainer:
    """The recognizer (new, or the loaded one) and its Trainer, as `args` say."""
    if args.decoder in ("attention", "joint") and args.model != "attention":
        sys.exit(f"--decoder {args.decoder} needs --model attention (got --model {args.model})")
    if kit.recognizer is not None:  # forked session: the checkpoint's text and feature settings hold
        text_config = kit.recognizer.text_config
    else:
        text_config = TextConfig(keep_spaces=not args.no_spaces, dual=args.dual, punctuation=args.punctuation)
    utterances = read_training_set(dataset_root(args), text_config, args.label_map, args.speaker_pattern)
    if kit.resume_state and kit.resume_state.get("valid_files"):  # the split the session started with
        train_utts, valid_utts = split_by_names(utterances, kit.resume_state["valid_files"])
    else:
        train_utts, valid_utts = split_by_sentence(utterances, args.valid_fraction, args.seed)
    print(f"[data] {len(train_utts)} train / {len(valid_utts)} validation utterances "
          f"({sum(u.duration for u in train_utts) / 60:.1f} / {sum(u.duration for u in valid_utts) / 60:.1f} min)",
          flush=True)

    if kit.recognizer is None:
        torch.manual_seed(args.seed)  # same initial weights in every run (and on every DDP rank)
        # Every label's characters, validation included, so no character is ever dropped.
        tokenizer = build_tokenizer(args.unit, [u.text for u in utterances], vocab_size=args.vocab_size)
        model_opts = model_options_from_args(args)
        if args.conv_kernels or args.conv_strides:
            model_opts.update(conv_kernels=conv_pairs(args.conv_kernels), conv_strides=conv_pairs(args.conv_strides))
        features = FeatureConfig(win_ms=args.win_ms, trim_db=args.trim_silence)
        kit.recognizer = SpeechRecognizer.create(args.model, tokenizer, features, text_config, kit.device,
                                                 **model_opts)
    tokenizer = kit.recognizer.tokenizer  # a forked session keeps its checkpoint's units
    lm_order = args.lm_order if args.lm_order is not None else LM_ORDER_BY_UNIT.get(tokenizer.kind, 0)
    kit.recognizer.decoder_config = DecoderConfig(
        decoder=args.decoder, beam_width=args.beam_width, lm_weight=args.lm_weight if lm_order else 0.0,
        ctc_weight=args.decode_ctc_weight,
        lm_bonus=args.lm_bonus, infer_budget_s=args.infer_budget_s, merge_repeats=not args.no_merge_repeats)
    if args.decoder == "beam" and lm_order > 0 and args.lm_weight > 0 and tokenizer.kind not in LM_ORDER_BY_UNIT:
        print(f"[lm] the n-gram LM needs --unit char or jamo; beam search without LM for --unit {tokenizer.kind}")
    elif args.decoder == "beam" and lm_order > 0 and args.lm_weight > 0:
        # Training transcripts only: a language model that saw validation text would flatter its CER.
        # It counts the units the model emits (syllables or jamo), so fusion adds a score per emitted unit.
        lm_texts = ["".join(tokenizer.split(u.text)) for u in train_utts]
        kit.recognizer.lm = CharNgramLM.train(lm_texts, order=lm_order, max_texts=args.lm_max_texts,
                                              seed=args.seed)
        sampled = f"a random {args.lm_max_texts} of " if len(lm_texts) > args.lm_max_texts else ""
        print(f"[lm] {lm_order}-gram of {tokenizer.kind} units from {sampled}{len(lm_texts)} training "
              f"transcripts", flush=True)
    n_params = sum(p.numel() for p in kit.recognizer.model.parameters())
    print(f"[model] {kit.recognizer.model_name}: {n_params / 1e6:.2f} M parameters, "
          f"{len(kit.recognizer.tokenizer)} units, device {kit.device}", flush=True)

    config = TrainConfig(epochs=args.epochs, max_minutes=args.max_minutes, batch_seconds=args.batch_seconds,
                         batch_size=args.batch_utterances, optimizer=args.optimizer, lr=args.lr,
                         weight_decay=args.weight_decay, lr_schedule=args.lr_schedule,
                         specaugment_copies=args.specaugment_copies, num_workers=args.num_workers, seed=args.seed,
                         specaugment=use_specaugment(args), amp=args.amp, compile=args.compile,
                         average_last=args.average_last, ctc_weight=args.ctc_weight, sortagrad=args.sortagrad,
                         feature_cache=cache_dir_from_option(args.feature_cache) or "",
                         heap_limit_mib=args.heap_limit_mib, speed_factors=speed_factors(args.speed_perturb))
    kit.trainer = Trainer(kit.recognizer, config, train_utts, valid_utts)
    if kit.resume_state is not None:  # forked session: continue epoch, optimizer and schedule
        kit.trainer.load_state_dict(kit.resume_state)
        print(f"[resume] from epoch {kit.trainer.epoch}, step {kit.trainer.step}", flush=True)
    return kit.trainer


def train(kit: Kit, args):
    build_trainer(kit, args)
    best = {}  # the weights saved as 'best', kept for tuning the LM fusion at the end

    def on_epoch_end(m):
        if not distributed.is_main_process():  # one report and one checkpoint per epoch, from rank 0
            return
        print(f"epoch {m['epoch']:3d} | train_loss {m['train_loss']:.3f} | val_loss {m['val_loss']:.3f} | "
              f"val_cer {m['val_cer']:.3f} | {m['audio_per_second']:.0f} audio-s/s | {m['minutes']:.1f} min", flush=True)
        for hyp, ref in m["val_examples"][:1]:
            print(f"    ref: {ref}\n    hyp: {hyp}", flush=True)
        nsml.report(summary=True, scope=None, step=m["epoch"], epoch=m["epoch"], train_loss=m["train_loss"],
                    val_loss=m["val_loss"], val_cer=m["val_cer"], lr=m["lr"])
        nsml.save(m["epoch"])
        if m["improved"]:
            nsml.save("best")
            if args.tune_lm:
                best["weights"] = {k: v.detach().to("cpu", copy=True)
                                   for k, v in kit.recognizer.model.state_dict().items()}

    kit.trainer.fit(on_epoch_end)
    main_process = distributed.is_main_process()
    if main_process:
        print(f"[done] best val_cer {kit.trainer.best_cer:.4f} (greedy) after {kit.trainer.epoch} epochs", flush=True)
    decoder = kit.recognizer.decoder_config
    if main_process and best and kit.recognizer.lm is not None and decoder.decoder == "beam" and decoder.lm_weight > 0:
        tune_lm_fusion_of_best(kit, best["weights"])
    weights = "final"
    if args.average_last and kit.trainer.recent_weights:
        kit.recognizer.model.load_state_dict(kit.trainer.averaged_weights())
        weights = "averaged"
        m = kit.trainer.evaluate()
        if main_process:
            print(f"[avg] last {len(kit.trainer.recent_weights)} epochs averaged: val_cer {m['val_cer']:.4f}", flush=True)
            nsml.report(summary=True, scope=None, step=kit.trainer.epoch, avg_val_cer=m["val_cer"])
            nsml.save("avg")
    if kit.recognizer.decoder_config.decoder != "greedy" and main_process:
        m = kit.trainer.evaluate(decoder=kit.recognizer.decoder_config)
        print(f"[decode] {kit.recognizer.decoder_config.decoder} (beam {args.beam_width}, lm_weight "
              f"{kit.recognizer.decoder_config.lm_weight}): val_cer {m['val_cer']:.4f} on the {weights} weights", flush=True)


def tune_lm_fusion_of_best(kit: Kit, best_weights: dict):
    """Choose lm_weight / lm_bonus for the 'best' weights on validation data and save 'best' again
    with them; the model is left with its final weights."""
    start, model = time.time(), kit.recognizer.model
    final_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_weights)
    results = tune_lm_fusion(kit.recognizer, kit.trainer.valid_utts)
    (val_cer, weight, bonus), default = results[0], kit.recognizer.decoder_config
    before = {(w, b): c for c, w, b in results}.get((default.lm_weight, default.lm_bonus))
    kit.recognizer.decoder_config = replace(default, lm_weight=weight, lm_bonus=bonus)
    lowest = min(results)
    kept = f"; {lowest[1]}/{lowest[2]} scored {lowest[0]:.4f}, within noise" if lowest[0] < val_cer else ""
    print(f"[lm] fusion tuned on {min(len(kit.trainer.valid_utts), FusionGrid.max_utterances)} validation "
          f"utterances in {time.time() - start:.0f} s: lm_weight {weight}, lm_bonus {bonus}, beam val_cer "
          f"{val_cer:.4f}" + (f" (given {default.lm_weight}/{default.lm_bonus}: {before:.4f}{kept})"
                              if before is not None else ""), flush=True)
    nsml.report(summary=True, scope=None, step=kit.trainer.epoch, tuned_lm_weight=weight, tuned_lm_bonus=bonus,
                tuned_beam_val_cer=val_cer)
    nsml.save("best")
    model.load_state_dict(final_weights)


# The command-line options that configure speech models (other tasks' options never leak in).
ASR_MODEL_OPTIONS = ("rnn_hidden", "rnn_layers", "time_stride", "conformer_size", "d_model", "layers", "heads")


def model_options_from_args(args) -> dict:
    """The model options given on the command line that the chosen model's config has."""
    given = {"size" if k == "conformer_size" else k: getattr(args, k) for k in ASR_MODEL_OPTIONS
             if getattr(args, k, None) is not None}
    _, config_cls = MODELS[args.model]
    return {f.name: given[f.name] for f in fields(config_cls) if f.name in given}


def main(argv=None):
    args = parse_args(argv)
    warnings.simplefilter("always", UserWarning)  # one line per bad file, every time
    ddp_device = distributed.init_from_env()  # under torchrun: join the group, one device per rank
    device = torch.device(args.device) if args.device else (ddp_device or default_device())
    kit = Kit(device)
    kit.infer_batch_seconds = args.infer_batch_seconds
    bind_model(kit)
    if args.pause:
        nsml.paused(scope=locals())  # fork: loads and returns; submit: loads, infers, scores, exits
    if args.mode == "train" and args.task == CLASSIFY:
        train_classifier(kit, args, dataset_root(args))
    elif args.mode == "train":
        train(kit, args)
    distributed.shutdown()  # not on an error: a rank that failed exits and torchrun stops the others


if __name__ == "__main__":
    main()
