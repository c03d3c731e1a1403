"""The transcription task's options (`python main.py --help`), its presets and the rules between them.

Every option is a field of `Options` with its help and a default read from the config
that uses it (LoopConfig, TrainConfig, DecoderConfig, FeatureConfig, the model configs:
each default has one home); `resolve` fills the defaults that depend on other options
(the model's output frame for jamo). plan.py turns the options into the run's plan. A
preset only changes defaults, so an option given on the command line still wins, and
every setting of a preset is a plain option.

baseline2022 trains the way the 2022 official baseline did (KoSpeech's DeepSpeech2
recipe), so bench/run_suite.py can compare it with the kit inside one harness:
  - features: 80-bin log-mel with a 20 ms window, 10 ms hop (the kit: 25 ms window);
  - model: KoSpeech's conv front end, kernels (41, 11) and (21, 11) over (frequency, time),
    strides (2, 2) and (2, 1), 32 channels, Hardtanh, so time stride 2 (20 ms output frames),
    then 3 bidirectional GRU layers of 1024;
  - batches of 128 utterances by count, no duration bucketing;
  - the training list doubled: each epoch sees every utterance once clean and once as
    a SpecAugment copy, whatever the budget;
  - Adam, peak LR 1e-4, tri-stage schedule: warmup from lr/100 (KoSpeech's init_lr 1e-6),
    hold to half-way, exponential decay to 0.05 x peak (KoSpeech's final_lr_scale);
    KoSpeech's weight decay 1e-5 (an L2 term under Adam);
  - greedy CTC decoding WITHOUT merging repeated characters (the baseline's bug), no LM;
  - inference one file at a time.
Everything else (warmup length, gradient clipping, SpecAugment masks, validation split,
text units) is the kit's default: the KoSpeech warmup of 400 steps would never end
within the budgets the suite compares at on a CPU, so warmup is the kit's 8% of training.
"""
import argparse
import sys
from dataclasses import dataclass, fields, replace
from typing import Optional

from ..features import FeatureConfig
from ..options import TRAINING, TrainingOptions, argument_group, from_args, option
from ..options import add_arguments as add_dataclass_arguments
from ..training import LoopConfig
from .decoding import SEQUENCE_DECODERS, DecoderConfig
from .models import MODELS
from .models.conformer import ConformerConfig
from .models.deepspeech2 import DeepSpeech2Config
from .tokenizers import TOKENIZERS
from .trainer import DEFAULT_BATCH_SECONDS, MIN_AUGMENT_HOURS, TrainConfig

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


