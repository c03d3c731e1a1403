"""Acoustic models, one file each, chosen by name."""
from dataclasses import asdict

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


def build_model(name: str, n_mels: int, vocab_size: int, **options):
    """Build model `name`; `options` override fields of its config dataclass."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from: {', '.join(MODELS)}")
    model_cls, config_cls = MODELS[name]
    return model_cls(config_cls(**options), n_mels=n_mels, vocab_size=vocab_size)


def model_options(model) -> dict:
    return asdict(model.config)
