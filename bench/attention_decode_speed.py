"""Speed of the attention decoder's beam search: the old one-utterance-at-a-time loop vs the model's.

    python bench/attention_decode_speed.py [--utterances 50] [--beam_width 4] [--threads 1]
                                           [--out bench/results/attention_decode_speed.json]
    python bench/attention_decode_speed.py --smoke --out /tmp/a.json   # CI: 4 utterances, a tiny model

A seeded random `--model attention` (default size) encodes `--utterances` random feature
sequences of 2-8 s (100 frames/s, so 50-200 encoder frames at time stride 4), batched as
inference batches them (`--batch_seconds`, duration-sorted); the encoder runs once per batch
and only decoding is timed. Three searches decode the same encodings and must return the same
units: the pre-batching loop (the whole prefix through the decoder every step), the model's
incremental search called one utterance at a time, and the model's search over each batch.
A random decoder rarely emits <eos>, so every utterance runs to its bound (its encoder
length): the worst case for the search, the same for all three. `--max_target_length 40`
caps hypotheses nearer real transcript lengths (Korean speech is about 7 units/s).
"""
import argparse
import json
import math
import os
import platform
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from modules.samplers import DurationBatchSampler  # noqa: E402
from modules.transcribe.decoding import attention_beam_search  # noqa: E402
from modules.transcribe.models import build_model  # noqa: E402
from modules.transcribe.models.attention import SOS_EOS  # noqa: E402


@torch.no_grad()
def per_utterance_beam_search(model, memory, memory_lengths, beam_width: int = 4, length_penalty: float = 1.0) -> list:
    """The beam search as it was before batching (main at f195fd1), kept as the reference:
    one utterance at a time, one decoder call per step over that utterance's beams."""
    results = []
    for b in range(memory.size(0)):
        n = int(memory_lengths[b])
        mem = memory[b:b + 1, :n]
        max_len = min(n, model.config.max_target_length)  # CTC's bound: at most one unit per frame
        beams = [([SOS_EOS], 0.0)]
        finished = []
        for _ in range(max_len):
            tokens = torch.tensor([seq for seq, _ in beams], device=memory.device)
            logits = model.decoder_logits(tokens, mem.expand(len(beams), -1, -1),
                                          memory_lengths[b:b + 1].expand(len(beams)).clamp(max=n))
            log_probs = logits[:, -1].float().log_softmax(-1)
            scores = torch.tensor([s for _, s in beams], device=memory.device)[:, None] + log_probs
            top, idx = scores.flatten().topk(min(beam_width, scores.numel()))
            candidates = []
            for score, flat in zip(top.tolist(), idx.tolist()):
                row, unit = divmod(flat, log_probs.size(1))
                seq = beams[row][0] + [unit]
                if unit == SOS_EOS:
                    finished.append((seq[1:-1], score / max(len(seq) - 1, 1) ** length_penalty))
                else:
                    candidates.append((seq, score))
            beams = candidates
            best_done = max((s for _, s in finished), default=-float("inf"))
            # Stop once no open hypothesis can still beat the best finished one (scores only fall).
            if not beams or max(s for _, s in beams) / max_len ** length_penalty < best_done:
                break
        if not finished:
            finished = [(seq[1:], s / max(len(seq) - 1, 1) ** length_penalty) for seq, s in beams]
        results.append(max(finished, key=lambda f: f[1])[0])
    return results


