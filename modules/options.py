"""Command-line options as dataclasses: each task declares its options once, with defaults and help.

    @dataclass
    class Options(TrainingOptions):
        unit: str = option("jamo", "output text unit", choices=["jamo", "char", "spm"])

`add_arguments(parser, Options)` turns the fields into argparse options (a bool that
defaults to False becomes `--name`, one that defaults to True becomes `--no_name`, with
`--name` still accepted),
`from_args(Options, args)` reads them back, and `config_from(Config, options)` copies
the fields a config dataclass shares with the options (refusing a type mismatch), so no
option is copied by hand. `option(..., aliases=["--old_name"])` keeps a renamed option working.
"""
import argparse
from dataclasses import MISSING, dataclass, field, fields

from .training import LoopConfig


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
        aliases = meta.pop("aliases", ())  # old names that still work (a fork replays its session's arguments)
        default = f.default if f.default is not MISSING else f.default_factory()
        if isinstance(default, bool):
            if default:
                target.add_argument(f"--no_{f.name}", *aliases, dest=f.name, action="store_false", help=help_text)
                # --name too (saying the default out loud; an option that was once off by default keeps working)
                target.add_argument(f"--{f.name}", dest=f.name, action="store_true", help=argparse.SUPPRESS)
            else:
                target.add_argument(f"--{f.name}", *aliases, action="store_true", help=help_text)
            continue
        kind = meta.pop("type", type(default) if default is not None else str)
        target.add_argument(f"--{f.name}", *aliases, dest=f.name, type=kind, default=default, help=help_text, **meta)


def from_args(options_cls, args: argparse.Namespace):
    """The `options_cls` instance the parsed `args` describe."""
    return options_cls(**{f.name: getattr(args, f.name) for f in fields(options_cls)})


def config_from(config_cls, options, **overrides):
    """A `config_cls` with every field it shares (by name) with `options`, then `overrides`.

    A shared field whose option holds another type (or is still unset, None) must be given in
    `overrides`, converted: a TypeError says which, so no option is ever copied silently wrong."""
    values = {}
    for f in fields(config_cls):
        if f.name in overrides or not hasattr(options, f.name):
            continue
        value, default = getattr(options, f.name), (f.default if f.default is not MISSING else None)
        if default is not None and not same_kind(value, default):
            raise TypeError(f"option {f.name}={value!r} does not fit {config_cls.__name__}.{f.name} "
                            f"({type(default).__name__}); convert it in config_from's overrides")
        values[f.name] = value
    return config_cls(**values, **overrides)


def same_kind(value, default) -> bool:
    """Whether `value` can stand where `default` does: a bool for a bool, a number for a float, else its type."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


@dataclass
class TrainingOptions:
    """Options of the training loop (modules/training.py) that every task has. Their defaults are the
    loop's own (LoopConfig, their one home); a task may change one (classify's lr, epochs)."""
    epochs: int = option(LoopConfig.epochs, "upper bound on epochs")
    max_minutes: float = option(LoopConfig.max_minutes, "training wall-clock budget; 0 = none (the LR schedule "
                                                        "completes within it)")
    lr: float = option(LoopConfig.lr, "peak learning rate")
    weight_decay: float = option(LoopConfig.weight_decay, "weight decay (decoupled, as AdamW applies it)")
    amp: str = option(LoopConfig.amp, "mixed precision; auto = bf16/fp16 on GPU, off on CPU",
                      choices=["auto", "off", "bf16", "fp16"])
    compile: bool = option(LoopConfig.compile, "torch.compile the model for training")
    num_workers: int = option(LoopConfig.num_workers, "DataLoader worker processes; -1 = auto: 0 on CPU, on CUDA "
                                                      "one per spare core up to 8 (modules/loading.py)")
    heap_limit_mib: float = option(LoopConfig.heap_limit_mib, "training returns freed memory to the system above "
                                                              "this resident size; 0 = never (modules/memory.py)")
    valid_fraction: float = option(0.2, "share of the training data held out for validation")
    seed: int = option(LoopConfig.seed, "seed of the split, the initial weights, the batch order and augmentation")
