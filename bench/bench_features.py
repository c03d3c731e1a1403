"""Feature extraction and batching figures for the data pipeline.

For each corpus (the sample dataset, or /tmp/dev/ds, and a generated 1-hour corpus) prints:
  - feature extraction seconds per hour of audio: the kit's batched torch LogMelFilterbank vs a
    per-file librosa.feature.melspectrogram loop (the usual reference), and their ratio, same run;
  - audio loading seconds per hour, and an epoch's data time without cache vs with a warm feature
    cache (load+features vs reading cached features), to see whether the cache pays off;
  - padding fraction of the training batches (DurationBatchSampler, CPU budget 90 s);
  - peak RSS of the process.
Writes bench/results/features.json.  Both sides run on one thread (torch.set_num_threads(1)),
since librosa's loop is single-threaded and the machine is shared.

    python bench/bench_features.py [--dataset PATH] [--hours 1.0] [--out bench/results/features.json]
"""
import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from modules.audio import load_audio  # noqa: E402
from modules.data import DurationBatchSampler, read_training_set  # noqa: E402
from modules.feature_cache import FeatureCache  # noqa: E402
from modules.features import FeatureConfig, LogMelFilterbank  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_dataset():
    for path in (os.path.join(ROOT, "sample_dataset"), "/tmp/dev/ds"):
        if os.path.isdir(os.path.join(path, "train")):
            return path
    sys.exit("no dataset: pass --dataset PATH (2019 or 2022 layout)")


def make_hour_corpus(source_utts, hours, folder, seed=0):
    """A 2022-layout corpus of `hours` of audio tiled from `source_utts`, each copy perturbed
    (speed via resampling by 0.9-1.1, gain, a little noise) so no two files are identical."""
    import librosa

    rng = np.random.default_rng(seed)
    data = os.path.join(folder, "train", "train_data")
    os.makedirs(data, exist_ok=True)
    rows, total, i = ["filename,text"], 0.0, 0
    waves = [(load_audio(u.path), u.text) for u in source_utts]
    while total < hours * 3600:
        wave, text = waves[i % len(waves)]
        rate = rng.uniform(0.9, 1.1)
        wave = librosa.resample(wave, orig_sr=16000, target_sr=int(16000 * rate), res_type="soxr_qq")
        wave = wave * rng.uniform(0.5, 1.2) + rng.normal(0, 0.003, size=len(wave))
        name = f"idx_{i:06d}"
        (np.clip(wave, -1, 1) * 32767).astype("<i2").tofile(os.path.join(data, name))
        rows.append(f"{name},{text}")
        total += len(wave) / 16000
        i += 1
    with open(os.path.join(folder, "train", "train_label"), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    return folder


def measure(name, dataset, cache_root):
    import librosa

    utts = read_training_set(dataset)
    hours = sum(u.duration for u in utts) / 3600
    config = FeatureConfig()
    featurizer = LogMelFilterbank(config)

    t = time.perf_counter()
    waves = [torch.from_numpy(load_audio(u.path)) for u in utts]
    load_s = time.perf_counter() - t

    sampler = DurationBatchSampler([u.duration for u in utts], 90.0, shuffle=True, seed=0)
    sampler.set_epoch(1)
    padding = sampler.padding_fraction()

    t = time.perf_counter()
    for batch in sampler:
        lengths = torch.tensor([len(waves[i]) for i in batch])
        padded = torch.zeros(len(batch), int(lengths.max()))
        for row, i in enumerate(batch):
            padded[row, : len(waves[i])] = waves[i]
        featurizer(padded, lengths)
    kit_s = time.perf_counter() - t

    t = time.perf_counter()
    for w in waves:
        mel = librosa.feature.melspectrogram(y=w.numpy(), sr=16000, n_fft=config.n_fft, hop_length=config.hop_length,
                                             win_length=config.win_length, n_mels=config.n_mels)
        np.log(mel + 1e-6)
    librosa_s = time.perf_counter() - t
    del waves

    cache = FeatureCache(os.path.join(cache_root, name), config)
    t = time.perf_counter()
    for u in utts:
        cache.features(u.path)
    cold_s = time.perf_counter() - t
    t = time.perf_counter()
    for u in utts:
        cache.features(u.path)
    warm_s = time.perf_counter() - t

    per_hour = lambda s: s / hours
    return {
        "dataset": dataset, "utterances": len(utts), "audio_hours": round(hours, 4),
        "kit_torch_batched_s_per_hour": round(per_hour(kit_s), 2),
        "librosa_per_file_s_per_hour": round(per_hour(librosa_s), 2),
        "librosa_over_kit_ratio": round(librosa_s / kit_s, 2),
        "load_audio_s_per_hour": round(per_hour(load_s), 2),
        "epoch_data_no_cache_s_per_hour": round(per_hour(load_s + kit_s), 2),
        "cache_cold_s_per_hour": round(per_hour(cold_s), 2),
        "cache_warm_s_per_hour": round(per_hour(warm_s), 2),
        "cache_speedup_warm_vs_no_cache": round((load_s + kit_s) / warm_s, 2),
        "padding_fraction": round(padding, 4),
        "batches": len(sampler),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default=None)
    p.add_argument("--hours", type=float, default=1.0, help="size of the generated corpus")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "features.json"))
    args = p.parse_args()
    torch.set_num_threads(1)
    import warnings
    warnings.simplefilter("ignore")

    dataset = args.dataset or default_dataset()
    work = tempfile.mkdtemp(prefix="bench_features_")
    try:
        hour = make_hour_corpus(read_training_set(dataset), args.hours, os.path.join(work, "hour"))
        results = {"torch_threads": 1, "corpora": {
            "sample": measure("sample", dataset, os.path.join(work, "cache")),
            f"generated_{args.hours:g}h": measure("hour", hour, os.path.join(work, "cache")),
        }}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    keys = list(next(iter(results["corpora"].values())))[1:]
    names = list(results["corpora"])
    print(f"{'figure':34s}" + "".join(f"{n:>18s}" for n in names))
    for k in keys:
        print(f"{k:34s}" + "".join(f"{results['corpora'][n][k]:>18}" for n in names))
    print(f"peak RSS {results['peak_rss_mib']} MiB; torch threads 1")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
