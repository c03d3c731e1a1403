"""Command-line options as dataclasses: each task declares its options once, with defaults and help.

    @dataclass
    class Options(TrainingOptions):
        unit: str = option("jamo", "output text unit", choices=["jamo", "char", "spm"])

`add_arguments(parser, Options)` turns the fields into argparse options (a bool that
defaults to False becomes `--name`, one that defaults to True becomes `--no_name`),
`from_args(Options, args)` reads them back, and `config_from(Config, options)` copies
the fields a config dataclass shares with the options, so no option is copied by hand.
"""
import argparse
from dataclasses import MISSING, dataclass, field, fields


def option(default, help: str = "", **argparse_kwargs):
    """A dataclass field that is also a command-line option (`type`, `choices`, `metavar` go to argparse)."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """`--help` as written (descriptions keep their lines), with `(default: X)` added only where it
    says something: not for flags, not for None, and not where the help already names its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.nargs == 0 or action.default in (None, "", argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def argument_group(parser, title: str):
    """The parser's argument group called `title`, created on first use (main.py and the tasks share them)."""
    for group in parser._action_groups:
        if group.title == title:
            return group
    return parser.add_argument_group(title)


# The sections of `--help`, in this order (main.py creates them; empty ones are not printed).
TRAINING = "training"
HELP_SECTIONS = ("task and recipe", "data", "model", TRAINING, "decoding", "language model (LM)")


def add_arguments(parser, options_cls, groups: dict = None):
    """Add one command-line option per field of `options_cls`; `groups` maps a `--help` section title to
    the field names it lists, and fields no group names go to the "training" section."""
    group_of = {name: title for title, names in (groups or {}).items() for name in names}
    for f in fields(options_cls):
        target = argument_group(parser, group_of.get(f.name, TRAINING))
        meta = dict(f.metadata)
        help_text = meta.pop("help", "")
        default = f.default if f.default is not MISSING else f.default_factory()
        if isinstance(default, bool):
            if default:
                target.add_argument(f"--no_{f.name}", dest=f.name, action="store_false", help=help_text)
            else:
                target.add_argument(f"--{f.name}", action="store_true", help=help_text)
            continue
        kind = meta.pop("type", type(default) if default is not None else str)
        target.add_argument(f"--{f.name}", type=kind, default=default, help=help_text, **meta)


def from_args(options_cls, args: argparse.Namespace):
    """The `options_cls` instance the parsed `args` describe."""
    return options_cls(**{f.name: getattr(args, f.name) for f in fields(options_cls)})


def config_from(config_cls, options, **overrides):
    """A `config_cls` with every field it shares (by name) with `options`, then `overrides`."""
    shared = {f.name: getattr(options, f.name) for f in fields(config_cls) if hasattr(options, f.name)}
    return config_cls(**dict(shared, **overrides))


@dataclass
class TrainingOptions:
    """Options of the training loop (modules/training.py) that every task has; a task may change a default."""
    epochs: int = option(100, "upper bound on epochs")
    max_minutes: float = option(0.0, "training wall-clock budget; 0 = none (the LR schedule completes within it)")
    lr: float = option(2e-3, "peak learning rate")
    weight_decay: float = option(1e-2, "weight decay (decoupled, as AdamW applies it)")
    amp: str = option("auto", "mixed precision; auto = bf16/fp16 on GPU, off on CPU",
                      choices=["auto", "off", "bf16", "fp16"])
    compile: bool = option(False, "torch.compile the model for training")
    num_workers: int = option(-1, "DataLoader worker processes; -1 = auto: 0 on CPU, on CUDA one per spare core "
                                  "up to 8 (modules/loading.py)")
    heap_limit_mib: float = option(1536.0, "training returns freed memory to the system above this resident "
                                           "size; 0 = never (modules/memory.py)")
    valid_fraction: float = option(0.2, "share of the training data held out for validation")
    seed: int = option(0, "seed of the split, the initial weights, the batch order and augmentation")
