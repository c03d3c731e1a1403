"""Korean speech from espeak-ng, degraded like a recording: what make_corpus.py and make_kws_corpus.py share.

    plan     Utterance (what is said, by which voice, how fast, how high), split_voices, speaker_style
    render   render((utterance, RenderOptions)) -> 16 kHz int16 audio: espeak-ng (a process per
             utterance: reproducible), resampling, reverberation, silence, noise at an SNR, level, dither
    write    write_csv

No torch; numpy and scipy only. The speech corpora (make_corpus.py) and the classification
corpora (make_kws_corpus.py) import this file, and neither imports the other's internals.
"""
from __future__ import annotations

import csv
import hashlib
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq
from scipy.signal import fftconvolve, resample_poly

SAMPLE_RATE = 16000
ESPEAK_RATE = 22050  # espeak-ng's output rate

# espeak-ng voice variants (files in espeak-ng-data/voices/!v). Each one is a
# "speaker". Left out: near-duplicates (klatt6 = klatt5, edward2 ~ edward,
# RicishayMax3 ~ RicishayMax2), 'Mr serious' (space in the name), and the
# whisper and Demonic voices, which are not speech one would record.
VOICE_VARIANTS = [
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo",
    "Gene", "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario",
    "Michael", "Mike", "Nguyen", "RicishayMax", "RicishayMax2", "Storm", "Tweaky",
    "UniRobot", "adam", "anika", "anikaRobot", "announcer", "antonio", "aunty",
    "belinda", "benjamin", "boris", "caleb", "croak", "david", "ed", "edward",
    "f1", "f2", "f3", "f4", "f5", "fast", "grandma", "grandpa", "gustave", "iven",
    "iven2", "iven3", "iven4", "john", "kaukovalta", "klatt", "klatt2", "klatt3",
    "klatt4", "klatt5", "linda", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul", "pedro",
    "quincy", "rob", "robert", "robosoft", "robosoft2", "robosoft3", "robosoft4",
    "robosoft5", "robosoft6", "robosoft7", "robosoft8", "sandro", "shelby",
    "steph", "steph2", "steph3", "travis", "victor", "zac",
]
NOISE_COLORS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power ~ 1/f^alpha

@dataclass
class RenderOptions:
    """How speakers sound and how recordings are degraded (make_corpus.py's voice and augmentation options)."""
    speed_min: int = 120              # espeak-ng words per minute
    speed_max: int = 200
    pitch_min: int = 20               # espeak-ng pitch 0..99
    pitch_max: int = 80
    noise_prob: float = 0.8           # share of utterances with added noise
    snr_min: float = 5.0              # dB
    snr_max: float = 30.0
    reverb: float = 0.3               # share of utterances with reverberation
    silence_max: float = 0.5          # seconds of silence, each end, at most


# ==========================================================================
# Plan: who says what
# ==========================================================================
@dataclass
class Utterance:
    split: str          # 'train' or 'test'
    index: int          # position in its split
    text: str           # spoken text (given to espeak-ng)
    label: str          # transcription
    sentence_id: str
    voice: str          # espeak-ng variant = speaker
    speed: int
    pitch: int
    word_gap: int       # extra pause between words, in 10 ms units
    seed: list = field(default_factory=list)  # for the augmentation's random numbers


def _stable_unit(name: str) -> float:
    """A number in [0, 1) fixed by a name (same on every machine and run)."""
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def split_voices(variants: list[str], test_share: float) -> tuple[list[str], list[str]]:
    """Fixed train/test split of the voice variants (independent of the seed)."""
    ranked = sorted(variants, key=lambda v: (_stable_unit("voice:" + v), v))
    n_test = max(1, round(len(ranked) * test_share))
    return sorted(ranked[n_test:]), sorted(ranked[:n_test])


def speaker_style(voice: str, opt: RenderOptions) -> tuple[float, float]:
    """Each speaker has its own usual speed and pitch; utterances vary around it."""
    u, v = _stable_unit("speed:" + voice), _stable_unit("pitch:" + voice)
    speed = opt.speed_min + (0.2 + 0.6 * u) * (opt.speed_max - opt.speed_min)
    pitch = opt.pitch_min + (0.2 + 0.6 * v) * (opt.pitch_max - opt.pitch_min)
    return speed, pitch


# ==========================================================================
# Render: synthesis and augmentation
# ==========================================================================
class EspeakMissing(RuntimeError):
    pass


INSTALL_HINT = "espeak-ng is not installed: run `apt-get install -y espeak-ng` (Debian/Ubuntu)"


def check_espeak():
    if shutil.which("espeak-ng") is None:
        raise EspeakMissing(INSTALL_HINT)


def espeak(text: str, voice: str, speed: int, pitch: int, word_gap: int,
           amplitude: int = 50) -> np.ndarray:
    """Korean speech from one `espeak-ng --stdout` run: int16 samples at 22050 Hz.

    A process per utterance, on purpose: driving libespeak-ng through ctypes in
    one process is faster (measured 2-3 ms against 9 ms per utterance) but not
    reproducible, because the library keeps synthesis state between utterances
    (pitch flutter phase and more), so the samples depend on what the process
    said before; espeak_Terminate + espeak_Initialize to reset it hangs.
    Amplitude 50 of 200 keeps the louder variants from clipping.
    """
    cmd = ["espeak-ng", "-v", "ko+" + voice, "-s", str(speed), "-p", str(pitch),
           "-a", str(amplitude), "-g", str(word_gap), "--stdout", text]
    try:
        out = subprocess.run(cmd, capture_output=True, check=True).stdout
    except FileNotFoundError as e:
        raise EspeakMissing(INSTALL_HINT) from e
    pos = out.find(b"data")  # a plain 44-byte header; its sizes are not filled in on a pipe
    if out[:4] != b"RIFF" or pos < 0:
        raise RuntimeError(f"espeak-ng gave no WAV for {text!r}")
    pcm = out[pos + 8:]
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")