# --smoke: the smallest decoder that runs every search, hypotheses capped short.
SMOKE = {"utterances": 4, "vocab": 20, "max_target_length": 12,
         "model_options": '{"d_model": 32, "heads": 2, "layers": 1, "conv_channels": 4, "decoder_layers": 1}'}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--utterances", type=int, default=50)
    p.add_argument("--min_seconds", type=float, default=2.0)
    p.add_argument("--max_seconds", type=float, default=8.0)
    p.add_argument("--beam_width", type=int, default=4)
    p.add_argument("--length_penalty", type=float, default=1.0)
    p.add_argument("--batch_seconds", type=float, default=300.0, help="main.py's --infer_batch_seconds default")
    p.add_argument("--vocab", type=int, default=1200)
    p.add_argument("--max_target_length", type=int, default=512)
    p.add_argument("--model_options", default="{}", help='JSON overrides of AttentionConfig, e.g. \'{"d_model": 64}\'')
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="default bench/results/attention_decode_speed.json "
                                               "(smoke: bench/results/smoke/)")
    p.add_argument("--smoke", action="store_true", help="CI: " + ", ".join(f"--{k} {v}" for k, v in SMOKE.items()))
    args = p.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    args.out = args.out or os.path.join("bench", "results", *(["smoke"] if args.smoke else []),
                                        "attention_decode_speed.json")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    options = dict(json.loads(args.model_options), max_target_length=args.max_target_length)
    model = build_model("attention", 80, args.vocab, **options).eval()
    rng = random.Random(args.seed)
    durations = [rng.uniform(args.min_seconds, args.max_seconds) for _ in range(args.utterances)]
    frames = [int(d * 100) for d in durations]
    encodings = []  # (memory, lengths) per inference batch
    with torch.no_grad():
        for batch in DurationBatchSampler(durations, args.batch_seconds, shuffle=False):
            lengths = torch.tensor([frames[i] for i in batch])
            _, out_lengths, memory = model(torch.randn(len(batch), int(lengths.max()), 80), lengths,
                                           return_encoding=True)
            encodings.append((memory, out_lengths))

    def run(search):
        hyps, start = [], time.perf_counter()
        for memory, lengths in encodings:
            hyps += search(model, memory, lengths, args.beam_width, args.length_penalty)
        return hyps, time.perf_counter() - start

    def one_per_call(m, memory, lengths, width, penalty):  # the model's search, one utterance at a time
        hyps = []
        for b, n in enumerate(lengths.tolist()):
            hyps += attention_beam_search(m, memory[b:b + 1, :n], lengths[b:b + 1], width, penalty)
        return hyps

    batched = lambda m, mem, lens, w, lp: attention_beam_search(m, mem, lens, w, lp)  # noqa: E731
    old_hyps, old_s = run(per_utterance_beam_search)
    single_hyps, single_s = run(one_per_call)
    new_hyps, new_s = run(batched)
    n = args.utterances
    result = {
        "settings": vars(args),
        "model": {k: v for k, v in vars(model.config).items()},
        "machine": {"cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()},
        "utterances": n, "audio_seconds": sum(durations), "batches": len(encodings),
        "encoder_frames": sum(int(e[1].sum()) for e in encodings),
        "hypothesis_units": sum(len(h) for h in new_hyps),
        "per_utterance_loop": {"seconds": old_s, "ms_per_utterance": 1000 * old_s / n},
        "one_utterance_per_call": {"seconds": single_s, "ms_per_utterance": 1000 * single_s / n},
        "batched": {"seconds": new_s, "ms_per_utterance": 1000 * new_s / n},
        "speedup": old_s / new_s,
        "identical_hypotheses": sum(a == b == c for a, b, c in zip(old_hyps, single_hyps, new_hyps)),
    }
    print(f"{n} utterances, {result['audio_seconds']:.0f} s of audio in {len(encodings)} batches, "
          f"beam {args.beam_width}, {args.threads} thread(s), d_model {model.config.d_model}, vocab {args.vocab}, "
          f"{result['hypothesis_units'] / n:.1f} units per hypothesis")
    print(f"per-utterance loop {result['per_utterance_loop']['ms_per_utterance']:9.1f} ms/utt")
    print(f"one utterance/call {result['one_utterance_per_call']['ms_per_utterance']:9.1f} ms/utt  "
          f"x{old_s / single_s:.2f} faster")
    print(f"batched            {result['batched']['ms_per_utterance']:9.1f} ms/utt  x{result['speedup']:.2f} faster")
    print(f"identical hypotheses (all three): {result['identical_hypotheses']} / {n}")
    assert math.isfinite(result["speedup"])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
