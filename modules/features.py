"""Log-mel filterbank features and SpecAugment, computed in batches with torch.

Features are computed on the device that trains (GPU when there is one), from
padded waveforms, so no per-file feature code runs on the hot path.
"""
from dataclasses import dataclass

import librosa
import torch
from torch import nn


@dataclass
class FeatureConfig:
    sample_rate: int = 16000
    n_mels: int = 80
    n_fft: int = 512
    win_ms: float = 25.0
    hop_ms: float = 10.0

    @property
    def hop_length(self) -> int:
        return int(self.sample_rate * self.hop_ms / 1000)

    @property
    def win_length(self) -> int:
        return int(self.sample_rate * self.win_ms / 1000)


class LogMelFilterbank(nn.Module):
    """(B, N) waveforms -> (B, T, n_mels) per-utterance normalised log-mel features."""

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.config = config
        mel = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels)
        self.register_buffer("mel_basis", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(config.win_length), persistent=False)

    def frame_lengths(self, sample_lengths: torch.Tensor) -> torch.Tensor:
        # Only frames whose window ends inside the signal: later ones would see the
        # batch's padding, and a file must give the same features alone or batched.
        c = self.config
        return ((sample_lengths - c.n_fft // 2) // c.hop_length + 1).clamp(min=1)

    @torch.no_grad()
    def forward(self, waveforms: torch.Tensor, sample_lengths: torch.Tensor):
        c = self.config
        spec = torch.stft(waveforms.float(), n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                          window=self.window, center=True, return_complex=True)
        power = spec.real.square() + spec.imag.square()                    # (B, F, T)
        feats = torch.log(torch.matmul(self.mel_basis, power) + 1e-6).transpose(1, 2)  # (B, T, M)
        lengths = self.frame_lengths(sample_lengths).clamp(max=feats.size(1))
        mask = (torch.arange(feats.size(1), device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        # Per-utterance mean/variance normalisation over the real frames only, so
        # loudness and channel differences between recordings do not matter.
        count = lengths.clamp(min=1)[:, None, None].to(feats.dtype)
        mean = (feats * mask).sum(1, keepdim=True) / count
        var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / count
        feats = (feats - mean) / torch.sqrt(var + 1e-5)
        return feats * mask, lengths


@dataclass
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 15     # mel bins, at most
    time_masks: int = 2
    time_width: float = 0.05  # fraction of the utterance, at most


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, config: SpecAugmentConfig,
                 generator: torch.Generator = None) -> torch.Tensor:
    """Zero random frequency bands and time spans of each utterance (training batches only)."""
    feats = feats.clone()
    batch, _, n_mels = feats.shape

    def rand(n):
        return torch.rand(n, generator=generator)

    for _ in range(config.freq_masks):
        width = (rand(batch) * (config.freq_width + 1)).long()
        start = (rand(batch) * (n_mels - width + 1).float()).long()
        for b in range(batch):
            feats[b, :, start[b]:start[b] + width[b]] = 0
    for _ in range(config.time_masks):
        max_width = (lengths.cpu().float() * config.time_width).long()
        width = (rand(batch) * (max_width + 1).float()).long()
        start = (rand(batch) * (lengths.cpu() - width + 1).clamp(min=1).float()).long()
        for b in range(batch):
            feats[b, start[b]:start[b] + width[b], :] = 0
    return feats
