"""Log-mel filterbank features, speed perturbation and SpecAugment, computed in batches with torch.

Features are computed on the device that trains (GPU when there is one), from
padded waveforms, so no per-file feature code runs on the hot path.
"""
from dataclasses import dataclass, replace

import librosa
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class FeatureConfig:
    sample_rate: int = 16000
    n_mels: int = 80
    n_fft: int = 512
    win_ms: float = 25.0
    hop_ms: float = 10.0
    db: bool = False            # 10*log10 power, floored 80 dB below each clip's peak (librosa's power_to_db)
    normalize: str = "utterance"  # 'utterance': mean/var per mel bin; 'clip': one mean/var per clip; 'none'
    trim_db: float = 0.0  # trim leading/trailing silence this many dB below peak (0 = off), train and infer

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
    def forward(self, waveforms: torch.Tensor, sample_lengths: torch.Tensor, mel_basis: torch.Tensor = None):
        """`mel_basis`: a filterbank in place of the config's, e.g. (B, n_mels, F) warped per utterance (VTLP)."""
        c = self.config
        spec = torch.stft(waveforms.float(), n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                          window=self.window, center=True, return_complex=True)
        power = spec.real.square() + spec.imag.square()                    # (B, F, T)
        mel = torch.matmul(self.mel_basis if mel_basis is None else mel_basis, power).transpose(1, 2)  # (B, T, M)
        if c.db:
            feats = 10 * torch.log10(mel.clamp(min=1e-10))
            feats = torch.maximum(feats, feats.amax(dim=(1, 2), keepdim=True) - 80.0)
        else:
            feats = torch.log(mel + 1e-6)
        lengths = self.frame_lengths(sample_lengths).clamp(max=feats.size(1))
        mask = (torch.arange(feats.size(1), device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        if c.normalize == "none":
            return feats * mask, lengths
        # Per-utterance mean/variance normalisation over the real frames only, so
        # loudness and channel differences between recordings do not matter.
        # 'clip' keeps the spectral shape (one mean/var per clip), which short keyword clips need.
        dims = (1, 2) if c.normalize == "clip" else 1
        count = lengths.clamp(min=1)[:, None, None].to(feats.dtype) * (feats.size(2) if c.normalize == "clip" else 1)
        mean = (feats * mask).sum(dims, keepdim=True) / count
        var = (((feats - mean) * mask) ** 2).sum(dims, keepdim=True) / count
        feats = (feats - mean) / torch.sqrt(var + 1e-5)
        return feats * mask, lengths


class MultiResolutionLogMel(nn.Module):
    """(B, N) waveforms -> (B, C, T, n_mels): one log-mel channel per FFT size, same hop.

    Short FFTs resolve onsets, long ones pitch and formants; stacked as image
    channels they let a CNN use both (DACON 2020 overlapped-speech, 3rd place).
    Each channel is a LogMelFilterbank whose window is its FFT size.
    """

    def __init__(self, config: FeatureConfig, fft_sizes=(512,)):
        super().__init__()
        self.config = config
        self.channels = nn.ModuleList(
            LogMelFilterbank(replace(config, n_fft=n, win_ms=1000.0 * n / config.sample_rate)) for n in fft_sizes)

    def frame_lengths(self, sample_lengths: torch.Tensor) -> torch.Tensor:
        return self.channels[0].frame_lengths(sample_lengths)

    @torch.no_grad()
    def forward(self, waveforms: torch.Tensor, sample_lengths: torch.Tensor):
        outputs = [channel(waveforms, sample_lengths) for channel in self.channels]
        return torch.stack([feats for feats, _ in outputs], dim=1), outputs[0][1]


def speed_perturb(waveforms: torch.Tensor, sample_lengths: torch.Tensor, factor: float):
    """Play a padded (B, N) batch `factor` times faster: tempo and pitch change together, as in
    Kaldi's 3-way speed perturbation (Ko et al. 2015), which makes a model hear more speakers and
    speaking rates than the data has. Linear resampling: above 1.0 the band over 8 kHz / factor
    folds back, where speech has little energy."""
    if factor == 1.0:
        return waveforms, sample_lengths
    size = max(1, int(waveforms.size(1) / factor))
    resampled = F.interpolate(waveforms[:, None, :].float(), size=size, mode="linear", align_corners=False)[:, 0]
    return resampled, (sample_lengths / factor).long().clamp(min=1, max=size)


@dataclass
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 15     # mel bins, at most
    time_masks: int = 2
    time_width: float = 0.05  # fraction of the utterance, at most


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, config: SpecAugmentConfig,
                 generator: torch.Generator = None) -> torch.Tensor:
    """Zero random frequency bands and time spans of each utterance (training batches only).

    Every mask width is uniform in [0, the maximum] and every start uniform over the places it
    fits (time masks: inside the utterance's own length). The masks of all rows are built at
    once from comparisons with a position range: a few dozen operations whatever the batch size,
    where a loop over rows launched 4 GPU kernels per row (~1,000 for 256 rows; issue 20)."""
    batch, frames, n_mels = feats.shape
    device = feats.device
    # The uniforms come from the (CPU) generator in the order the row loop drew them, so a seed
    # gives the masks it always gave; one small copy moves them to the features' device.
    per_mask = [torch.rand(2, batch, generator=generator) for _ in range(config.freq_masks + config.time_masks)]
    uniforms = torch.stack(per_mask).to(device) if per_mask else torch.zeros(0, 2, batch, device=device)
    lengths = lengths.to(device)

    def spans(positions, width, start):  # (B, positions): True inside [start, start + width)
        grid = torch.arange(positions, device=device)
        return (grid >= start[:, None]) & (grid < (start + width)[:, None])

    masked_bins = torch.zeros(batch, n_mels, dtype=torch.bool, device=device)
    for width_u, start_u in uniforms[:config.freq_masks]:
        width = (width_u * (config.freq_width + 1)).long()
        start = (start_u * (n_mels - width + 1).float()).long()
        masked_bins |= spans(n_mels, width, start)
    masked_frames = torch.zeros(batch, frames, dtype=torch.bool, device=device)
    for width_u, start_u in uniforms[config.freq_masks:]:
        width = (width_u * ((lengths.float() * config.time_width).long() + 1).float()).long()
        start = (start_u * (lengths - width + 1).clamp(min=1).float()).long()
        masked_frames |= spans(frames, width, start)
    return feats.masked_fill(masked_bins[:, None, :] | masked_frames[:, :, None], 0)
