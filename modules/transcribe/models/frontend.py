"""The convolutional front end every model shares: log-mel frames -> subsampled feature vectors."""
import torch
from torch import nn


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) True on real frames, False on padding."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def conv_layout(time_stride: int, kernels=None, strides=None):
    """The two convolutions' (frequency, time) kernels and strides, checked against time_stride.

    None gives the kit's 3x3 kernels with strides (2, 2), (2, time_stride / 2); the 2022
    baseline (KoSpeech) uses kernels (41, 11), (21, 11) and strides (2, 2), (2, 1).
    """
    if strides is None:
        if time_stride % 2:
            raise ValueError(f"time_stride must be even, got {time_stride}")
        strides = [(2, 2), (2, time_stride // 2)]
    kernels = [tuple(k) for k in (kernels or [(3, 3), (3, 3)])]
    strides = [tuple(s) for s in strides]
    if len(kernels) != 2 or len(strides) != 2:
        raise ValueError("the conv front end has exactly two layers")
    if strides[0][1] * strides[1][1] != time_stride:
        raise ValueError(f"conv time strides {strides} do not multiply to time_stride {time_stride}")
    return kernels, strides


class ConvFrontEnd(nn.Module):
    """Two strided convolutions over (frequency, time) with 'same' padding; time / time_stride.

    Padding frames are zeroed between the convolutions, so the frames at the end of a
    short file see the same zeros in a padded batch as when the file is alone.
    """

    def __init__(self, n_mels: int, channels: int, time_stride: int, kernels=None, strides=None):
        super().__init__()
        self.kernels, self.strides = conv_layout(time_stride, kernels, strides)
        convs, in_channels, freq = [], 1, n_mels
        for k, s in zip(self.kernels, self.strides):
            pad = (k[0] // 2, k[1] // 2)
            convs.append(nn.Sequential(nn.Conv2d(in_channels, channels, k, stride=s, padding=pad),
                                       nn.BatchNorm2d(channels), nn.Hardtanh(0, 20)))
            in_channels, freq = channels, (freq + 2 * pad[0] - k[0]) // s[0] + 1
        self.conv1, self.conv2 = convs
        self.output_dim = channels * freq

    def _conv_lengths(self, lengths: torch.Tensor, layer: int) -> torch.Tensor:
        k, s = self.kernels[layer][1], self.strides[layer][1]
        return (lengths + 2 * (k // 2) - k) // s + 1  # conv arithmetic along time

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self._conv_lengths(self._conv_lengths(lengths, 0), 1)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        # Under torch.compile with dynamic shapes, a strided view saved for the backward pass (the
        # transposed input, an unsqueezed mask) made Inductor compare symbolic strides and fail
        # ("cannot determine truth value of Relational: 1 < s66"); so the conv input is a contiguous
        # copy and the mask is computed in its 4-D shape rather than viewed into it.
        x = self.conv1(feats.transpose(1, 2).unsqueeze(1).contiguous())  # (B, C, F', T')
        mid = self._conv_lengths(lengths, 0).clamp(min=1, max=x.size(-1))
        frames = torch.arange(x.size(-1), device=x.device).view(1, 1, 1, -1)
        x = self.conv2(x * (frames < mid.view(-1, 1, 1, 1)).to(x.dtype))  # padding frames zeroed
        b, c, f, t = x.shape
        return x.permute(0, 3, 1, 2).reshape(b, t, c * f), self.output_lengths(lengths).clamp(min=1, max=t)