def trim(x: np.ndarray, threshold: int = 64) -> np.ndarray:
    """Cut espeak-ng's own leading/trailing silence (we add our own)."""
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > threshold)
    return x[loud[0]: loud[-1] + 1] if len(loud) else x[:0]


def to_16k(x: np.ndarray) -> np.ndarray:
    """int16 at 22050 Hz -> float at 16000 Hz (polyphase, up 320 / down 441)."""
    g = math.gcd(SAMPLE_RATE, ESPEAK_RATE)
    return resample_poly(x.astype(np.float64) / 32768.0, SAMPLE_RATE // g, ESPEAK_RATE // g)


def colored_noise(n: int, alpha: float, rng) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f^alpha (0 white, 1 pink, 2 brown), unit RMS."""
    if alpha == 0:
        return rng.standard_normal(n)
    m = next_fast_len(n, real=True)  # an FFT of a length with large prime factors is slow
    spec = rfft(rng.standard_normal(m))
    f = np.maximum(rfftfreq(m, 1.0 / SAMPLE_RATE), 20.0)  # flat below 20 Hz
    spec *= f ** (-alpha / 2)
    spec[0] = 0.0
    noise = irfft(spec, m)[:n]
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def room_impulse(rng) -> np.ndarray:
    """Synthetic room: direct sound, then exponentially decaying noise (RT60 0.15-0.8 s)."""
    rt60 = rng.uniform(0.15, 0.8)
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)   # -60 dB at rt60
    predelay = int(rng.uniform(0.002, 0.02) * SAMPLE_RATE)    # first reflections
    tail[:predelay] = 0.0
    tail *= rng.uniform(0.15, 0.6) / (np.sqrt(np.sum(tail ** 2)) + 1e-12)  # direct-to-reverb
    tail[0] = 1.0
    return tail


def augment(speech: np.ndarray, rng, opt: RenderOptions) -> tuple[np.ndarray, dict]:
    """Reverberation, silence padding, noise, level; returns float audio and what was done."""
    info = {}
    if rng.random() < opt.reverb:
        ir = room_impulse(rng)
        speech = fftconvolve(speech, ir)[: len(speech) + len(ir) // 2]
        info["reverb"] = True
    lead = int(rng.uniform(0.05, max(opt.silence_max, 0.05)) * SAMPLE_RATE)
    tail = int(rng.uniform(0.05, max(opt.silence_max, 0.05)) * SAMPLE_RATE)
    speech_power = np.mean(speech ** 2) + 1e-12
    y = np.concatenate([np.zeros(lead), speech, np.zeros(tail)])
    if rng.random() < opt.noise_prob:
        color = list(NOISE_COLORS)[rng.integers(len(NOISE_COLORS))]
        snr = rng.uniform(opt.snr_min, opt.snr_max)
        noise = colored_noise(len(y), NOISE_COLORS[color], rng)
        y = y + noise * np.sqrt(speech_power / 10 ** (snr / 10))
        info.update(noise=color, snr=round(float(snr), 1))
    peak_db = rng.uniform(-14.0, -2.0)  # recording level
    y *= 10 ** (peak_db / 20) / (np.max(np.abs(y)) + 1e-12)
    return y, info


def to_int16(y: np.ndarray, rng) -> np.ndarray:
    dither = rng.uniform(-0.5, 0.5, len(y)) + rng.uniform(-0.5, 0.5, len(y))  # TPDF, 1 LSB
    return np.clip(np.round(y * 32767 + dither), -32768, 32767).astype(np.int16)


def render(job: tuple[Utterance, RenderOptions]) -> tuple[Utterance, np.ndarray, dict]:
    """Utterance plan -> 16 kHz int16 audio."""
    utt, opt = job
    rng = np.random.default_rng(utt.seed)
    raw = espeak(utt.text, utt.voice, utt.speed, utt.pitch, utt.word_gap)
    speech = trim(raw)
    if len(speech) == 0:
        raise RuntimeError(f"espeak-ng produced silence for {utt.text!r} (voice {utt.voice})")
    audio, info = augment(to_16k(speech), rng, opt)
    return utt, to_int16(audio, rng), info


def available_voices() -> list[str]:
    """VOICE_VARIANTS that this espeak-ng installation has (a missing variant would
    silently fall back to the plain voice and merge two 'speakers')."""
    check_espeak()
    run = lambda *args: subprocess.run(["espeak-ng", *args], capture_output=True,  # noqa: E731
                                       text=True).stdout
    if not any(line.split()[1:2] == ["ko"] for line in run("--voices=ko").splitlines()):
        raise EspeakMissing("this espeak-ng has no Korean voice 'ko'; " + INSTALL_HINT)
    version = run("--version")
    data_dir = Path(version.split("Data at:")[-1].strip()) if "Data at:" in version else None
    if data_dir is None or not (data_dir / "voices" / "!v").is_dir():
        return list(VOICE_VARIANTS)
    have = {p.name for p in (data_dir / "voices" / "!v").iterdir()}
    missing = [v for v in VOICE_VARIANTS if v not in have]
    if missing:
        print(f"warning: espeak-ng lacks voice variants {missing}; not using them", file=sys.stderr)
    return [v for v in VOICE_VARIANTS if v in have]


def write_csv(path: Path, rows, header=None):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        if header:
            w.writerow(header)
        w.writerows(rows)
