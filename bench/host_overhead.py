"""Host overhead per training step on CPU: how much of a step is Python and data, how much the model.

    python bench/host_overhead.py                       # the kit's CPU default, bench/results/host_overhead.json
    python bench/host_overhead.py -- --model conformer --size small
    python bench/host_overhead.py --smoke --out F.json  # CI (tests/test_bench_smoke.py): tiny model and data

Trains on a generated corpus of 2-30 s utterances (bench/measure.py synthetic_corpus: tones in
noise, random transcripts; nothing to learn, real sizes) with the trainer main.py builds, and
times every step's phases from outside the kit (bench/measure.py StepClock):

  data wait  blocked on the loader           features   learning rate, log-mel, SpecAugment
  forward / loss / backward / optimizer      the model's work: what a GPU would run

host overhead = (data wait + features) / step. On a GPU the model's share shrinks by the GPU's
speed-up while these stay on the CPU (SpecAugment and the log-mel run on the GPU there, but
launched from Python), so a host share of a few percent on CPU is a large one at H100 speed:
bench/gpu_check.sh measures that split on the GPU itself.
"""
import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from measure import StepClock, _endless_batches, build_trainer, machine, synthetic_corpus  # noqa: E402

HOST_PHASES = ("data_wait", "features")
MODEL_PHASES = ("forward", "loss", "backward", "optimizer")
SMOKE_MODEL = ["--model", "deepspeech2", "--rnn_hidden", "32", "--rnn_layers", "1", "--batch_seconds", "4"]


def host_overhead(main_argv: list, steps: int, warmup: int) -> dict:
    """Phases of `steps` training steps after `warmup`, each as a share of the steps' total time."""
    trainer, _ = build_trainer(main_argv)
    trainer.recognizer.model.train()
    batches = _endless_batches(trainer)
    for _ in range(warmup):
        trainer.train_step(next(batches))
    clock = StepClock(trainer)
    data_wait, audio = 0.0, 0.0
    start = time.perf_counter()
    for _ in range(steps):
        waited = time.perf_counter()
        batch = next(batches)
        data_wait += time.perf_counter() - waited
        clock.step(batch)
        audio += float(batch["wave_lengths"].sum()) / trainer.recognizer.feature_config.sample_rate
    total = time.perf_counter() - start
    clock.close()
    seconds = dict(clock.totals, data_wait=data_wait)
    shares = {k: v / total for k, v in seconds.items()}
    return {"steps": steps, "warmup_steps": warmup, "seconds": total, "seconds_per_step": total / steps,
            "audio_seconds_per_second": audio / total, "batch_audio_seconds": audio / steps,
            "phase_shares": shares, "host_share": sum(shares[k] for k in HOST_PHASES),
            "model_share": sum(shares[k] for k in MODEL_PHASES),
            "unaccounted_share": 1 - sum(shares.values()),  # the loop's own few lines between steps
            "device": str(trainer.device), "num_workers": trainer.train_loader.num_workers}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)  # main.py options follow `--`
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny model, corpus and step count (CI)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (10; smoke 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (2; smoke 1)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "host_overhead.json"))
    a, main_args = p.parse_args(argv[:split]), argv[split + 1:]
    steps, warmup = a.steps or (3 if a.smoke else 10), a.warmup or (1 if a.smoke else 2)
    with tempfile.TemporaryDirectory(prefix="host_overhead_") as work:
        if a.smoke:  # 1-3 s utterances, 4-s batches
            corpus = synthetic_corpus(work, 40, test_utterances=2, min_seconds=1, max_seconds=3, unique_waves=8)
            main_args = SMOKE_MODEL + main_args
        else:  # enough 90-s CPU batches (the kit's default) for the steps after the 20% validation split
            corpus = synthetic_corpus(work, (steps + warmup + 4) * 90 / 0.8, test_utterances=2)
        main_args = ["--dataset_path", work, "--device", "cpu", "--decoder", "greedy"] + main_args
        result = host_overhead(main_args, steps, warmup)
    result.update(main_args=main_args[2:], corpus={k: corpus[k] for k in ("train", "min_seconds", "max_seconds")},
                  machine=machine(), smoke=a.smoke)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    shares = result["phase_shares"]
    print("| phase | share of the step |\n|---|---|")
    for name in ("data_wait", "features", *MODEL_PHASES):
        print(f"| {name} | {100 * shares[name]:.1f}% |")
    print(f"host overhead (data wait + features): {100 * result['host_share']:.1f}% of "
          f"{result['seconds_per_step']:.2f} s per step; model {100 * result['model_share']:.1f}%; "
          f"{result['audio_seconds_per_second']:.0f} audio-s/s; written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
