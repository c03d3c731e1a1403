"""A residual CNN that maps (B, C, T, M) feature images to class logits.

Stages of residual blocks (3x3 conv, BatchNorm, ReLU); each stage after the first
halves time and frequency and doubles the width. The output averages over time
only: which frequency band holds the energy (a formant, a pitch) stays visible to
the output layer, which pooling over frequency too would hide. Used by the classification task, so it
is not in the CTC MODELS registry (it emits one vector per clip, not per frame).
"""
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ResNetClassifierConfig:
    width: int = 16        # channels of the first stage
    stem_stride: int = 2   # 1 or 2: the stem halves time and frequency first (4x less compute)
    stages: int = 3        # depth: number of stages
    blocks: int = 2        # residual blocks per stage
    dropout: float = 0.2   # before the output layer


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.shortcut = nn.Identity() if stride == 1 and in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def _halved(size: int) -> int:
    return (size - 1) // 2 + 1  # a 3x3 convolution with stride 2 and padding 1


class ResNetClassifier(nn.Module):
    def __init__(self, config: ResNetClassifierConfig, in_channels: int, n_mels: int, n_classes: int):
        super().__init__()
        self.config = config
        self.stem = nn.Sequential(nn.Conv2d(in_channels, config.width, 3, config.stem_stride, 1, bias=False),
                                  nn.BatchNorm2d(config.width), nn.ReLU(inplace=True))
        layers, channels = [], config.width
        bands = _halved(n_mels) if config.stem_stride == 2 else n_mels
        for stage in range(config.stages):
            out = config.width * 2 ** stage
            for block in range(config.blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(ResidualBlock(channels, out, stride))
                channels, bands = out, _halved(bands) if stride == 2 else bands
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(channels * bands, n_classes))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, C, T, M) features -> (B, n_classes) logits."""
        x = self.layers(self.stem(feats))          # (B, C', T', M')
        return self.head(x.mean(dim=2))