@dataclass
class Options(TrainingOptions):
    preset: Optional[str] = option(None, "a named set of defaults; baseline2022 trains as the 2022 official "
                                         "baseline did (KoSpeech's DeepSpeech2, modules/transcribe/options.py); "
                                         "options given still win", choices=["baseline2022"])
    recipe: str = option("auto", "auto: model, size, batch, LR, precision and loader workers chosen from the "
                                 "device, the corpus and the budget for every option not given (auto.py); off: "
                                 "the kit's fixed defaults", choices=["auto", "off"])
    # The loop's options that --recipe auto chooses when they are not given.
    # None = chosen by --recipe auto (auto.py), or the loop's default (LoopConfig) with --recipe off.
    lr: Optional[float] = option(None, f"peak learning rate (auto: {LoopConfig.lr:g}, or the model's own)", type=float)
    warmup_fraction: Optional[float] = option(None, "share of training spent warming the LR up (auto: "
                                                    f"{LoopConfig.warmup_fraction:g}, or the model's own)", type=float)
    amp: Optional[str] = option(None, "mixed precision (auto: bf16/fp16 on GPU, off on CPU)",
                                choices=["auto", "off", "bf16", "fp16"])
    num_workers: Optional[int] = option(None, "DataLoader worker processes (auto: by device)", type=int)
    # Model (docs/models.md). Unset size options keep the chosen model's own defaults (models/*.py).
    model: Optional[str] = option(None, "acoustic model (auto: by device, corpus and budget)", choices=sorted(MODELS))
    rnn_hidden: Optional[int] = option(None, f"deepspeech2 ({DeepSpeech2Config.rnn_hidden})", type=int)
    rnn_layers: Optional[int] = option(None, f"deepspeech2 ({DeepSpeech2Config.rnn_layers})", type=int)
    time_stride: Optional[int] = option(None, "model output frame = time_stride x 10 ms (deepspeech2 "
                                              f"{DeepSpeech2Config.time_stride}, conformer {ConformerConfig.time_stride}; "
                                              f"{JAMO_TIME_STRIDE} with --unit jamo)", type=int)
    size: Optional[str] = option(None, f"conformer, attention: small | medium | large ({ConformerConfig.size}; "
                                       "--conformer_size is the old name)", aliases=["--conformer_size"])
    d_model: Optional[int] = option(None, "conformer: width (overrides the size)", type=int)
    layers: Optional[int] = option(None, "conformer: blocks (overrides the size)", type=int)
    heads: Optional[int] = option(None, "conformer: attention heads (overrides the size)", type=int)
    conv_kernels: str = option("", "conv front end (freq x time) kernels, e.g. 41x11,21x11; empty = the kit's 3x3")
    conv_strides: str = option("", "conv front end strides, e.g. 2x2,2x1; empty = (2x2, 2x time_stride/2)")
    win_ms: float = option(FeatureConfig.win_ms, "log-mel feature window length in ms")
    # Decoding, recorded in the checkpoint: `nsml submit` passes no kit option, so it decodes as trained.
    decoder: str = option(DecoderConfig.decoder,
                          "beam: CTC prefix beam search + LM; attention: the attention model's own "
                          "beam search; joint: that search rescored with its CTC head's prefix scores",
                          choices=["greedy", "beam", *SEQUENCE_DECODERS])
    decode_ctc_weight: float = option(DecoderConfig.ctc_weight, "--decoder joint: score = (1 - w) x decoder + "
                                                                "w x CTC prefix score")
    beam_width: int = option(DecoderConfig.beam_width, "hypotheses kept per step by the beam searches")
    lm_order: Optional[int] = option(None, "n-gram order over the output units; 0 = no language model "
                                           f"(default: {LM_ORDER_BY_UNIT['char']} for char, "
                                           f"{LM_ORDER_BY_UNIT['jamo']} for jamo)", type=int)
    lm_max_texts: int = option(0, "the LM counts at most this many training transcripts (a seeded sample); "
                                  "0 = all (600,000 count in about 80 s: bench/README.md)")
    lm_weight: float = option(DecoderConfig.lm_weight, "weight of the n-gram LM's log-probability in beam search "
                                                       "(tuned on validation after training unless --no_tune_lm)")
    lm_bonus: float = option(DecoderConfig.lm_bonus, "per-unit insertion bonus")
    tune_lm: bool = option(True, "keep --lm_weight/--lm_bonus as given instead of choosing them on validation "
                                 "data after training (fusion.py)")
    valid_max_utterances: int = option(TrainConfig.valid_max_utterances,
                                       "validate each epoch, and beam-decode at the end, on a fixed random "
                                       "sample of at most this many validation utterances; 0 = all")
    infer_budget_s: float = option(DecoderConfig.infer_budget_s, "projected inference seconds above which a "
                                                                 "submit falls back to greedy decoding")
    no_merge_repeats: bool = option(False, "greedy CTC decoding without merging repeats (the 2022 baseline's bug)")
    infer_batch_seconds: float = option(DecoderConfig.batch_seconds,
                                        "padded audio seconds per inference batch; 0 = one file at a time")
    # Data and text (docs/data.md).
    unit: str = option("jamo", "output text unit: Hangul jamo, characters (syllables), or SentencePiece subwords",
                       choices=sorted(TOKENIZERS))
    vocab_size: int = option(500, "SentencePiece vocabulary size (--unit spm)")
    no_spaces: bool = option(False, "train without spaces (CER ignores them)")
    dual: str = option("spelling", "which side of a (spelling)/(pronunciation) transcription to keep",
                       choices=["spelling", "pronunciation"])
    punctuation: str = option("keep", "keep punctuation in the transcripts, or remove it", choices=["keep", "remove"])
    label_map: Optional[str] = option(None, "2019 layout: id->character file (default: *.labels beside the "
                                            "dataset or the code)")
    speaker_pattern: Optional[str] = option(None, "regex whose first group (or match) in a file name is its "
                                                  "speaker, for the split")
    trim_silence: float = option(FeatureConfig.trim_db,
                                 "trim leading/trailing audio TOP_DB below peak, in training and inference; "
                                 "0 = off", metavar="TOP_DB")
    max_duration: float = option(40.0, "training skips utterances longer than this many seconds, naming them (0 = no "
                                       "limit; inference transcribes every file whole); the competitions' segmented "
                                       "utterances are far shorter, and one 10-minute file made an epoch's loss "
                                       "jump from ~9 to 649", metavar="SECONDS")
    feature_cache: str = option("off", "on-disk feature cache: off, on (~/.cache/korean_asr_kit/features) or a folder")
    # Training (the loop's own options are in TrainingOptions).
    sortagrad: bool = option(TrainConfig.sortagrad, "first epoch from shortest to longest utterance")
    batch_seconds: Optional[float] = option(None, "padded audio seconds per batch (auto: CPU "
                                                  f"{DEFAULT_BATCH_SECONDS['cpu']:g}, GPU by memory)",
                                            type=float)
    batch_utterances: int = option(TrainConfig.batch_size, "utterances per batch instead of --batch_seconds")
    specaugment_copies: bool = option(TrainConfig.specaugment_copies,
                                      "train on each utterance once clean and once SpecAugmented per epoch")
    optimizer: str = option(LoopConfig.optimizer, "adam: the 2022 baseline's (weight decay as an L2 term)",
                            choices=["adamw", "adam"])
    lr_schedule: Optional[str] = option(None, "after warmup (auto: cosine)", choices=["cosine", "tri_stage"])
    specaugment: str = option("on", f"auto: on for budgets of {SPECAUGMENT_MIN_MINUTES:g} min or more (or no "
                                    "--max_minutes), off for shorter ones; it helped 5-minute runs on a 0.5 h "
                                    "corpus but hurt on sample_dataset", choices=["auto", "on", "off"])
    speed_perturb: str = option(",".join(map(str, TrainConfig.speed_factors)), "comma-separated speeds, one drawn per training batch; off = none")
    average_last: int = option(TrainConfig.average_last, "save 'avg': mean weights of the last N epochs")
    save_every: int = option(0, "save an epoch checkpoint every N epochs (0 = auto: every ceil(epochs / 5), so a run "
                                "keeps a handful of ~30 MB checkpoints); 'best' on every improvement and the last "
                                "epoch are always saved")
    ctc_weight: float = option(TrainConfig.ctc_weight,
                               "models with a decoder: ctc_weight x CTC + (1 - ctc_weight) x decoder loss")
    # Accuracy extras (issue 23; docs/models.md "Averaging, augmentation, intermediate CTC"): the waveform
    # augmentations are on from MIN_AUGMENT_HOURS of training audio, averaging and intermediate CTC off,
    # each as measured (bench/README.md, "Ablation at 20 minutes").
    ema_decay: float = option(TrainConfig.ema_decay,
                              "keep an exponential moving average of the weights (e.g. 0.999); at the end "
                              "'best' holds it if it validates better; 0 = off")
    average_best: int = option(TrainConfig.average_best,
                               "keep the N best epochs' weights by validation CER; at the end 'best' holds "
                               "their mean if it validates better; 0 = off")
    inter_ctc_weight: float = option(TrainConfig.inter_ctc_weight,
                                     "conformer/attention: (1 - w) x CTC + w x CTC of the middle block "
                                     "(intermediate CTC); 0 = off")
    self_condition: bool = option(ConformerConfig.self_condition,
                                  "conformer/attention: feed the middle block's CTC distribution back "
                                  "into the encoder (self-conditioned CTC; use with --inter_ctc_weight)")
    noise_prob: Optional[float] = option(None, "share of training utterances mixed with noise at a random SNR; 0 = off (auto: "
                                              f"{TrainConfig.noise_prob:g} from {MIN_AUGMENT_HOURS:g} h of training audio, else 0)",
                                     type=float)
    noise_snr: str = option(TrainConfig.noise_snr, "SNR range in dB of --noise_prob", metavar="LOW,HIGH")
    noise_dir: str = option(TrainConfig.noise_dir,
                            "folder of noise recordings for --noise_prob; empty = generated white, pink, "
                            "brown and babble noise")
    phone_prob: Optional[float] = option(None, "share of training utterances played through an 8 kHz phone channel; 0 = off (auto: "
                                              f"{TrainConfig.phone_prob:g} from {MIN_AUGMENT_HOURS:g} h of training audio, else 0)",
                                     type=float)
    phone_mulaw: bool = option(TrainConfig.phone_mulaw, "the phone channel without the 8-bit mu-law (G.711) coding it "
                                                        "applies by default")
    vtlp: Optional[float] = option(None, "vocal tract length perturbation: mel frequencies warped by a factor in "
                                         f"[1 - VTLP, 1 + VTLP] per utterance; 0 = off (auto: {TrainConfig.vtlp:g} from "
                                         f"{MIN_AUGMENT_HOURS:g} h of training audio, else 0)", type=float)


