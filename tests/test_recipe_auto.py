"""`--recipe auto`: the settings chosen for a set of (device, hours, budget) cases, and options given win."""
import os

import pytest
import torch

from modules.transcribe import parse_options, recipe
from modules.transcribe.auto import Machine, choose

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_dataset")
CPU2 = Machine("cpu", cpu_cores=2)
H200 = Machine("cuda", cpu_cores=16, gpus=1, gpu_memory_gib=139.0, bf16=True)
T4 = Machine("cuda", cpu_cores=8, gpus=1, gpu_memory_gib=15.0, bf16=False)
A10x4 = Machine("cuda", cpu_cores=16, gpus=4, gpu_memory_gib=24.0, bf16=True, processes=4)  # torchrun
A100_40 = Machine("cuda", cpu_cores=16, gpus=1, gpu_memory_gib=39.6, bf16=True)
V100_32 = Machine("cuda", cpu_cores=8, gpus=1, gpu_memory_gib=31.7, bf16=False)
CONFORMER_OWN = {"conformer": {"lr": 1e-3, "warmup_fraction": 0.15}}


@pytest.mark.parametrize("machine,hours,argv,expected", [
    # a laptop, whatever the data: DeepSpeech2, CPU batches, full precision, no loader workers
    (CPU2, 0.1, [], dict(model="deepspeech2", batch_seconds=90.0, amp="off", num_workers=0, lr=2e-3)),
    (CPU2, 1000.0, ["--max_minutes", "600"], dict(model="deepspeech2", amp="off")),
    # a big GPU and a big corpus: Conformer large in bf16, at the Conformer's own LR and warmup
    # (large peaks at the Conformer's own LR x sqrt(256 / 512), as in Gulati et al. 2020)
    (H200, 1000.0, [], dict(model="conformer", size="large", amp="bf16", batch_seconds=2400.0,
                            num_workers=8, lr=0.000707, warmup_fraction=0.15)),
    # an A100 "40 GB" reports 39.6 GiB: a 40 GB card, so large
    (A100_40, 1000.0, [], dict(model="conformer", size="large", amp="bf16", batch_seconds=1580.0,
                               lr=0.000707)),
    (V100_32, 1000.0, [], dict(model="conformer", size="medium", amp="fp16", lr=1e-3)),
    (H200, 100.0, [], dict(model="conformer", size="medium")),     # not enough data for large
    (A10x4, 1000.0, [], dict(model="conformer", size="medium",     # not enough memory for large
                             batch_seconds=960.0, num_workers=3)),
    (T4, 200.0, [], dict(model="conformer", size="medium", amp="fp16", batch_seconds=600.0)),
    # too little data, or too little time: DeepSpeech2 even on a GPU
    (H200, 5.0, [], dict(model="deepspeech2", amp="bf16")),
    (H200, 1000.0, ["--max_minutes", "30"], dict(model="deepspeech2")),
])
def test_auto_choices(machine, hours, argv, expected):
    options, choice = choose(parse_options(argv), machine, hours, CONFORMER_OWN)
    for name, value in expected.items():
        assert getattr(options, name) == value, (name, choice.summary())
        assert choice.settings[name] == value
    assert choice.reasons  # every choice says why


def test_options_given_win_over_the_recipe():
    argv = ["--model", "conformer", "--lr", "5e-4", "--batch_seconds", "60", "--amp", "bf16", "--num_workers", "1"]
    options, choice = choose(parse_options(argv), CPU2, 0.1, CONFORMER_OWN)
    assert (options.model, options.lr, options.batch_seconds, options.amp, options.num_workers) == \
        ("conformer", 5e-4, 60.0, "bf16", 1)
    assert options.size == "small"  # not given: chosen for the CPU
    assert options.warmup_fraction == 0.15    # not given: the conformer's own
    assert not {"model", "lr", "batch_seconds", "amp", "num_workers"} & set(choice.settings)
    # a preset's settings count as given
    options, _ = choose(parse_options(["--preset", "baseline2022"]), H200, 1000.0, CONFORMER_OWN)
    assert (options.model, options.lr, options.lr_schedule) == ("deepspeech2", 1e-4, "tri_stage")


def test_the_choice_is_printed_and_travels_with_the_trainer():
    lines = []
    trainer = recipe.build(parse_options(["--rnn_hidden", "16", "--rnn_layers", "1", "--lm_order", "0"]),
                           SAMPLE, torch.device("cpu"), log=lines.append)
    assert any(line.startswith("[recipe] auto: model deepspeech2") and "Why:" in line for line in lines)
    assert trainer.plan.recipe.state_dict()["settings"]["model"] == "deepspeech2"
    assert trainer.config.batch_seconds == 90.0 and trainer.config.amp == "off"
    off = recipe.build(parse_options(["--recipe", "off", "--rnn_hidden", "16", "--rnn_layers", "1",
                                      "--lm_order", "0"]), SAMPLE, torch.device("cpu"), log=lines.append)
    assert off.plan.recipe is None and off.config.lr == 2e-3 and off.recognizer.model_name == "deepspeech2"


def test_large_lr_is_scaled_only_when_the_recipe_sets_it():
    large = ["--conformer_size", "large"]
    options, choice = choose(parse_options(large), A100_40, 1000.0)
    assert options.lr == 0.001414 and any("Gulati" in r for r in choice.reasons)
    assert choose(parse_options(large + ["--lr", "3e-3"]), A100_40, 1000.0)[0].lr == 3e-3  # given: kept
    assert choose(parse_options(["--size", "medium"]), A100_40, 1000.0)[0].lr == 2e-3
    # explicit dims are not the named size: no scaling
    assert choose(parse_options(large + ["--d_model", "320"]), A100_40, 1000.0)[0].lr == 2e-3
