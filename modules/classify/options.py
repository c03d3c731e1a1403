"""The classification task's options (`python main.py --task classify --help`)."""
from dataclasses import dataclass

from ..options import TrainingOptions, option
from .resnet import ResNetClassifierConfig
from .trainer import ClassifierTrainConfig


@dataclass
class Options(TrainingOptions):
    epochs: int = option(ClassifierTrainConfig.epochs, "epochs per ensemble member")
    lr: float = option(ClassifierTrainConfig.lr, "peak learning rate")
    classes: str = option("", "comma-separated keywords; other labels -> unknown, plus silence "
                              "(default: every label)")
    clip_seconds: float = option(1.0, "fixed input length: pad or crop")
    fft_sizes: str = option("512", "one log-mel channel per FFT size, same hop, e.g. 256,512,1024,2048")
    n_mels: int = option(40, "log-mel bins per channel")
    width: int = option(ResNetClassifierConfig.width, "channels of the first residual stage")
    stages: int = option(ResNetClassifierConfig.stages, "depth: residual stages")
    blocks: int = option(ResNetClassifierConfig.blocks, "residual blocks per stage")
    dropout: float = option(ResNetClassifierConfig.dropout, "dropout before the classifier head")
    batch_size: int = option(ClassifierTrainConfig.batch_size, "clips per batch")
    ensemble: int = option(1, "models trained with seeds seed..seed+K-1, their probabilities averaged "
                              "(docs/classification.md: when it pays)")
    keep: str = option(ClassifierTrainConfig.keep, "each model keeps its last epoch (end of the cosine schedule) "
                                                   "or its best validation epoch", choices=["last", "best"])


# The sections of `--help`; every other option is a training one.
HELP_GROUPS = {
    "data": ["valid_fraction", "classes", "clip_seconds", "fft_sizes", "n_mels"],
    "model": ["width", "stages", "blocks", "dropout", "ensemble", "keep"],
}


def parse_list(text: str, cast=str) -> list:
    return [cast(x.strip()) for x in text.split(",") if x.strip()]
