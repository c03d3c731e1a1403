#!/usr/bin/env python3
"""Generate a synthetic Korean speech corpus with espeak-ng, in an NSML layout.

    python tools/make_corpus.py --out corpora/ko1h --hours 1
    python tools/make_corpus.py --out corpora/small --train-utts 200 --test-utts 40 --layout 2019
    python tools/make_corpus.py --task kws --out corpora/kws   # classification: see make_kws_corpus.py

Steps, each a function below:
  1. plan     - for every utterance: a sentence from the grammar (korean_text.py),
                a voice variant ("speaker") and its speed/pitch, and the
                augmentation settings. Train and test are kept apart: test
                sentences are held out by a hash of their text, and test voices
                are a fixed subset of the espeak-ng variants that train never uses.
  2. render   - synthesize with espeak-ng (a process per utterance, in a pool of
                --jobs workers), resample 22050 -> 16000 Hz, add room-like
                reverberation, leading/trailing silence and noise at a given SNR.
  3. write    - a layout writer stores the audio and labels as the 2022, 2023 or
                2019 competition data (see docs/nsml.md section 3).

The output depends only on the options (and the espeak-ng version): the same
--seed gives byte-identical files, whatever --jobs is.

Layout 2022 (default):
  OUT/train/train_data/idx_000000 ...  headerless 16 kHz int16 LE mono PCM
  OUT/train/train_label                CSV "filename,text"
  OUT/train/train_meta.csv             CSV "filename,speaker,sentence_id"
  OUT/test/test_data/test_000000 ...   same format (held-out sentences and voices)
  OUT/test/test_label                  CSV "filename,text"
  OUT/test/test_meta.csv
Layout 2023 (NOVA): the 2022 layout, except that the README of the 2023 edition calls the
  idx_* files WAV while its baseline reads them as raw PCM: every other file (even index)
  carries a 44-byte RIFF WAV header, still without an extension, so readers must go by content.
Layout 2019:
  OUT/train/train_data/data_list.csv   "wav_000001.wav,wav_000001.label" lines
  OUT/train/train_data/wav_000001.wav  16 kHz 16-bit mono RIFF WAV with a LIST/INFO chunk
  OUT/train/train_data/wav_000001.label  the character ids (as in train_label)
  OUT/train/train_label                "wav_000001,574 268 662 ..." lines (character ids)
  OUT/hackathon.labels                 "#id\\tchar\\tfreq" then one line per id:
                                       0 '_' (pad), ..., '<s>', '</s>' last
  OUT/test/test_data/test_list.csv     one wav filename per line
  OUT/test/test_data/test_000001.wav   same WAV format
  OUT/test/test_label                  CSV "filename,text" (filename with .wav, plain text)
Every layout also gets OUT/corpus_info.json (options, counts, hours, voices).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import multiprocessing
import shutil
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq
from scipy.signal import fftconvolve, resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent))
from korean_text import SentenceGenerator  # noqa: E402

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


# ==========================================================================
# Options
# ==========================================================================
@dataclass
class Options:
    out: Path
    layout: str = "2022"              # '2022', '2023' or '2019'
    hours: float | None = None        # total audio (train + test) ...
    test_share: float = 0.1           # ... of which this share is test
    train_utts: int | None = None     # or utterance counts
    test_utts: int | None = None
    seed: int = 1
    domain: str = "all"               # 'all', 'commands' (commands + questions), 'free'
    slot_limit: int = 0               # >0: first N alternatives per grammar slot
    masked_tokens: bool = False       # 2022-style &name& masks in some labels
    spread: float = 0.5               # 0: more repetition of short sentences, 1: all equally likely
    test_sentence_share: float = 0.2  # share of the grammar's sentences held out
    test_voice_share: float = 0.2     # share of voice variants kept for test
    test_known_chars: bool = False    # test sentences only use characters seen in train
    speed_min: int = 120              # espeak-ng words per minute
    speed_max: int = 200
    pitch_min: int = 20               # espeak-ng pitch 0..99
    pitch_max: int = 80
    noise_prob: float = 0.8           # share of utterances with added noise
    snr_min: float = 5.0              # dB
    snr_max: float = 30.0
    reverb: float = 0.3               # share of utterances with reverberation
    silence_max: float = 0.5          # seconds of silence, each end, at most
    jobs: int = 2
    force: bool = False
    progress: bool = True


def parse_args(argv=None) -> Options:
    p = argparse.ArgumentParser(
        description="Synthetic Korean speech corpus (espeak-ng) in an NSML dataset layout.")
    p.add_argument("--out", type=Path, required=True, help="output directory (dataset root)")
    p.add_argument("--layout", choices=["2022", "2023", "2019"], default="2022")
    size = p.add_argument_group("size (give --hours or --train-utts)")
    size.add_argument("--hours", type=float, help="total hours of audio, train + test")
    size.add_argument("--test-share", type=float, default=0.1,
                      help="with --hours: share of the audio that is test (default 0.1)")
    size.add_argument("--train-utts", type=int, help="number of training utterances")
    size.add_argument("--test-utts", type=int,
                      help="number of test utterances (default: a tenth of --train-utts)")
    p.add_argument("--seed", type=int, default=1)
    text = p.add_argument_group("text")
    text.add_argument("--domain", choices=["all", "commands", "free"], default="all",
                      help="all; commands (commands and questions); free (everyday sentences)")
    text.add_argument("--slot-limit", type=int, default=0,
                      help="keep the first N alternatives of each grammar slot (small vocabulary)")
    text.add_argument("--masked-tokens", action="store_true",
                      help="add sentences whose label masks a name as &name& (the audio says the name)")
    text.add_argument("--spread", type=float, default=0.5,
                      help="grammar choice weights = expansions**spread: 0 repeats short "
                           "sentences more, 1 makes all sentences equally likely")
    text.add_argument("--test-sentence-share", type=float, default=0.2)
    text.add_argument("--test-voice-share", type=float, default=0.2)
    text.add_argument("--test-known-chars", action="store_true",
                      help="test sentences only use characters that occur in the train labels")
    voice = p.add_argument_group("voice and augmentation")
    voice.add_argument("--speed", type=int, nargs=2, default=[120, 200], metavar=("MIN", "MAX"),
                       help="espeak-ng speed range, words per minute")
    voice.add_argument("--pitch", type=int, nargs=2, default=[20, 80], metavar=("MIN", "MAX"))
    voice.add_argument("--noise-prob", type=float, default=0.8)
    voice.add_argument("--snr", type=float, nargs=2, default=[5.0, 30.0], metavar=("MIN", "MAX"),
                       help="signal-to-noise ratio range in dB")
    voice.add_argument("--reverb", type=float, default=0.3,
                       help="share of utterances with reverberation")
    voice.add_argument("--silence-max", type=float, default=0.5,
                       help="longest leading/trailing silence in seconds")
    run = p.add_argument_group("run")
    run.add_argument("--jobs", type=int, default=2, help="worker processes")
    run.add_argument("--force", action="store_true", help="replace an existing corpus in --out")
    run.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.hours is None and a.train_utts is None:
        p.error("give --hours or --train-utts")
    if a.hours is not None and (a.train_utts is not None or a.test_utts is not None):
        p.error("give either --hours or --train-utts/--test-utts, not both")
    test_utts = a.test_utts
    if a.train_utts is not None and test_utts is None:
        test_utts = a.train_utts // 10
    return Options(
        out=a.out, layout=a.layout, hours=a.hours, test_share=a.test_share,
        train_utts=a.train_utts, test_utts=test_utts, seed=a.seed, domain=a.domain,
        slot_limit=a.slot_limit, masked_tokens=a.masked_tokens, spread=a.spread,
        test_sentence_share=a.test_sentence_share, test_voice_share=a.test_voice_share,
        test_known_chars=a.test_known_chars,
        speed_min=a.speed[0], speed_max=a.speed[1], pitch_min=a.pitch[0], pitch_max=a.pitch[1],
        noise_prob=a.noise_prob, snr_min=a.snr[0], snr_max=a.snr[1], reverb=a.reverb,
        silence_max=a.silence_max, jobs=a.jobs, force=a.force,
        progress=not a.no_progress)


# ==========================================================================
# 1. Plan: what each utterance says, who says it, how it is degraded
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


def speaker_style(voice: str, opt: Options) -> tuple[float, float]:
    """Each speaker has its own usual speed and pitch; utterances vary around it."""
    u, v = _stable_unit("speed:" + voice), _stable_unit("pitch:" + voice)
    speed = opt.speed_min + (0.2 + 0.6 * u) * (opt.speed_max - opt.speed_min)
    pitch = opt.pitch_min + (0.2 + 0.6 * v) * (opt.pitch_max - opt.pitch_min)
    return speed, pitch


def plan_utterances(split: str, voices: list[str], gen: SentenceGenerator, opt: Options,
                    charset: set | None = None):
    """Endless stream of Utterance plans for one split (deterministic from the seed).
    charset: only sentences written with these characters."""
    split_code = {"train": 0, "test": 1}[split]
    rng = np.random.default_rng([opt.seed, split_code])
    speed_span = (opt.speed_max - opt.speed_min) / 4
    pitch_span = (opt.pitch_max - opt.pitch_min) / 4
    index = 0
    while True:
        s = gen.draw_split(rng, test=(split == "test"), test_share=opt.test_sentence_share,
                           charset=charset)
        voice = voices[rng.integers(len(voices))]
        base_speed, base_pitch = speaker_style(voice, opt)
        speed = int(np.clip(round(base_speed + rng.uniform(-1, 1) * speed_span),
                            opt.speed_min, opt.speed_max))
        pitch = int(np.clip(round(base_pitch + rng.uniform(-1, 1) * pitch_span),
                            opt.pitch_min, opt.pitch_max))
        word_gap = int(rng.choice([0, 0, 0, 1, 2, 4]))
        text = s.spoken + ("?" if s.kind == "question" and not s.spoken.endswith("줘") else "")
        yield Utterance(split=split, index=index, text=text, label=s.label,
                        sentence_id=s.sentence_id, voice=voice, speed=speed, pitch=pitch,
                        word_gap=word_gap, seed=[opt.seed, split_code, index])
        index += 1


# ==========================================================================
# 2. Render: synthesis and augmentation
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


def augment(speech: np.ndarray, rng, opt: Options) -> tuple[np.ndarray, dict]:
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


def render(job: tuple[Utterance, Options]) -> tuple[Utterance, np.ndarray, dict]:
    """Utterance plan -> 16 kHz int16 audio."""
    utt, opt = job
    rng = np.random.default_rng(utt.seed)
    raw = espeak(utt.text, utt.voice, utt.speed, utt.pitch, utt.word_gap)
    speech = trim(raw)
    if len(speech) == 0:
        raise RuntimeError(f"espeak-ng produced silence for {utt.text!r} (voice {utt.voice})")
    audio, info = augment(to_16k(speech), rng, opt)
    return utt, to_int16(audio, rng), info


# ==========================================================================
# 3. Write: dataset layouts
# ==========================================================================
def write_csv(path: Path, rows, header=None):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        if header:
            w.writerow(header)
        w.writerows(rows)


class Layout2022:
    """Headerless PCM files and `filename,text` CSV labels (2022 competitions)."""
    prefix = {"train": "idx_", "test": "test_"}

    def __init__(self, root: Path):
        self.root = root
        self.rows = {"train": [], "test": []}
        self.meta = {"train": [], "test": []}
        for split in ("train", "test"):
            (root / split / f"{split}_data").mkdir(parents=True, exist_ok=True)

    def add(self, utt: Utterance, audio: np.ndarray):
        name = f"{self.prefix[utt.split]}{utt.index:06d}"
        path = self.root / utt.split / f"{utt.split}_data" / name
        path.write_bytes(self.audio_bytes(utt, audio))
        self.rows[utt.split].append((name, utt.label))
        self.meta[utt.split].append((name, utt.voice, utt.sentence_id))

    def audio_bytes(self, utt: Utterance, audio: np.ndarray) -> bytes:
        return audio.astype("<i2").tobytes()

    def labels(self, split: str) -> list[tuple[str, str]]:
        return self.rows[split]

    def finish(self):
        for split in ("train", "test"):
            write_csv(self.root / split / f"{split}_label", self.rows[split], ["filename", "text"])
            write_csv(self.root / split / f"{split}_meta.csv", self.meta[split],
                      ["filename", "speaker", "sentence_id"])


class Layout2023(Layout2022):
    """The 2022 names and labels; files of even index hold a RIFF WAV header (NOVA, 2023)."""

    def audio_bytes(self, utt: Utterance, audio: np.ndarray) -> bytes:
        return wav_bytes(audio) if utt.index % 2 == 0 else super().audio_bytes(utt, audio)


def wav_bytes(audio: np.ndarray, info_tags: dict[str, str] | None = None) -> bytes:
    """16 kHz 16-bit mono RIFF WAV; with info_tags, a LIST/INFO chunk before the data chunk."""
    def chunk(cid: bytes, payload: bytes) -> bytes:
        pad = b"\0" if len(payload) % 2 else b""
        return cid + struct.pack("<I", len(payload)) + payload + pad

    fmt = struct.pack("<HHIIHH", 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    info = b"INFO" + b"".join(chunk(k.encode("ascii"), v.encode("ascii") + b"\0")
                              for k, v in (info_tags or {}).items())
    body = (b"WAVE" + chunk(b"fmt ", fmt) + (chunk(b"LIST", info) if info_tags else b"")
            + chunk(b"data", audio.astype("<i2").tobytes()))
    return b"RIFF" + struct.pack("<I", len(body)) + body


def build_label_map(texts: list[str]) -> list[tuple[str, int]]:
    """2019 label map: '_' pad first, characters by frequency, '<s>' and '</s>' last."""
    freq: dict[str, int] = {}
    for t in texts:
        for ch in t:
            freq[ch] = freq.get(ch, 0) + 1
    chars = sorted(freq, key=lambda c: (-freq[c], c))
    return [("_", 0)] + [(c, freq[c]) for c in chars] + [("<s>", 0), ("</s>", 0)]


def read_label_map(path: Path) -> dict[int, str]:
    """id -> char, read like the 2019 baseline's label_loader.load_label."""
    index2char = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            idx, ch, _freq = line.rstrip("\n").split("\t")
            index2char[int(idx)] = ch if ch.strip() else " "
    return index2char


