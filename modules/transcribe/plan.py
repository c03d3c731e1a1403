"""One plan per transcription run: the options, after the preset and `--recipe auto`, turned in one
place into every setting the run is built from.

    command line --(options.py: presets)--> Options
        --(make_plan: a fork's checkpoint settings, auto.choose or auto.fixed, the rules between
           options)--> Plan: text, units, features, model, decoder, lm, training
        --> recipe.py builds each part from its piece of the plan and never reads the options again

The checkpoint records `plan.state_dict()` under "plan", and training prints `plan.describe()` as
its `[recipe]` lines, so what a run did can be read back from its log or from any checkpoint.

Each default has one home: the loop's (lr, warmup, epochs, amp, ...) in training.LoopConfig, the
transcription loop's in trainer.TrainConfig, decoding's in decoding.DecoderConfig, features' in
features.FeatureConfig, a model's in its config dataclass. The options read their defaults from
those classes (tests/test_plan.py checks every one), and `--recipe auto` fills only what is unset.
"""
from dataclasses import asdict, dataclass, fields, replace
from typing import Optional

from ..features import FeatureConfig
from ..options import config_from
from . import auto
from .decoding import SEQUENCE_DECODERS, DecoderConfig
from .feature_cache import cache_dir_from_option
from .models import RECOMMENDED_TRAINING, has_decoder, registered
from .normalize import TextConfig
from .options import (
    LM_ORDER_BY_UNIT,
    MODEL_OPTIONS,
    Options,
    conv_pairs,
    resolve,
    speed_factors,
    use_specaugment,
)
from .trainer import TrainConfig


# UnitPlan and LMPlan have no defaults of their own: theirs are the options' (--unit, --vocab_size,
# --lm_order, --lm_max_texts, --tune_lm), which no config class holds.
@dataclass
class UnitPlan:
    """The output text units the tokenizer is built from (a fork keeps its checkpoint's)."""
    kind: str
    vocab_size: int         # --unit spm only


@dataclass
class ModelPlan:
    """The acoustic model: its registry name and every field of its config."""
    name: str
    config: dict


@dataclass
class LMPlan:
    """The n-gram LM that beam search fuses: `order` 0 = none (`why_none` says why)."""
    order: int
    max_texts: int          # count at most this many training transcripts; 0 = all
    tune: bool              # choose lm_weight / lm_bonus on validation data after training
    why_none: str = ""


@dataclass
class Plan:
    text: TextConfig
    units: UnitPlan
    features: FeatureConfig
    model: ModelPlan
    decoder: DecoderConfig
    lm: LMPlan
    training: TrainConfig
    save_every: int          # epochs between epoch checkpoints
    recipe: Optional[auto.Choice] = None  # what --recipe auto chose and why; None: --recipe off
    forked: bool = False     # text, units, features and model come from the loaded checkpoint

    PARTS = ("text", "units", "features", "model", "decoder", "lm", "training")

    def state_dict(self) -> dict:
        """Plain data (what the checkpoint records)."""
        out = {part: asdict(getattr(self, part)) for part in self.PARTS}
        out["training"]["speed_factors"] = list(self.training.speed_factors)
        return {**out, "save_every": self.save_every, "forked": self.forked,
                "recipe": self.recipe.state_dict() if self.recipe else None}

    def describe(self) -> list:
        """The `[recipe]` lines training prints: the auto choice with its reasons, then each part."""
        lines = [f"[recipe] auto: {self.recipe.summary()}" if self.recipe else "[recipe] off: the kit's fixed defaults"]
        state = self.state_dict()
        for part in self.PARTS:
            values = state[part] if part != "model" else {"name": self.model.name, **self.model.config}
            lines.append(f"[recipe] {part}: " + ", ".join(f"{k} {v}" for k, v in values.items() if v != ""))
        lines.append(f"[recipe] checkpoints: every {self.save_every} epochs, 'best' on every improvement, the last "
                     f"epoch" + ("; text, units, features and model from the forked checkpoint" if self.forked else ""))
        return lines


def text_config(options: Options, loaded=None) -> TextConfig:
    """How transcripts are normalised (needed before the data is read, so before the plan); a fork keeps
    its checkpoint's."""
    if loaded is not None:
        return loaded.text_config
    return TextConfig(keep_spaces=not options.no_spaces, dual=options.dual, punctuation=options.punctuation)


