"""Checkpoint files: written atomically, read back with torch.load(weights_only=True).

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so
loading it never runs code from the file.
"""
import os

import torch


def save_checkpoint(payload: dict, path: str) -> None:
    """Write `payload` to `path` so that a reader sees either the old file or the whole new one."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: a process killed before this leaves `path` as it was
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {path}")
    return torch.load(path, map_location="cpu", weights_only=True)
