"""The classification task: fixed-length clips -> a class (keyword spotting) or a class distribution.

    options.py     its command-line options          recipe.py      train one model or an ensemble
    clips.py       label layouts, fixed-length clips  classifier.py  features -> K CNNs -> probabilities
    resnet.py      the residual CNN                   trainer.py     the classification part of the loop
"""
from ..options import from_args
from .classifier import AudioClassifier
from .options import HELP_GROUPS, Options
from .recipe import train

NAME = "classify"


def add_arguments(parser, argv=None):
    from ..options import add_arguments as add_dataclass_arguments

    add_dataclass_arguments(parser, Options, HELP_GROUPS)


def options_from_args(args) -> Options:
    return from_args(Options, args)


def load(state: dict, device):
    classifier = AudioClassifier.from_state_dict(state["classifier"], device)
    spec = classifier.spec
    print(f"[load] classifier, {len(classifier.models)} model(s), {len(spec.classes)} classes ({spec.kind})",
          flush=True)
    return classifier


def infer(classifier: AudioClassifier, path: str):
    """A folder gives `{'filename', 'label'}` (or `{'filename', 'probs': {class: p}}`) records sorted by
    filename; a single file gives its record."""
    return classifier.classify_path(path)


__all__ = ["NAME", "Options", "add_arguments", "options_from_args", "train", "load", "infer"]