def make_plan(options: Options, machine: auto.Machine, train_hours: float, loaded=None) -> Plan:
    """The plan for `options` on `machine` with `train_hours` of training audio; `loaded`, a forked
    checkpoint's SpeechRecognizer, fixes the text, units, features and model."""
    if loaded is not None:  # the checkpoint's model, whatever the options say
        options = replace(options, model=loaded.model_name)
    if options.recipe == "auto":
        options, choice = auto.choose(options, machine, train_hours, RECOMMENDED_TRAINING)
    else:
        options, choice = auto.fixed(options, machine), None
    options = resolve(options)
    if options.decoder in SEQUENCE_DECODERS and not has_decoder(options.model):
        raise SystemExit(f"--decoder {options.decoder} needs a model with a decoder, such as --model attention "
                         f"(got --model {options.model})")
    units = UnitPlan(loaded.tokenizer.kind if loaded is not None else options.unit, options.vocab_size)
    lm = lm_plan(options, units.kind)
    return Plan(
        text=text_config(options, loaded),
        units=units,
        features=loaded.feature_config if loaded is not None else feature_config(options),
        model=(ModelPlan(loaded.model_name, asdict(loaded.model.config)) if loaded is not None
               else ModelPlan(options.model, model_config(options))),
        decoder=decoder_config(options, lm),
        lm=lm,
        training=training_config(options),
        save_every=options.save_every or max(1, -(-options.epochs // 5)),
        recipe=choice,
        forked=loaded is not None,
    )


def feature_config(options: Options) -> FeatureConfig:
    return FeatureConfig(win_ms=options.win_ms, trim_db=options.trim_silence)


def model_config(options: Options) -> dict:
    """Every field of the chosen model's config: the model options given (not None) that it has, the
    conv front end's layout, the model's own defaults for the rest."""
    _, config_cls = registered(options.model)
    names = {f.name for f in fields(config_cls)}
    given = {k: getattr(options, k) for k in MODEL_OPTIONS if k in names and getattr(options, k) is not None}
    if options.conv_kernels or options.conv_strides:
        given.update(conv_kernels=conv_pairs(options.conv_kernels), conv_strides=conv_pairs(options.conv_strides))
    return asdict(config_cls(**given))


def lm_plan(options: Options, unit: str) -> LMPlan:
    """The LM over `unit` (the checkpoint's, on a fork): --lm_order, else the unit's default order; none
    without beam search, with --lm_weight 0, or for units the n-gram LM cannot count (spm)."""
    order = options.lm_order if options.lm_order is not None else LM_ORDER_BY_UNIT.get(unit, 0)
    plan = LMPlan(order=order, max_texts=options.lm_max_texts, tune=options.tune_lm)
    if order <= 0:
        why = "--lm_order 0" if options.lm_order is not None else f"no default LM order for --unit {unit}"
    elif options.decoder != "beam":
        why = f"--decoder {options.decoder} does not fuse an LM"
    elif options.lm_weight <= 0:
        why = "--lm_weight 0"
    elif unit not in LM_ORDER_BY_UNIT:
        why = f"the n-gram LM needs --unit char or jamo, not {unit}"
    else:
        return plan
    return replace(plan, order=0, why_none=why)


def decoder_config(options: Options, lm: LMPlan) -> DecoderConfig:
    """How the checkpoint will decode (a submit passes no options, so it decodes as trained). Mapped by
    hand, not by config_from: DecoderConfig's ctc_weight and batch_seconds are the joint decoder's CTC
    weight and the inference batch, while the options of those names are the training loss's weight
    and the training batch (--decode_ctc_weight, --infer_batch_seconds are the decoder's)."""
    return DecoderConfig(decoder=options.decoder, beam_width=options.beam_width, ctc_weight=options.decode_ctc_weight,
                         lm_weight=options.lm_weight if lm.order else 0.0, lm_bonus=options.lm_bonus,
                         infer_budget_s=options.infer_budget_s, merge_repeats=not options.no_merge_repeats,
                         batch_seconds=options.infer_batch_seconds)


def training_config(options: Options) -> TrainConfig:
    """The loop's settings: every TrainConfig field an option of the same name and type gives
    (config_from refuses a type mismatch), and these four, which options spell differently."""
    return config_from(TrainConfig, options, batch_size=options.batch_utterances,
                       specaugment=use_specaugment(options), speed_factors=speed_factors(options.speed_perturb),
                       feature_cache=cache_dir_from_option(options.feature_cache) or "")
