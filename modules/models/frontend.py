"""The convolutional front end every model shares: log-mel frames -> subsampled feature vectors."""
import torch
from torch import nn


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) True on real frames, False on padding."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class ConvFrontEnd(nn.Module):
    """Two strided 3x3 convolutions over (frequency, time); frequency /4, time /time_stride.

    Padding frames are zeroed between the convolutions, so the frames at the end of a
    short file see the same zeros in a padded batch as when the file is alone.
    """

    def __init__(self, n_mels: int, channels: int, time_stride: int):
        super().__init__()
        if time_stride % 2:
            raise ValueError(f"time_stride must be even, got {time_stride}")
        self.strides = (2, time_stride // 2)
        self.conv1 = nn.Sequential(nn.Conv2d(1, channels, 3, stride=(2, 2), padding=1),
                                   nn.BatchNorm2d(channels), nn.Hardtanh(0, 20))
        self.conv2 = nn.Sequential(nn.Conv2d(channels, channels, 3, stride=(2, time_stride // 2), padding=1),
                                   nn.BatchNorm2d(channels), nn.Hardtanh(0, 20))
        self.output_dim = channels * (((n_mels + 1) // 2 + 1) // 2)

    @staticmethod
    def _conv_lengths(lengths, stride):
        return (lengths + 2 - 3) // stride + 1  # conv arithmetic: padding 1, kernel 3

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for s in self.strides:
            lengths = self._conv_lengths(lengths, s)
        return lengths

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        x = self.conv1(feats.unsqueeze(1).transpose(2, 3))  # (B, C, F', T')
        mid = self._conv_lengths(lengths, self.strides[0]).clamp(min=1, max=x.size(-1))
        x = self.conv2(x * length_mask(mid, x.size(-1))[:, None, None, :].to(x.dtype))
        b, c, f, t = x.shape
        return x.permute(0, 3, 1, 2).reshape(b, t, c * f), self.output_lengths(lengths).clamp(min=1, max=t)
