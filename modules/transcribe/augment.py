"""Augmentation for unseen speakers and channels (issue 23), each off unless asked for.

    additive noise   --noise_prob P --noise_snr 5,20 [--noise_dir DIR]
                     white, pink, brown or babble (other utterances of the same batch) at a
                     uniform random SNR per utterance; with --noise_dir, the user's recordings
    phone channel    --phone_prob P [--phone_mulaw]
                     resampled to 8 kHz and back (nothing above 4 kHz survives), optionally
                     8-bit mu-law coded as G.711 telephony is: the 2019 data was phone speech
    VTLP             --vtlp 0.1
                     the mel filterbank's frequencies warped by a factor in [0.9, 1.1] per
                     utterance (Jaitly & Hinton 2013): a shorter or longer vocal tract

Noise and phone channel work on waveforms in the loader workers: `WaveAugment` is the training
loader's collate function (dataset.collate, then the augmentations on the padded batch), so
the device never waits for them. VTLP warps the filterbank where features are computed
(LogMelFilterbank takes the warped bases), which costs one batched matrix product.
"""
import os
import warnings

import librosa
import numpy as np
import torch

from ..audio import AudioError, list_audio_files, load_audio
from .dataset import collate

NOISE_KINDS = ("white", "pink", "brown", "babble")
NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0, "babble": 1.0}  # power ~ 1 / f ** exponent
PHONE_RATE = 8000
MAX_NOISE_SECONDS = 600.0  # of --noise_dir kept in memory (38 MB of float32), shared by forked workers


def parse_snr_range(text) -> tuple:
    """'5,20' (or (5, 20)) -> (5.0, 20.0) dB; one number is a fixed SNR."""
    try:
        values = [float(v) for v in (text if isinstance(text, (tuple, list)) else str(text).split(","))]
    except ValueError:
        raise ValueError(f"--noise_snr takes LOW,HIGH in dB such as 5,20, not {text!r}") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or values[0] > values[1]:
        raise ValueError(f"--noise_snr takes LOW,HIGH in dB with LOW <= HIGH, not {text!r}")
    return tuple(values)


def colored_noise(shape: tuple, exponent, generator: torch.Generator = None) -> torch.Tensor:
    """(rows, N) Gaussian noise whose power falls as 1 / f ** exponent (0 white, 1 pink, 2 brown), unit
    variance per row; `exponent` is one number or one per row."""
    white = torch.randn(shape, generator=generator)
    exponent = torch.as_tensor(exponent, dtype=torch.float32).reshape(-1, 1)
    if not exponent.any():
        return white
    spectrum = torch.fft.rfft(white)
    freqs = torch.arange(spectrum.size(-1), dtype=torch.float32).clamp(min=1.0)
    noise = torch.fft.irfft(spectrum * freqs ** (-exponent / 2), n=shape[-1])
    noise -= noise.mean(-1, keepdim=True)
    return noise / noise.std(-1, keepdim=True).clamp(min=1e-8)


