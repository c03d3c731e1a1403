"""The tasks main.py can run, and what a task's recipe may ask of the platform.

A task is a package under modules/ (transcribe/, classify/) that provides:

    NAME                                   recorded in every checkpoint: {'task': NAME, 'state': ...}
    add_arguments(parser, argv)            its own command-line options, with its own defaults
    options_from_args(args) -> Options     those options as a dataclass
    train(options, dataset_path, device, callbacks, loaded_state=None) -> model
                                           build, train and save (through `callbacks`) a model;
                                           `loaded_state` continues a forked checkpoint
    load(state, device) -> model           rebuild a model from a checkpoint's state
    infer(model, path)                     a folder -> sorted records; one file -> its record

Only main.py talks to NSML: it hands a recipe `Callbacks` that report and save through
`nsml` on rank 0 and do nothing on the other ranks; tests and benchmarks pass their own.
"""
from dataclasses import dataclass
from typing import Callable

import torch


def _ignore(*args, **kwargs):
    pass


@dataclass
class Callbacks:
    report: Callable = _ignore  # report(step, **scalars): a point of the training curves
    save: Callable = _ignore    # save(name, state): checkpoint `name` holding the task's state dict
    log: Callable = print       # log(line): progress for the session's log


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tasks() -> dict:
    """NAME -> task package (imported here, on first use, so `import modules.tasks` stays light)."""
    from . import classify, transcribe

    return {t.NAME: t for t in (transcribe, classify)}