class Layout2019:
    """RIFF WAV files, data_list.csv, character-id labels and hackathon.labels (2019)."""
    info_tags = {"ISFT": "make_corpus.py (espeak-ng)"}

    def __init__(self, root: Path):
        self.root = root
        self.items = {"train": [], "test": []}
        self.meta = {"train": [], "test": []}
        for split in ("train", "test"):
            (root / split / f"{split}_data").mkdir(parents=True, exist_ok=True)

    def add(self, utt: Utterance, audio: np.ndarray):
        prefix = "wav_" if utt.split == "train" else "test_"
        name = f"{prefix}{utt.index + 1:06d}.wav"
        path = self.root / utt.split / f"{utt.split}_data" / name
        path.write_bytes(wav_bytes(audio, self.info_tags))
        self.items[utt.split].append((name, utt.label))
        self.meta[utt.split].append((name, utt.voice, utt.sentence_id))

    def labels(self, split: str) -> list[tuple[str, str]]:
        return self.items[split]

    def finish(self):
        texts = [t for split in ("train", "test") for _, t in self.items[split]]
        label_map = build_label_map(texts)
        char2id = {c: i for i, (c, _) in enumerate(label_map)}
        with open(self.root / "hackathon.labels", "w", encoding="utf-8") as f:
            f.write("#id\tchar\tfreq\n")
            for i, (c, n) in enumerate(label_map):
                f.write(f"{i}\t{c}\t{n}\n")
        data = self.root / "train" / "train_data"
        lines, listing = [], []
        for name, text in self.items["train"]:
            key = name[:-4]
            ids = " ".join(str(char2id[c]) for c in text)
            lines.append(f"{key},{ids}\n")
            listing.append(f"{name},{key}.label\n")
            (data / f"{key}.label").write_text(ids + "\n", encoding="utf-8")
        (self.root / "train" / "train_label").write_text("".join(lines), encoding="utf-8")
        (data / "data_list.csv").write_text("".join(listing), encoding="utf-8")
        test = self.root / "test"
        (test / "test_data" / "test_list.csv").write_text(
            "".join(f"{name}\n" for name, _ in self.items["test"]), encoding="utf-8")
        write_csv(test / "test_label", self.items["test"], ["filename", "text"])
        for split in ("train", "test"):
            write_csv(self.root / split / f"{split}_meta.csv", self.meta[split],
                      ["filename", "speaker", "sentence_id"])


