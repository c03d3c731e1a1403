"""The tasks main.py can run: NAME -> task package, each satisfying `task_interface.Task`."""
import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tasks() -> dict:
    """NAME -> task package (imported here, on first use, so `import modules.tasks` stays light)."""
    from . import classify, transcribe

    return {t.NAME: t for t in (transcribe, classify)}