def mix_at_snr(waves: torch.Tensor, lengths: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    """waves + noise scaled so that each row's signal-to-noise ratio over its real samples is `snr_db`;
    padding stays zero."""
    mask = (torch.arange(waves.size(1))[None, :] < lengths[:, None]).to(waves.dtype)
    count = lengths.clamp(min=1).to(waves.dtype)
    signal_power = (waves.square() * mask).sum(1) / count
    noise_power = (noise.square() * mask).sum(1) / count
    scale = torch.sqrt(signal_power / (noise_power.clamp(min=1e-12) * 10 ** (snr_db / 10)))
    return waves + noise * scale[:, None] * mask


def mu_law(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """8-bit mu-law coding and decoding (G.711's companding): quiet samples keep their precision,
    loud ones are quantised coarsely."""
    x = np.clip(x, -1.0, 1.0)
    coded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    coded = np.round((coded + 1) / 2 * mu) / mu * 2 - 1  # 256 levels
    return (np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu).astype(x.dtype)


def phone_channel(waves: np.ndarray, sample_rate: int, mulaw: bool = False) -> np.ndarray:
    """(B, N) waveforms through a telephone channel: to 8 kHz and back with the resampler
    load_audio uses (soxr), so only the band below 4 kHz is left; `mulaw`: 8-bit mu-law coded too."""
    narrow = librosa.resample(waves, orig_sr=sample_rate, target_sr=PHONE_RATE, res_type="soxr_hq")
    if mulaw:
        narrow = mu_law(narrow)
    wide = librosa.resample(narrow, orig_sr=PHONE_RATE, target_sr=sample_rate, res_type="soxr_hq")
    out = np.zeros_like(waves)
    n = min(out.shape[-1], wide.shape[-1])
    out[..., :n] = wide[..., :n]
    return out


def load_noise_dir(folder: str, sample_rate: int, max_seconds: float = MAX_NOISE_SECONDS) -> list:
    """The recordings under `folder` as float32 arrays (at most `max_seconds` in all); a file that
    cannot be read is named in a warning and skipped."""
    if not os.path.isdir(folder):
        raise ValueError(f"--noise_dir {folder}: not a folder")
    noises, total = [], 0.0
    for name in list_audio_files(folder):
        path = os.path.join(folder, name)
        try:
            samples = load_audio(path, sample_rate)
        except AudioError as e:
            warnings.warn(f"{e}; skipped as noise")
            continue
        if len(samples) == 0 or not np.any(samples):
            warnings.warn(f"{path}: silent or empty; skipped as noise")
            continue
        samples = samples[:int((max_seconds - total) * sample_rate)]
        noises.append(samples.astype(np.float32))
        total += len(samples) / sample_rate
        if total >= max_seconds:
            print(f"[augment] --noise_dir {folder}: using the first {max_seconds:g} s of noise", flush=True)
            break
    if not noises:
        raise ValueError(f"--noise_dir {folder}: no readable audio file")
    return noises


class WaveAugment:
    """The training loader's collate function: dataset.collate, then noise and the phone channel on
    the padded waveforms of a random share of the rows. Random numbers come from torch's generator,
    which the DataLoader seeds per worker from the run's seed, so a run repeats itself."""

    def __init__(self, sample_rate: int, noise_prob: float = 0.0, noise_snr=(5.0, 20.0), noise_dir: str = "",
                 phone_prob: float = 0.0, phone_mulaw: bool = False):
        for name, p in (("noise_prob", noise_prob), ("phone_prob", phone_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"--{name} is a share of utterances in [0, 1], got {p}")
        self.sample_rate, self.noise_prob, self.phone_prob, self.phone_mulaw = \
            sample_rate, noise_prob, phone_prob, phone_mulaw
        self.snr_low, self.snr_high = parse_snr_range(noise_snr)
        self.noises = load_noise_dir(noise_dir, sample_rate) if noise_dir and noise_prob > 0 else None

    @classmethod
    def from_config(cls, config, sample_rate: int):
        """From a TrainConfig's fields; None when neither noise nor the phone channel is on."""
        if config.noise_prob <= 0 and config.phone_prob <= 0:
            return None
        return cls(sample_rate, config.noise_prob, config.noise_snr, config.noise_dir, config.phone_prob,
                   config.phone_mulaw)

    def __call__(self, items):
        batch = collate(items)
        if batch is not None and "waves" in batch:
            batch["waves"] = self.augment(batch["waves"], batch["wave_lengths"])
        return batch

    def augment(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Noise at a random SNR on about noise_prob of the rows, then the phone channel on about
        phone_prob of them (noise of the room first, then the line)."""
        rows = len(waves)
        noisy = torch.rand(rows) < self.noise_prob
        if noisy.any():
            snr = self.snr_low + (self.snr_high - self.snr_low) * torch.rand(int(noisy.sum()))
            waves = waves.clone()
            waves[noisy] = mix_at_snr(waves[noisy], lengths[noisy], self.noise_for(waves, noisy), snr)
        phone = (torch.rand(rows) < self.phone_prob).numpy()
        if phone.any():
            out = waves.numpy().copy()
            out[phone] = phone_channel(out[phone], self.sample_rate, self.phone_mulaw)
            mask = (torch.arange(waves.size(1))[None, :] < lengths[:, None]).numpy()
            waves = torch.from_numpy(out * mask)  # the resampler's ringing must not leak into padding
        return waves

    def noise_for(self, waves: torch.Tensor, chosen_rows: torch.Tensor) -> torch.Tensor:
        """(R, N) noise for the R rows of `waves` where the (B,) bool `chosen_rows` is True, one kind per
        row: the user's recordings (a random stretch, looped), or white, pink, brown or babble (made of
        the batch's other rows), drawn uniformly."""
        rows, n = int(chosen_rows.sum()), waves.size(1)
        if self.noises is not None:
            out = torch.empty(rows, n)
            for r in range(rows):
                clip = self.noises[int(torch.randint(len(self.noises), ()))]
                start = int(torch.randint(len(clip), ()))
                out[r] = torch.from_numpy(np.resize(np.roll(clip, -start), n))  # np.resize loops the clip
            return out
        # One FFT shapes every row (white, pink and brown differ only in the exponent); babble rows
        # are then replaced by the batch's other utterances (a batch of one keeps pink noise there).
        kinds = torch.randint(len(NOISE_KINDS), (rows,))
        exponents = torch.tensor([NOISE_EXPONENTS[kind] for kind in NOISE_KINDS])[kinds]
        out = colored_noise((rows, n), exponents)
        talking = kinds == NOISE_KINDS.index("babble")
        if talking.any() and len(waves) > 1:
            out[talking] = babble(waves)[chosen_rows][talking]
        return out


def babble(waves: torch.Tensor, talkers: int = 3) -> torch.Tensor:
    """Per row, the sum of up to `talkers` other rows of the batch, each shifted in time by a random
    amount: several people speaking at once, the noise that is hardest to tell from speech."""
    rows, n = waves.shape
    out = torch.zeros_like(waves)
    for shift in range(1, min(talkers, rows - 1) + 1):
        out += torch.roll(torch.roll(waves, shift, 0), int(torch.randint(n, ())), 1)
    return out


def vtlp_warp(freqs: torch.Tensor, factors: torch.Tensor, sample_rate: int, boundary_hz: float = 4800.0):
    """Jaitly & Hinton's piecewise-linear warp, per factor (B,) of frequencies (F,) -> (B, F): f * factor
    up to a boundary, then a straight line to the Nyquist frequency, so the band stays [0, Nyquist]."""
    nyquist = sample_rate / 2
    factors = factors[:, None]
    knee = boundary_hz * torch.clamp(factors, max=1.0) / factors
    above = nyquist - (nyquist - boundary_hz * torch.clamp(factors, max=1.0)) / (nyquist - knee) * (nyquist - freqs)
    return torch.where(freqs <= knee, freqs * factors, above)


def vtlp_mel_bases(mel_basis: torch.Tensor, factors: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """(n_mels, F) filterbank -> (B, n_mels, F), one warped by each factor: the filter weights at FFT
    bin f are the original filter's at warp(f), so a tone at f lands where one at factor * f would."""
    bins = mel_basis.size(1)
    bin_hz = sample_rate / 2 / (bins - 1)
    freqs = torch.arange(bins, device=mel_basis.device, dtype=torch.float32) * bin_hz
    position = (vtlp_warp(freqs, factors.float(), sample_rate) / bin_hz).clamp(0, bins - 1)  # (B, F)
    low = position.floor().long().clamp(max=bins - 2)
    frac = (position - low).to(mel_basis.dtype)
    basis = mel_basis.unsqueeze(0).expand(len(factors), -1, -1)

    def at(index):  # (B, F) bin indices -> (B, n_mels, F) filter weights there
        return basis.gather(2, index[:, None, :].expand(-1, mel_basis.size(0), -1))

    return at(low) * (1 - frac[:, None, :]) + at(low + 1) * frac[:, None, :]
