"""One plan per run (modules/transcribe/plan.py): every option's default is the plan's, every option
reaches the plan (or is a data option read before it), the checkpoint records the plan and the log
prints it, and no option is copied into a config with the wrong type."""
import os
from dataclasses import asdict, dataclass, fields

import pytest
import torch

from modules.features import FeatureConfig
from modules.options import config_from
from modules.task_interface import Callbacks
from modules.training import LoopConfig
from modules.transcribe import parse_options, recipe
from modules.transcribe.auto import Machine, fixed
from modules.transcribe.decoding import DecoderConfig
from modules.transcribe.models import registered
from modules.transcribe.options import LM_ORDER_BY_UNIT, MODEL_OPTIONS, Options, speed_factors
from modules.transcribe.plan import Plan, make_plan
from modules.transcribe.trainer import DEFAULT_BATCH_SECONDS, TrainConfig

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_dataset")
CPU = Machine("cpu", cpu_cores=2)
GPU = Machine("cuda", cpu_cores=8, gpus=1, gpu_memory_gib=80.0, bf16=True)

# Options the plan holds under another name or in another form: option -> its value in the plan.
CONVERTED = {
    "batch_utterances": lambda p: p.training.batch_size,
    "trim_silence": lambda p: p.features.trim_db,
    "decode_ctc_weight": lambda p: p.decoder.ctc_weight,
    "infer_batch_seconds": lambda p: p.decoder.batch_seconds,
    "no_merge_repeats": lambda p: not p.decoder.merge_repeats,
    "lm_max_texts": lambda p: p.lm.max_texts,
    "tune_lm": lambda p: p.lm.tune,
    "unit": lambda p: p.units.kind,
    "vocab_size": lambda p: p.units.vocab_size,
    "no_spaces": lambda p: not p.text.keep_spaces,
    "speed_perturb": lambda p: ",".join(map(str, p.training.speed_factors)),
    "specaugment": lambda p: "on" if p.training.specaugment else "off",
    "feature_cache": lambda p: "off" if not p.training.feature_cache else p.training.feature_cache,
    "model": lambda p: p.model.name,
}
# Options whose default (None or 0) means "decided later": the value the plan then holds.
DECIDED = {
    "save_every": lambda p, o: p.save_every == max(1, -(-o.epochs // 5)),
    "lm_order": lambda p, o: p.lm.order == LM_ORDER_BY_UNIT[o.unit],
    "conv_kernels": lambda p, o: p.model.config["conv_kernels"] is None,
    "conv_strides": lambda p, o: p.model.config["conv_strides"] is None,
}
# Read before the plan exists (the data decide --recipe auto's choice), or choosing how the plan is made.
BEFORE_THE_PLAN = {"preset", "recipe", "valid_fraction", "label_map", "speaker_pattern", "max_duration", "dual",
                   "punctuation"}


def plan_of(argv=(), machine=CPU, hours=1.0) -> Plan:
    return make_plan(parse_options(list(argv)), machine, hours)


def plan_values(plan: Plan) -> dict:
    """Every field of every part of the plan by name (the model's config included)."""
    values = {}
    for part in (plan.training, plan.decoder, plan.features, plan.text):
        values.update({f.name: getattr(part, f.name) for f in fields(part)})
    values.update(plan.model.config)
    return values


@pytest.mark.parametrize("recipe_option", ["off", "auto"])
def test_every_options_default_is_the_value_the_plan_uses(recipe_option):
    defaults = parse_options(["--recipe", recipe_option])
    plan = make_plan(defaults, CPU, 1.0)
    by_name = plan_values(plan)
    for model in ("conformer", "attention"):  # the model options DeepSpeech2's config lacks
        other = make_plan(parse_options(["--recipe", recipe_option, "--model", model]), CPU, 1.0).model.config
        by_name.update({k: v for k, v in other.items() if k in MODEL_OPTIONS and k not in by_name})
    unchecked = []
    for f in fields(Options):
        default = getattr(defaults, f.name)
        if f.name in CONVERTED:
            assert CONVERTED[f.name](plan) == (default if default is not None else plan.model.name), f.name
        elif f.name in DECIDED:
            assert DECIDED[f.name](plan, defaults), f.name
        elif f.name in by_name:
            if default is None:  # chosen by --recipe auto or the loop's / the model's own default
                continue
            assert by_name[f.name] == default, f"--{f.name}: option {default!r}, plan {by_name[f.name]!r}"
        elif f.name not in BEFORE_THE_PLAN:
            unchecked.append(f.name)
    assert not unchecked, f"options the plan does not hold (add them to the plan, or to this test's tables): " \
                          f"{unchecked}"


def test_unset_options_take_their_one_home_default_under_recipe_off():
    plan = plan_of(["--recipe", "off"])
    training = plan.training
    assert (training.lr, training.warmup_fraction, training.lr_schedule, training.amp, training.num_workers) == \
        (LoopConfig.lr, LoopConfig.warmup_fraction, LoopConfig.lr_schedule, LoopConfig.amp, LoopConfig.num_workers)
    assert training.batch_seconds == DEFAULT_BATCH_SECONDS["cpu"]
    assert make_plan(parse_options(["--recipe", "off"]), GPU, 1.0).training.batch_seconds == DEFAULT_BATCH_SECONDS["cuda"]
    # the model's own sizes where no option is given
    assert plan.model.name == "deepspeech2"
    model_defaults = asdict(registered("deepspeech2")[1]())
    assert plan.model.config["rnn_hidden"] == model_defaults["rnn_hidden"]
    # and --recipe auto on a CPU picks the same loop defaults
    auto = plan_of([]).training
    assert (auto.lr, auto.warmup_fraction, auto.batch_seconds) == (LoopConfig.lr, LoopConfig.warmup_fraction,
                                                                    DEFAULT_BATCH_SECONDS["cpu"])


def test_the_plan_carries_what_the_options_say():
    plan = plan_of(["--model", "conformer", "--size", "medium", "--unit", "char", "--lm_weight", "0.5",
                    "--speed_perturb", "off", "--specaugment", "off", "--noise_prob", "0.3", "--win_ms", "20",
                    "--no_spaces", "--batch_seconds", "45", "--lr", "1e-3"])
    assert (plan.model.name, plan.model.config["size"], plan.model.config["d_model"]) == ("conformer", "medium", 256)
    assert (plan.units.kind, plan.lm.order, plan.decoder.lm_weight) == ("char", LM_ORDER_BY_UNIT["char"], 0.5)
    assert (plan.training.speed_factors, plan.training.specaugment, plan.training.noise_prob) == ((), False, 0.3)
    assert (plan.features.win_ms, plan.text.keep_spaces) == (20.0, False)
    assert (plan.training.batch_seconds, plan.training.lr) == (45.0, 1e-3)
    assert plan.recipe is not None and "lr" not in plan.recipe.settings  # given: not chosen


def test_the_old_option_name_still_works():
    assert parse_options(["--conformer_size", "large"]).size == "large"
    assert plan_of(["--model", "conformer", "--conformer_size", "medium"]).model.config["size"] == "medium"


def test_no_language_model_says_why():
    spm = plan_of(["--unit", "spm", "--lm_order", "4"])
    assert spm.lm.order == 0 and "char or jamo" in spm.lm.why_none and spm.decoder.lm_weight == 0.0
    greedy = plan_of(["--decoder", "greedy"])
    assert greedy.lm.order == 0 and "greedy" in greedy.lm.why_none
    assert plan_of(["--lm_order", "0"]).lm.why_none == "--lm_order 0"
    with pytest.raises(SystemExit, match="needs a model with a decoder"):
        plan_of(["--model", "deepspeech2", "--decoder", "joint"])


def test_every_model_option_names_a_field_of_some_model_config():
    from modules.transcribe.models import MODELS
    config_names = set().union(*({f.name for f in fields(c)} for _, c in MODELS.values()))
    assert set(MODEL_OPTIONS) <= config_names
    assert set(MODEL_OPTIONS) <= {f.name for f in fields(Options)}


def test_config_from_refuses_an_option_of_another_type():
    @dataclass
    class Config:
        specaugment: bool = True
        lr: float = 1e-3
        name: str = "x"

    @dataclass
    class Given:
        specaugment: str = "on"
        lr: int = 1   # an int where a float goes is fine
        name: str = "y"

    with pytest.raises(TypeError, match="specaugment"):
        config_from(Config, Given())
    assert config_from(Config, Given(), specaugment=True) == Config(True, 1, "y")
    with pytest.raises(TypeError, match="lr"):
        config_from(Config, Given(lr=None), specaugment=True)  # an option left unset is not copied as None


def test_the_checkpoint_records_the_plan_and_the_log_prints_it():
    lines, saved = [], {}
    callbacks = Callbacks(log=lines.append, save=lambda name, state: saved.__setitem__(str(name), state),
                          report=lambda step, **scalars: None)
    options = parse_options(["--rnn_hidden", "16", "--rnn_layers", "1", "--epochs", "1", "--lm_order", "0",
                             "--decoder", "greedy", "--valid_fraction", "0.3"])
    recipe.train(options, SAMPLE, torch.device("cpu"), callbacks)
    plan = saved["best"]["plan"]
    assert plan["model"]["name"] == "deepspeech2" and plan["model"]["config"]["rnn_hidden"] == 16
    assert plan["training"]["epochs"] == 1 and plan["training"]["speed_factors"] == [0.9, 1.0, 1.1]
    assert plan["recipe"]["settings"]["model"] == "deepspeech2"
    assert saved["1"]["plan"] == plan
    # the plan is plain data (checkpoints load with weights_only=True)
    assert all(isinstance(v, (dict, int, bool, type(None))) for v in plan.values())
    printed = [line for line in lines if line.startswith("[recipe] ")]
    for part in Plan.PARTS:
        assert any(line.startswith(f"[recipe] {part}: ") for line in printed), part
    assert any("rnn_hidden 16" in line for line in printed)


def test_a_fork_plans_with_the_checkpoints_units_and_model():
    trainer = recipe.build(parse_options(["--rnn_hidden", "16", "--rnn_layers", "1", "--unit", "char",
                                          "--valid_fraction", "0.3"]), SAMPLE, torch.device("cpu"),
                           log=lambda line: None)
    state = {"recognizer": trainer.recognizer.state_dict(), "trainer": None}
    forked = recipe.build(parse_options(["--valid_fraction", "0.3", "--model", "conformer"]), SAMPLE,
                          torch.device("cpu"), loaded_state=state, log=lambda line: None)
    assert forked.plan.forked and forked.plan.model.name == "deepspeech2"
    assert forked.plan.model.config["rnn_hidden"] == 16 and forked.plan.units.kind == "char"
    assert forked.plan.lm.order == LM_ORDER_BY_UNIT["char"]


def test_speed_factors_default_round_trips_through_the_option():
    assert speed_factors(parse_options([]).speed_perturb) == TrainConfig.speed_factors
    assert parse_options([]).decoder == DecoderConfig.decoder
    assert parse_options([]).win_ms == FeatureConfig.win_ms
    assert fixed(parse_options(["--recipe", "off"])).lr == LoopConfig.lr
