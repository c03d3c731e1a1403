"""Acoustic models, one file each, chosen by name.

Adding a model: one file with the model (a subclass of interface.AcousticModel) and its config
dataclass, and one line in MODELS. Decoding, training and `--recipe auto` ask the model's class
what it can do (`has_decoder`, `sos_eos`) and its config which options it takes.
"""
from dataclasses import asdict, fields

from .attention import AttentionConfig, AttentionEncoderDecoder
from .conformer import Conformer, ConformerConfig
from .deepspeech2 import DeepSpeech2, DeepSpeech2Config

MODELS = {
    "deepspeech2": (DeepSpeech2, DeepSpeech2Config),
    "conformer": (Conformer, ConformerConfig),
    "attention": (AttentionEncoderDecoder, AttentionConfig),
}


# Training settings a model needs when the user gives none (`--recipe auto`): peak LR and warmup.
# Models not listed train with the loop's defaults (lr 2e-3, warmup 8% of training). Empty: with
# their residual branches starting at zero every model memorises 64 utterances with the defaults
# (bench/overfit.py, docs/models.md "Can each model learn?").
RECOMMENDED_TRAINING = {}


def registered(name: str) -> tuple:
    """(model class, config class) of model `name`."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from: {', '.join(MODELS)}")
    return MODELS[name]


def has_decoder(name: str) -> bool:
    """Whether model `name` has its own decoder (joint CTC/decoder loss, `--decoder attention|joint`)."""
    return registered(name)[0].has_decoder


def config_fields(name: str) -> set:
    """The options model `name`'s config takes (e.g. 'size' for the Conformer's named sizes)."""
    return {f.name for f in fields(registered(name)[1])}


def build_model(name: str, n_mels: int, vocab_size: int, **options):
    """Build model `name`; `options` override fields of its config dataclass."""
    model_cls, config_cls = registered(name)
    return model_cls(config_cls(**options), n_mels=n_mels, vocab_size=vocab_size)


def model_options(model) -> dict:
    return asdict(model.config)