PRESETS = {
    "baseline2022": {
        "model": "deepspeech2",
        "win_ms": 20.0,
        "conv_kernels": "41x11,21x11",
        "conv_strides": "2x2,2x1",
        "time_stride": 2,
        "rnn_hidden": 1024,
        "rnn_layers": 3,
        "batch_utterances": 128,
        "specaugment_copies": True,
        "specaugment": "on",
        "optimizer": "adam",
        "lr": 1e-4,
        "weight_decay": 1e-5,
        "lr_schedule": "tri_stage",
        "decoder": "greedy",
        "lm_order": 0,
        "no_merge_repeats": True,
        "infer_batch_seconds": 0.0,
        "unit": "char",
        "speed_perturb": "off",
        "noise_prob": 0.0,
        "phone_prob": 0.0,
        "phone_mulaw": False,
        "vtlp": 0.0,
    },
}


# The sections of `--help`; every other option is a training one.
HELP_GROUPS = {
    "task and recipe": ["preset", "recipe"],
    "data": ["valid_fraction", "unit", "vocab_size", "no_spaces", "dual", "punctuation", "label_map",
                      "speaker_pattern", "trim_silence", "feature_cache", "win_ms"],
    "model": ["model", "rnn_hidden", "rnn_layers", "time_stride", "size", "d_model", "layers", "heads",
              "conv_kernels", "conv_strides"],
    "decoding": ["decoder", "decode_ctc_weight", "beam_width", "infer_budget_s", "no_merge_repeats",
                 "infer_batch_seconds"],
    "language model (LM)": ["lm_order", "lm_max_texts", "lm_weight", "lm_bonus", "tune_lm"],
}


