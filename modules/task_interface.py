"""What a task provides to main.py, and what its recipe may ask of the platform.

A task is a package under modules/ (transcribe/, classify/) that satisfies `Task`; the
registry (`modules/tasks.py`) lists them. Only main.py talks to NSML: it hands a recipe
`Callbacks` that report and save through `nsml` on rank 0 and do nothing on the other ranks;
tests and benchmarks pass their own. This file imports no task, so the task packages can
import it without importing each other or the registry.
"""
import argparse
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

import torch


def _ignore(*args, **kwargs):
    pass


@dataclass
class Callbacks:
    report: Callable = _ignore  # report(step, **scalars): a point of the training curves
    save: Callable = _ignore    # save(name, state): checkpoint `name` holding the task's state dict
    log: Callable = print       # log(line): progress for the session's log


class Task(Protocol):
    """The module-level names a task package defines."""

    NAME: str  # recorded in every checkpoint: {'task': NAME, 'state': ...}

    def add_arguments(self, parser: argparse.ArgumentParser, argv: Optional[list] = None) -> None:
        """Its own command-line options, with its own defaults."""

    def options_from_args(self, args: argparse.Namespace) -> Any:
        """Those options as the task's Options dataclass."""

    def train(self, options: Any, dataset_path: str, device: torch.device, callbacks: Callbacks,
              loaded_state: Optional[dict] = None) -> Any:
        """Build, train and save (through `callbacks`) a model; `loaded_state` continues a forked checkpoint."""

    def load(self, state: dict, device: torch.device) -> Any:
        """Rebuild a model from a checkpoint's state."""

    def infer(self, model: Any, path: str) -> Any:
        """A folder -> sorted records; one file -> its record."""
