"""Every torch name the kit's code spells out exists in the installed torch.

The NSML image carries an older torch (2.7) than the one the suite normally runs (2.13), and some
code runs only on a GPU (fused AdamW, TF32 switches, NCCL), so a CPU test run cannot reach it.
Resolving the names statically covers those branches too: run this file under the image's torch
with `tools/test_under_torch.sh 2.7.0 -q tests/test_torch_api.py`.
"""
import importlib
import re
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "main.py", *sorted((ROOT / "modules").rglob("*.py")), *sorted((ROOT / "nsml_local").rglob("*.py"))]
# `torch.x.y`, and the aliases the code imports torch.nn and torch.nn.functional under.
DOTTED_NAME = re.compile(r"\b(torch|nn|F)((?:\.[A-Za-z_]\w*)+)")
ALIASES = {"torch": (torch, "torch"), "nn": (nn, "torch.nn"), "F": (F, "torch.nn.functional")}


def used_names():
    names = {}
    for path in SOURCES:
        for match in DOTTED_NAME.finditer(path.read_text(encoding="utf-8")):
            names.setdefault(match.group(0), path.relative_to(ROOT))
    return names


def resolves(name: str) -> bool:
    alias, *parts = name.split(".")
    obj, module_path = ALIASES[alias]
    for part in parts:
        module_path += "." + part
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:  # a submodule not imported yet (torch.utils.data, torch.distributed.elastic, ...)
            obj = importlib.import_module(module_path)
        except ModuleNotFoundError as error:
            # torch.utils.tensorboard exists but needs the optional `tensorboard` package.
            return error.name != module_path and not module_path.startswith(error.name + ".")
        except ImportError:
            return False
    return True


def test_sources_are_scanned():
    names = used_names()
    assert len(names) > 50, names  # the regex still finds the code's torch calls
    assert "torch.amp.GradScaler" in names and "F.scaled_dot_product_attention" in names


def test_every_torch_name_exists_in_installed_torch():
    missing = {name: str(path) for name, path in used_names().items() if not resolves(name)}
    assert not missing, f"not in torch {torch.__version__}: {missing}"


def test_a_missing_name_is_reported():
    assert not resolves("torch.no_such_function_in_any_release")
    assert not resolves("F.no_such_functional")
    assert resolves("torch.utils.data.DataLoader")
