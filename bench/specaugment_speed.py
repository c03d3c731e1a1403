"""SpecAugment's time per training batch: the row loop the kit had before issue 20 against the
vectorised `modules.features.spec_augment`, same batch, same device, same run.

The batch is a GPU batch of the auto recipe: 64 utterances of up to 24.7 s (1,580 s of padded audio,
an A100 40 GB's), 80 mel bins at the kit's 10-ms hop, lengths spread over 80-100% of the longest.
The row loop below is the reference (kept here only): it slices every row's masks in Python, two
kernel launches per row and mask on a GPU. Prints the figures and writes
bench/results/specaugment_speed.json.

    python bench/specaugment_speed.py [--device cuda] [--repeats 20] [--quick]
"""
import argparse
import json
import os
import platform
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from modules.features import FeatureConfig, SpecAugmentConfig, spec_augment  # noqa: E402


def spec_augment_row_loop(feats: torch.Tensor, lengths: torch.Tensor, config: SpecAugmentConfig,
                          generator: torch.Generator = None) -> torch.Tensor:
    """The kit's SpecAugment before issue 20, verbatim: the reference for speed and for the masks."""
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


def gpu_batch(rows: int, seconds: float, n_mels: int, device: torch.device, seed: int = 0):
    """(rows, frames, n_mels) features and lengths like a padded training batch."""
    generator = torch.Generator().manual_seed(seed)
    hop_s = FeatureConfig().hop_ms / 1000
    frames = int(seconds / hop_s)
    lengths = (frames * (0.8 + 0.2 * torch.rand(rows, generator=generator))).long().clamp(max=frames)
    lengths[0] = frames
    return torch.randn(rows, frames, n_mels, generator=generator).to(device), lengths.to(device)


def seconds_per_batch(augment, feats, lengths, config, repeats: int) -> float:
    """Median wall time of one call, the device's queued work included."""
    sync = torch.cuda.synchronize if feats.is_cuda else (lambda: None)
    augment(feats, lengths, config)  # warm-up: allocator, kernels
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        augment(feats, lengths, config)
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=24.7, help="the longest utterance (64 x 24.7 = 1,580 s)")
    parser.add_argument("--n_mels", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 repeats (a smoke run; its figures are rough)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "specaugment_speed.json"))
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else args.repeats
    device = torch.device(args.device)
    feats, lengths = gpu_batch(args.rows, args.seconds, args.n_mels, device)
    config = SpecAugmentConfig()
    loop_s = seconds_per_batch(spec_augment_row_loop, feats, lengths, config, repeats)
    vectorised_s = seconds_per_batch(spec_augment, feats, lengths, config, repeats)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu ({platform.processor() or platform.machine()})"
    result = {
        "device": name,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "batch": {"rows": args.rows, "frames": feats.size(1), "n_mels": args.n_mels,
                  "padded_audio_s": round(args.rows * args.seconds, 1)},
        "repeats": repeats, "quick": args.quick,
        "row_loop_ms": round(1000 * loop_s, 3), "vectorised_ms": round(1000 * vectorised_s, 3),
        "speedup": round(loop_s / vectorised_s, 2),
    }
    print(f"SpecAugment on {result['device']}, {args.rows} rows x {feats.size(1)} frames x {args.n_mels} mels "
          f"({result['batch']['padded_audio_s']:g} s): row loop {result['row_loop_ms']:.2f} ms, "
          f"vectorised {result['vectorised_ms']:.2f} ms ({result['speedup']:.1f}x); "
          f"load average {result['load_average']}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
