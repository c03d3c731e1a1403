"""NSML / NOVA entry file: train a model, or load one and run inference on the test set (submit).

On NSML:   nsml run -d DATASET -a "--max_minutes 60"   /   nsml submit SESSION best
On NOVA:   nova run -d Tr1Ko -a "--max_minutes 60"     /   nova submit SESSION best
Locally:   python main.py            (trains on ./sample_dataset through nsml_local)

This file is the contract with the platform and nothing else: the reserved arguments,
`nsml.bind` of save/load/infer, `nsml.paused`, and a dispatch to the task's recipe
(modules/transcribe, modules/classify). Only this file imports the platform's module.
"""
import argparse
import importlib
import os
import sys
import warnings

import torch

PLATFORMS = ("nova", "nsml")  # NOVA (2023 on) is NSML renamed, with the same API; NOVA first when both exist
PLATFORM_ENV = "KIT_PLATFORM"  # nsml or nova: bind that one only
BUNDLED_EMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nsml_local")


def import_platform():
    """(name, module) of the platform this session runs on. Without one (a local run without
    `pip install -e nsml_local`) the bundled emulator, which serves both names, is used."""
    wanted = os.environ.get(PLATFORM_ENV, "").strip().lower()
    if wanted and wanted not in PLATFORMS:
        sys.exit(f"{PLATFORM_ENV}={wanted!r}: expected one of {', '.join(PLATFORMS)}")
    names = [wanted] if wanted else list(PLATFORMS)
    for search_path in (None, BUNDLED_EMULATOR):
        if search_path:
            sys.path.insert(0, search_path)
        for name in names:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as error:
                if error.name != name:  # the platform's module exists but is broken: say so
                    raise
                continue
            if hasattr(module, "paused"):  # not another package of that name (OpenStack's is `nova` too)
                return name, module
    sys.exit(f"no platform module: none of {', '.join(names)} can be imported, not even from {BUNDLED_EMULATOR}")


# One API under two names: the kit calls it `nsml` whichever name bound it.
PLATFORM_NAME, nsml = import_platform()

from modules import distributed
from modules.checkpoint import read_checkpoint, write_checkpoint
from modules.options import HELP_SECTIONS, TRAINING, HelpFormatter, argument_group
from modules.task_interface import Callbacks
from modules.tasks import default_device, tasks


HELP_DESCRIPTION = """Train a Korean speech recognizer (or a clip classifier) on an NSML dataset, or load one
and run inference on the test set (what `nsml submit` does).

  locally:   python main.py                       trains on ./sample_dataset through nsml_local
  on NSML:   nsml run -d DATASET -a "--max_minutes 60"      then: nsml submit SESSION best

Every option has a working default; --recipe auto (the default) chooses the model, its size,
the batch, the LR and the precision from the device, the corpus and --max_minutes."""

HELP_EPILOG = """examples:
  nsml run -d DATASET -a "--max_minutes 60"                    the default recipe, one hour
  nsml run -d DATASET -a "--model conformer --max_minutes 120"
  nsml run -d DATASET -a "--preset baseline2022"               the 2022 official baseline's recipe
  nsml fork SESSION -a "--max_minutes 120"                      -a replaces ALL the old arguments
docs: README.md, docs/nsml.md (the platform), docs/models.md, docs/data.md"""


def parse_args(argv=None):
    """The reserved arguments, the kit's own, and the task's options (`--task classify --help` lists those)."""
    p, task = build_parser(argv)
    args = p.parse_args(argv)
    return args, task.options_from_args(args)


