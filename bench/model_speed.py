"""Training throughput (audio-seconds per second) of model configurations on the same synthetic batches.

    python bench/model_speed.py [--batch_seconds 90] [--steps 5] [--out bench/model_speed.txt]
    python bench/model_speed.py --smoke --out /tmp/m.txt   # CI: one step of 4 one-second utterances, seconds

Runs each configuration in turn on identical (B, T, n_mels) batches (features -> forward ->
CTC loss -> backward -> AdamW step) and prints audio-s/s plus the ratio to DeepSpeech2's default,
measured in the same run, since the machine is shared and absolute numbers are noisy.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from modules.transcribe.models import build_model  # noqa: E402

CONFIGS = [("deepspeech2", {}), ("conformer", {"size": "small"}), ("conformer", {"size": "small", "time_stride": 6})]


def throughput(name, options, batches, vocab=1200):
    torch.manual_seed(0)
    model = build_model(name, 80, vocab, **options)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    model.train()
    audio, elapsed = 0.0, 0.0
    for step, (feats, lengths, targets, target_lengths) in enumerate(batches):
        start = time.time()
        log_probs, out_lengths = model(feats, lengths)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths, target_lengths, zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step:  # the first step warms up allocators and kernels
            elapsed += time.time() - start
            audio += float(lengths.sum()) / 100
    return audio / elapsed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch_seconds", type=float, default=90.0)
    p.add_argument("--utt_seconds", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2, help="configurations interleaved, best round kept")
    p.add_argument("--out", type=str, default=None, help="default bench/model_speed.txt (smoke: bench/results/smoke/)")
    p.add_argument("--smoke", action="store_true", help="CI: one timed step on a 4 s batch, one round")
    args = p.parse_args(argv)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args.out = args.out or os.path.join(root, "bench", *(["results", "smoke"] if args.smoke else []), "model_speed.txt")
    if args.smoke:
        args.batch_seconds, args.utt_seconds, args.steps, args.rounds = 4.0, 1.0, 1, 1
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    b, t = int(args.batch_seconds / args.utt_seconds), int(args.utt_seconds * 100)
    batches = []
    for _ in range(args.steps + 1):
        lengths = torch.randint(int(0.8 * t), t + 1, (b,), generator=g)
        target_lengths = torch.randint(5, 20, (b,), generator=g)
        batches.append((torch.randn(b, t, 80, generator=g), lengths,
                        torch.randint(1, 1200, (int(target_lengths.sum()),), generator=g), target_lengths))
    best = [0.0] * len(CONFIGS)
    for _ in range(args.rounds):  # interleaved, so a burst of load elsewhere hits every configuration
        for i, (name, options) in enumerate(CONFIGS):
            best[i] = max(best[i], throughput(name, options, batches))
    lines, reference = [], best[0]
    for (name, options), speed in zip(CONFIGS, best):
        n_params = sum(p.numel() for p in build_model(name, 80, 1200, **options).parameters()) / 1e6
        lines.append(f"{name:12s} {str(options):38s} {n_params:5.2f} M  {speed:7.1f} audio-s/s  "
                     f"x{speed / reference:.2f} vs deepspeech2 default")
        print(lines[-1], flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(f"batch {args.batch_seconds} s of {args.utt_seconds} s utterances, {args.threads} threads\n")
        f.write("\n".join(lines) + "\n")
    return lines


if __name__ == "__main__":
    main()
