"""`python main.py --help` reads well: every option in a section, with help text, without glitches."""
import os
import subprocess
import sys

import pytest

import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = {"NSML (reserved: nsml fork and nsml submit pass these; do not set them yourself)", "task and recipe",
            "data", "model", "training", "decoding", "language model (LM)"}


@pytest.mark.parametrize("argv", [[], ["--task", "classify"], ["--preset", "baseline2022"]])
def test_every_option_has_help_in_a_named_section(argv):
    parser, _ = main.build_parser(argv)
    for group in parser._action_groups:
        for action in group._group_actions:
            if action.dest == "help":
                continue
            assert action.help and action.help.strip(), f"{action.option_strings} has no help text"
            assert group.title in SECTIONS, f"{action.option_strings} is in section {group.title!r}"


@pytest.mark.parametrize("argv", [[], ["--task", "classify"]])
def test_help_has_no_doubled_or_wrong_defaults(argv):
    parser, _ = main.build_parser(argv)
    text = parser.format_help()
    flat = " ".join(text.split())  # argparse wraps lines anywhere
    for action in parser._actions:
        rendered = parser._get_formatter()._expand_help(action) if action.help else ""
        assert rendered.count("default") <= 1, f"{action.option_strings}: {rendered}"
        if action.nargs == 0:  # flags: a "(default: True)" on --no_x reads as the opposite of what it does
            assert "(default:" not in rendered, f"{action.option_strings}: {rendered}"
    assert "(default: None)" not in flat and "PRESETS below" not in flat


def test_help_runs_and_lists_the_sections_in_order():
    out = subprocess.run([sys.executable, "main.py", "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    starts = [out.stdout.index("\n" + title + ":") for title in
              ("task and recipe", "data", "model", "training", "decoding", "language model (LM)")]
    assert starts == sorted(starts)
    assert "--lm_weight LM_WEIGHT" in out.stdout and "examples:" in out.stdout
