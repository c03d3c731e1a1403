"""NSML entry file: train a model, or load one and run inference on the test set (submit).

On NSML:   nsml run -d DATASET -a "--max_minutes 60"   /   nsml submit SESSION best
Locally:   python main.py            (trains on ./sample_dataset through nsml_local)

This file is the contract with the platform and nothing else: the reserved arguments,
`nsml.bind` of save/load/infer, `nsml.paused`, and a dispatch to the task's recipe
(modules/transcribe, modules/classify). Only this file imports nsml.
"""
import argparse
import os
import sys
import warnings

import torch

try:
    import nsml
except ImportError:  # local run without `pip install -e nsml_local`: use the bundled stand-in
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "nsml_local"))
    import nsml

from modules import distributed
from modules.checkpoint import read_checkpoint, write_checkpoint
from modules.tasks import Callbacks, default_device, tasks


def parse_args(argv=None):
    """The reserved arguments, the kit's own, and the task's options (`--task classify --help` lists those)."""
    task_names = sorted(tasks())
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--task", default="transcribe", choices=task_names)
    task = tasks()[first.parse_known_args(argv)[0].task]

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    # Reserved by NSML: fork and submit pass these; renaming them breaks both.
    p.add_argument("--mode", type=str, default="train", help="train, or test on `nsml submit` (reserved)")
    p.add_argument("--iteration", type=str, default="0", help="checkpoint to load on fork/submit (reserved)")
    p.add_argument("--pause", type=int, default=0, help="1 when NSML is loading a model (reserved)")
    # The kit's own.
    p.add_argument("--task", type=str, default="transcribe", choices=task_names,
                   help="transcribe speech, or classify fixed-length clips (keywords, class distributions)")
    p.add_argument("--dataset_path", type=str, default=None, help="train on this folder instead of nsml.DATASET_PATH")
    p.add_argument("--device", type=str, default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    task.add_arguments(p, argv)
    args = p.parse_args(argv)
    return args, task.options_from_args(args)


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
        sys.exit(f"dataset path {root!r} does not exist; pass --dataset_path or `nsml run -d DATASET`")
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
