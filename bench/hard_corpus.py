"""A harder held-out: a generated corpus whose test split has noise at a random SNR and a phone channel.

    python tools/make_corpus.py --out corpora/ko2h --hours 2.2
    python bench/hard_corpus.py corpora/ko2h corpora/ko2h_hard [--snr 0,15] [--seed 0]

The test split of tools/make_corpus.py already has unseen sentences and unseen voices; this adds
what participants meet in a competition's test set and a quiet synthetic one lacks (issue 23.4).
Every test file gets, in this order:
  1. additive noise at an SNR drawn uniformly from --snr (dB): white, pink, brown or babble (three
     other test utterances at once, shifted in time), one kind per file;
  2. a telephone channel: resampled to 8 kHz and back (nothing above 4 kHz is left) and 8-bit
     mu-law coded, as G.711 telephony is (the 2019 competition's data was phone speech).
The degradations are the training augmentations' own (modules/transcribe/augment.py), so a model
trained with --noise_prob / --phone_prob meets the same kinds of noise and channel, not the same
noise samples. Train is linked, not copied (OUT/train -> SRC/train); labels are unchanged. Files
are rewritten in the format they had (headerless PCM or RIFF WAV, found by content). The same
--seed gives the same files. OUT/hard_corpus.json records the settings and each file's noise and SNR.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import soundfile
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from modules.audio import SAMPLE_RATE, list_audio_files, load_audio  # noqa: E402
from modules.transcribe.augment import (  # noqa: E402
    NOISE_EXPONENTS,
    NOISE_KINDS,
    colored_noise,
    mix_at_snr,
    parse_snr_range,
    phone_channel,
)

LIST_FILES = (".csv", ".txt", ".json", ".labels")  # test_list.csv and friends: copied, not degraded


def degrade(samples: np.ndarray, others: list, kind: str, snr_db: float, generator: torch.Generator) -> np.ndarray:
    """One test file through noise of `kind` at `snr_db` and the mu-law phone channel."""
    wave = torch.from_numpy(samples)[None]
    n = wave.size(1)
    if kind == "babble":
        noise = torch.zeros(1, n)
        for other in others:
            shift = int(torch.randint(max(len(other), 1), (), generator=generator))
            noise += torch.from_numpy(np.resize(np.roll(other, -shift), n))[None]
    else:
        noise = colored_noise((1, n), NOISE_EXPONENTS[kind], generator)
    noisy = mix_at_snr(wave, torch.tensor([n]), noise, torch.tensor([snr_db]))[0].numpy()
    return np.clip(phone_channel(noisy[None].astype(np.float32), SAMPLE_RATE, mulaw=True)[0], -1.0, 1.0)


def write_like(path: str, samples: np.ndarray, original_head: bytes):
    """Write 16-bit samples in the original file's format: RIFF WAV if it had that header, else raw PCM."""
    pcm = (samples * 32767).round().astype("<i2")
    if original_head[:4] == b"RIFF":
        soundfile.write(path, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    else:
        pcm.tofile(path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="a corpus made by tools/make_corpus.py (any layout)")
    p.add_argument("out", help="the harder copy (must not exist)")
    p.add_argument("--snr", default="0,15", help="SNR range in dB (default 0,15)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    low, high = parse_snr_range(a.snr)
    test_data = os.path.join(a.source, "test", "test_data")
    if not os.path.isdir(test_data):
        sys.exit(f"{a.source}: no test/test_data folder; make the corpus with tools/make_corpus.py")
    if os.path.exists(a.out):
        sys.exit(f"{a.out} exists; give a new folder")
    os.makedirs(a.out)
    for name in os.listdir(a.source):  # train linked, test rebuilt below, the rest copied
        src, dst = os.path.join(os.path.abspath(a.source), name), os.path.join(a.out, name)
        if name == "train":
            os.symlink(src, dst)
        elif name != "test":
            (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, dst)
    shutil.copytree(os.path.join(a.source, "test"), os.path.join(a.out, "test"))

    names = [n for n in list_audio_files(test_data) if not n.endswith(LIST_FILES)]
    audio = {n: load_audio(os.path.join(test_data, n)) for n in names}
    generator = torch.Generator().manual_seed(a.seed)
    record = {}
    for i, name in enumerate(names):
        kind = NOISE_KINDS[int(torch.randint(len(NOISE_KINDS), (), generator=generator))]
        snr = low + (high - low) * float(torch.rand((), generator=generator))
        others = [audio[names[(i + k) % len(names)]] for k in (1, 2, 3)] if len(names) > 1 else [audio[name]]
        degraded = degrade(audio[name], others, kind, snr, generator)
        with open(os.path.join(test_data, name), "rb") as f:
            head = f.read(4)
        write_like(os.path.join(a.out, "test", "test_data", name), degraded, head)
        record[name] = {"noise": kind, "snr_db": round(snr, 2)}
    with open(os.path.join(a.out, "hard_corpus.json"), "w") as f:
        json.dump({"source": os.path.abspath(a.source), "snr_db": [low, high], "seed": a.seed,
                   "channel": "8 kHz + mu-law", "files": record}, f, indent=1, ensure_ascii=False)
    kinds = {k: sum(r["noise"] == k for r in record.values()) for k in NOISE_KINDS}
    print(f"{a.out}: {len(record)} test files degraded (noise {kinds}, SNR {low:g}-{high:g} dB, 8 kHz + mu-law); "
          f"train linked to {os.path.abspath(os.path.join(a.source, 'train'))}")


if __name__ == "__main__":
    main()
