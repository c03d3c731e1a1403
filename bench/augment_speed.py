"""Audio seconds per second one loader worker augments (issue 23): noise at a random SNR (each
generated kind, and a --noise_dir), the 8 kHz phone channel with and without mu-law, and the
cost VTLP adds to feature computation, on the same batch in the same run.

A loader worker is one process with one torch thread (the DataLoader's default), so this runs on
one thread. The batch is a CPU training batch of the kit's (90 s of padded audio: 24 utterances
of 3-4.5 s at 16 kHz); reading the files is not included (bench/README.md has the loader's own
figures). A worker keeps a GPU fed when its audio-s/s times the number of workers exceeds the
GPU's training throughput (bench/README.md: 5-7k audio-s/s for a Conformer on an A100).

    python bench/augment_speed.py [--repeats 10] [--quick] [--out FILE.json]
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from modules.features import FeatureConfig, LogMelFilterbank  # noqa: E402
from modules.transcribe.augment import WaveAugment, babble, colored_noise, mix_at_snr, vtlp_mel_bases  # noqa: E402

RATE = 16000


def training_batch(rows: int, max_seconds: float, seed: int = 0):
    """(rows, N) padded waveforms like a training batch (lengths 2/3 to all of the longest) and lengths."""
    generator = torch.Generator().manual_seed(seed)
    n = int(max_seconds * RATE)
    lengths = (n * (2 / 3 + torch.rand(rows, generator=generator) / 3)).long().clamp(max=n)
    lengths[0] = n
    waves = 0.1 * torch.randn(rows, n, generator=generator)
    return waves * (torch.arange(n)[None, :] < lengths[:, None]), lengths


def audio_seconds_per_second(fn, lengths, repeats: int) -> float:
    fn()  # warm up (first calls import and plan)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(lengths.sum()) / RATE / float(np.median(times))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="a small batch and 3 repeats (a smoke run; figures rough)")
    p.add_argument("--out", default=None, help="JSON file (default: bench/results/augment_speed.json, "
                                               "not written in --quick mode unless given)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    rows, seconds, repeats = (6, 3.0, 3) if a.quick else (24, 4.5, a.repeats)
    waves, lengths = training_batch(rows, seconds)
    snr = torch.full((rows,), 10.0)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as noise_dir:
        for i in range(3):  # 3 files of 10 s of pink noise as a user's noise folder
            noise = colored_noise((1, 10 * RATE), 1.0, torch.Generator().manual_seed(i))[0].numpy()
            (np.clip(0.1 * noise, -1, 1) * 32767).astype("<i2").tofile(os.path.join(noise_dir, f"noise{i}.pcm"))
        from_dir = WaveAugment(RATE, noise_prob=1.0, noise_dir=noise_dir)
    cases = {
        "noise white": lambda: mix_at_snr(waves, lengths, colored_noise(waves.shape, 0.0), snr),
        "noise pink": lambda: mix_at_snr(waves, lengths, colored_noise(waves.shape, 1.0), snr),
        "noise brown": lambda: mix_at_snr(waves, lengths, colored_noise(waves.shape, 2.0), snr),
        "noise babble": lambda: mix_at_snr(waves, lengths, babble(waves), snr),
        "noise generated (--noise_prob 1)": lambda: WaveAugment(RATE, noise_prob=1.0).augment(waves, lengths),
        "noise from --noise_dir": lambda: from_dir.augment(waves, lengths),
        "phone 8 kHz (--phone_prob 1)": lambda: WaveAugment(RATE, phone_prob=1.0).augment(waves, lengths),
        "phone 8 kHz + mu-law": lambda: WaveAugment(RATE, phone_prob=1.0, phone_mulaw=True).augment(waves, lengths),
        "noise + phone + mu-law": lambda: WaveAugment(RATE, noise_prob=1.0, phone_prob=1.0,
                                                      phone_mulaw=True).augment(waves, lengths),
    }
    results = {}
    for name, fn in cases.items():
        results[name] = audio_seconds_per_second(fn, lengths, repeats)
        print(f"{name:36s} {results[name]:10,.0f} audio-s/s per worker", flush=True)

    # VTLP runs where features are computed (the training device): its cost is the warped filterbanks
    # and a batched product instead of one shared filterbank.
    featurizer = LogMelFilterbank(FeatureConfig())
    factors = 0.9 + 0.2 * torch.rand(rows)
    plain = audio_seconds_per_second(lambda: featurizer(waves, lengths), lengths, repeats)
    warped = audio_seconds_per_second(
        lambda: featurizer(waves, lengths, vtlp_mel_bases(featurizer.mel_basis, factors, RATE)), lengths, repeats)
    results["features (1 CPU thread)"], results["features with VTLP (1 CPU thread)"] = plain, warped
    print(f"{'features, 1 CPU thread':36s} {plain:10,.0f} audio-s/s; with VTLP {warped:,.0f}", flush=True)

    out = a.out or (None if a.quick else os.path.join(ROOT, "bench", "results", "augment_speed.json"))
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump({"audio_s_per_s": results, "batch": {"rows": rows, "max_seconds": seconds,
                                                           "audio_seconds": float(lengths.sum()) / RATE},
                       "repeats": repeats, "quick": a.quick, "machine": platform.processor() or platform.machine(),
                       "cpus": os.cpu_count()}, f, indent=1)
        print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