LAYOUTS = {"2022": Layout2022, "2023": Layout2023, "2019": Layout2019}


# ==========================================================================
# Main
# ==========================================================================
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


def prepare_output(opt: Options):
    existing = [opt.out / p for p in ("train", "test", "hackathon.labels", "corpus_info.json")
                if (opt.out / p).exists()]
    if existing and not opt.force:
        raise SystemExit(f"error: {opt.out} already holds a corpus; use --force to replace it")
    for p in existing:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    opt.out.mkdir(parents=True, exist_ok=True)


class Feeder:
    """An iterator for Pool.imap that stays at most `lookahead` items ahead of
    the consumer (imap would otherwise drain an endless plan stream)."""

    def __init__(self, items, lookahead: int):
        self.items = iter(items)
        self.slots = threading.Semaphore(lookahead)
        self.closed = False

    def __iter__(self):
        return self

    def __next__(self):
        self.slots.acquire()
        if self.closed:
            raise StopIteration
        return next(self.items)

    def consumed(self):
        self.slots.release()

    def close(self):
        self.closed = True
        self.slots.release()


@dataclass
class SplitStats:
    utterances: int = 0
    seconds: float = 0.0
    sentences: set = field(default_factory=set)
    voices: set = field(default_factory=set)
    noisy: int = 0
    reverberant: int = 0

    def reached(self, kind: str, target: float) -> bool:
        return (self.utterances if kind == "utts" else self.seconds) >= target

    def add(self, utt: Utterance, audio: np.ndarray, info: dict) -> float:
        secs = len(audio) / SAMPLE_RATE
        self.utterances += 1
        self.seconds += secs
        self.sentences.add(utt.sentence_id)
        self.voices.add(utt.voice)
        self.noisy += "noise" in info
        self.reverberant += "reverb" in info
        return secs

    def summary(self) -> dict:
        return {"utterances": self.utterances, "hours": round(self.seconds / 3600, 4),
                "distinct_sentences": len(self.sentences), "speakers": sorted(self.voices),
                "noisy": self.noisy, "reverberant": self.reverberant}