def build_parser(argv=None):
    """The parser of `argv`'s task (its options depend on --task and --preset), and that task."""
    task_names = sorted(tasks())
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--task", default="transcribe", choices=task_names)
    task = tasks()[first.parse_known_args(argv)[0].task]

    p = argparse.ArgumentParser(description=HELP_DESCRIPTION, epilog=HELP_EPILOG, formatter_class=HelpFormatter)
    # Reserved by NSML: fork and submit pass these; renaming them breaks both.
    reserved = argument_group(p, "NSML (reserved: nsml fork and nsml submit pass these; do not set them yourself)")
    reserved.add_argument("--mode", type=str, default="train", help="train, or test on `nsml submit`")
    reserved.add_argument("--iteration", type=str, default="0", help="checkpoint to load on fork/submit")
    reserved.add_argument("--pause", type=int, default=0, help="1 when NSML is loading a model")
    for title in HELP_SECTIONS:  # in this order in --help, whoever adds to them first
        argument_group(p, title)
    # The kit's own.
    argument_group(p, "task and recipe").add_argument(
        "--task", type=str, default="transcribe", choices=task_names,
        help="transcribe speech, or classify fixed-length clips (keywords, class distributions); "
             "`--task classify --help` lists the classifier's options")
    argument_group(p, "data").add_argument(
        "--dataset_path", type=str, default=None, help="train on this folder instead of nsml.DATASET_PATH")
    argument_group(p, TRAINING).add_argument(
        "--device", type=str, default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)")
    task.add_arguments(p, argv)
    return p, task


class Kit:
    """What save/load/infer share: the task, its model (for infer) and the state a checkpoint holds."""

    def __init__(self, task, device):
        self.task, self.device = task, device
        self.model = None  # what infer runs: a loaded checkpoint's model
        self.state = None  # what save writes: the recipe's latest state, or the loaded checkpoint's


def bind_model(kit: Kit):
    def save(dir_path, **kwargs):
        write_checkpoint(dir_path, kit.task.NAME, kit.state)

    def load(dir_path, **kwargs):
        task_name, kit.state = read_checkpoint(dir_path)  # the checkpoint says which task's model it holds
        kit.task = tasks()[task_name]
        print(f"[load] {dir_path}: task {task_name}", flush=True)
        kit.model = kit.task.load(kit.state, kit.device)

    def infer(path, **kwargs):
        """A folder gives `[{'filename', 'text'}, ...]` sorted by filename (2022 protocol; a classifier's
        records carry 'label' or 'probs'); a single file gives its transcript (2019 per-file protocol)."""
        if kit.model is None:
            raise RuntimeError("infer called before a model was loaded")
        return kit.task.infer(kit.model, path)

    nsml.bind(save=save, load=load, infer=infer)


def platform_callbacks(kit: Kit) -> Callbacks:
    """Reports, checkpoints and log lines through NSML, from rank 0 only under torchrun."""
    if not distributed.is_main_process():
        return Callbacks(log=lambda *a, **k: None)

    def save(name, state):
        kit.state = state
        nsml.save(name)

    def report(step, **scalars):
        nsml.report(summary=True, scope=None, step=step, **scalars)

    return Callbacks(report=report, save=save, log=lambda line: print(line, flush=True))


def dataset_root(path) -> str:
    root = path or nsml.DATASET_PATH
    if isinstance(root, (list, tuple)):  # NSML gives a list when a session has several datasets
        root = root[0]
    if not root or not os.path.isdir(root):
        sys.exit(f"dataset path {root!r} does not exist; pass --dataset_path or `{PLATFORM_NAME} run -d DATASET`")
    return root


def main(argv=None):
    args, options = parse_args(argv)
    warnings.simplefilter("always", UserWarning)  # one line per bad file, every time
    ddp_device = distributed.init_from_env()  # under torchrun: join the group, one device per rank
    device = torch.device(args.device) if args.device else (ddp_device or default_device())
    kit = Kit(tasks()[args.task], device)
    bind_model(kit)
    if args.pause:
        nsml.paused(scope=locals())  # fork: loads and returns; submit: loads, infers, scores, exits
    if args.mode == "train":
        if kit.state is not None and kit.task.NAME != args.task:
            sys.exit(f"the loaded checkpoint is a {kit.task.NAME} model; fork it with --task {kit.task.NAME}")
        kit.model = kit.task.train(options, dataset_root(args.dataset_path), device, platform_callbacks(kit),
                                   loaded_state=kit.state)
    distributed.shutdown()  # not on an error: a rank that failed exits and torchrun stops the others
    if distributed.launched_rank() > 0:
        # Ranks other than 0 neither save nor report, so they skip the interpreter's teardown, where a
        # gloo thread still alive could abort the process ("terminate called without an active exception").
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