def add_arguments(parser, argv=None):
    """The task's options; with `--preset NAME` in `argv`, that preset's values as their defaults."""
    add_dataclass_arguments(parser, Options, HELP_GROUPS)
    argument_group(parser, TRAINING).add_argument(
        "--no_specaugment", dest="specaugment", action="store_const", const="off", default=argparse.SUPPRESS,
        help="same as --specaugment off")
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--preset", choices=sorted(PRESETS))
    preset = first.parse_known_args(argv)[0].preset
    if preset:
        apply_preset(parser, preset)


def parse_options(argv=None) -> Options:
    """The options a command line gives, presets included (what main.py does, for tests and benchmarks)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser, argv)
    return from_args(Options, parser.parse_args(argv))


def apply_preset(parser, name: str):
    """Make preset `name`'s settings the parser's defaults (command-line options still win)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from: {', '.join(sorted(PRESETS))}")
    known = {a.dest for a in parser._actions}
    unknown = set(PRESETS[name]) - known
    if unknown:  # a renamed option must not silently drop out of a preset
        raise ValueError(f"preset {name!r} sets options the task does not have: {sorted(unknown)}")
    parser.set_defaults(**PRESETS[name])


def resolve(options: Options) -> Options:
    """Fill the defaults that depend on other options."""
    time_stride = options.time_stride
    if time_stride is None and options.unit == "jamo" and not options.conv_strides:
        time_stride = JAMO_TIME_STRIDE
    return replace(options, time_stride=time_stride)


def use_specaugment(options: Options) -> bool:
    if options.specaugment == "auto":
        return not options.max_minutes or options.max_minutes >= SPECAUGMENT_MIN_MINUTES
    return options.specaugment == "on"


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


# Options that configure the acoustic model, each named as the field of the model configs it sets
# (plan.model_config passes those the chosen model's config has).
MODEL_OPTIONS = ("rnn_hidden", "rnn_layers", "time_stride", "size", "d_model", "layers", "heads", "self_condition")