class Progress:
    def __init__(self, total: float, unit: str, enabled: bool):
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=round(total, 1), unit=unit, dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def generate(opt: Options) -> dict:
    start = time.time()
    voices_all = available_voices()
    train_voices, test_voices = split_voices(voices_all, opt.test_voice_share)
    gen = SentenceGenerator(opt.domain, opt.slot_limit, opt.masked_tokens, opt.spread)
    prepare_output(opt)
    writer = LAYOUTS[opt.layout](opt.out)
    if opt.hours is not None:
        targets = {"train": ("seconds", opt.hours * 3600 * (1 - opt.test_share)),
                   "test": ("seconds", opt.hours * 3600 * opt.test_share)}
        total, unit = opt.hours * 3600, "s audio"
    else:
        targets = {"train": ("utts", opt.train_utts), "test": ("utts", opt.test_utts)}
        total, unit = opt.train_utts + opt.test_utts, "utt"

    stats = {s: SplitStats() for s in ("train", "test")}
    # Fork the workers before any thread exists (tqdm starts one).
    with multiprocessing.get_context("fork").Pool(max(1, opt.jobs)) as pool:
        progress = Progress(total, unit, opt.progress)
        for split, voices in (("train", train_voices), ("test", test_voices)):
            kind, target = targets[split]
            st = stats[split]
            if st.reached(kind, target):
                continue
            charset = None
            if split == "test" and opt.test_known_chars:
                charset = {c for _, label in writer.labels("train") for c in label}
            plans = plan_utterances(split, voices, gen, opt, charset)
            if kind == "utts":
                plans = itertools.islice(plans, target)
            # The workers render ahead of the writer by at most `lookahead`
            # utterances; results past the target are dropped, so the output
            # does not depend on --jobs.
            feed = Feeder(((utt, opt) for utt in plans), lookahead=8 * max(1, opt.jobs))
            try:
                for utt, audio, info in pool.imap(render, feed, chunksize=2):
                    feed.consumed()
                    writer.add(utt, audio)
                    secs = st.add(utt, audio, info)
                    progress.update(1 if kind == "utts" else secs)
                    if st.reached(kind, target):
                        break
            finally:
                feed.close()  # else the pool's feeding thread waits forever
    writer.finish()
    progress.close()
    elapsed = time.time() - start

    summary = {
        "layout": opt.layout, "seed": opt.seed,
        "grammar_sentences": gen.count(),
        "splits": {s: v.summary() for s, v in stats.items()},
        "train_voices": train_voices, "test_voices": test_voices,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opt).items()
                    if k not in ("out", "force", "progress", "jobs")},
    }
    (opt.out / "corpus_info.json").write_text(  # no timings: same options, same file
        json.dumps(summary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    summary["seconds_taken"] = round(elapsed, 2)
    return summary


def main(argv=None):
    if classification_task(sys.argv[1:] if argv is None else argv):
        return make_classification_corpus(sys.argv[1:] if argv is None else argv)
    opt = parse_args(argv)
    try:
        summary = generate(opt)
    except EspeakMissing as e:
        raise SystemExit(f"error: {e}")
    hours = sum(s["hours"] for s in summary["splits"].values())
    utts = sum(s["utterances"] for s in summary["splits"].values())
    secs = summary["seconds_taken"]
    tr, te = summary["splits"]["train"], summary["splits"]["test"]
    print(f"wrote {utts} utterances, {hours:.3f} h of audio to {opt.out} (layout {opt.layout}) "
          f"in {secs:.1f} s ({secs / max(hours, 1e-9):.1f} s per hour of audio)")
    print(f"  train: {tr['utterances']} utts, {tr['hours']:.3f} h, "
          f"{tr['distinct_sentences']} sentences, {len(tr['speakers'])} voices")
    print(f"  test:  {te['utterances']} utts, {te['hours']:.3f} h, "
          f"{te['distinct_sentences']} sentences, {len(te['speakers'])} voices "
          f"(held-out sentences and voices)")



# ==========================================================================
# Classification corpora: --task kws | mixture (tools/make_kws_corpus.py)
# ==========================================================================
def classification_task(argv: list[str]) -> bool:
    """`--task kws` (keyword spotting) or `--task mixture` (overlapped words, class shares)."""
    args = " ".join(argv)
    return any(f"--task{sep}{task}" in args for sep in (" ", "=") for task in ("kws", "mixture"))


def make_classification_corpus(argv: list[str]):
    """Those corpora reuse this file's synthesis and voices; their plans and layouts live there."""
    from make_kws_corpus import main as make_kws_main
    return make_kws_main(argv)


if __name__ == "__main__":
    main()
