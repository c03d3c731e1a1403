"""Resident memory of a default training run over time, with and without heap trimming.

    python bench/train_memory.py                        # 3 min each: --heap_limit_mib 0 (never trim) and the default
    python bench/train_memory.py --minutes 6 --limits 0,1536,1024 --extra "--model conformer"
    python bench/train_memory.py --smoke --out /tmp/m.json   # CI: a tiny model on 24 sample utterances, seconds

Each run is `python main.py --dataset_path CORPUS --max_minutes M --heap_limit_mib L`
(the bench corpus of run_suite.py, generated once under bench/cache/). The resident size
is sampled from /proc every half second; the peak comes from os.wait4 (the kernel's
maxrss); throughput is the mean of the epochs' `audio-s/s` figures after the first.
The runs follow each other, so run it on a quiet machine. Writes
bench/results/train_memory.json. The guide's target: at most 2 GiB.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import run_suite  # noqa: E402  (the session environment)



def sample_rss(pid: int, samples: list, stop: threading.Event, start: float):
    page = os.sysconf("SC_PAGE_SIZE")
    while not stop.wait(0.5):
        try:
            with open(f"/proc/{pid}/statm") as f:
                samples.append((round(time.time() - start, 1), int(f.read().split()[1]) * page / 2**20))
        except (OSError, IndexError, ValueError):
            return


def run(limit: float, corpus: str, a) -> dict:
    home = os.path.join(a.work, f"limit{limit:g}")
    cmd = [sys.executable, os.path.join(ROOT, "main.py"), "--dataset_path", corpus, "--max_minutes",
           f"{a.minutes:g}", "--epochs", "100000", "--heap_limit_mib", f"{limit:g}", *shlex.split(a.extra)]
    run_suite.log(f"heap limit {limit:g} MiB: " + " ".join(cmd[1:]))
    start, samples, stop, epochs = time.time(), [], threading.Event(), []
    proc = subprocess.Popen(cmd, cwd=ROOT, env=run_suite.session_env(home, corpus), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    sampler = threading.Thread(target=sample_rss, args=(proc.pid, samples, stop, start), daemon=True)
    sampler.start()
    for line in proc.stdout:
        m = run_suite.EPOCH_LINE.match(line)  # main.py's epoch line, read as the suite reads it
        if m:
            speed = run_suite.AUDIO_PER_SECOND.search(line)
            epochs.append({"epoch": int(m.group(1)), "val_cer": float(m.group(2)),
                           "audio_per_second": float(speed.group(1)) if speed else 0.0,
                           "seconds": round(time.time() - start, 1)})
    _, status, usage = os.wait4(proc.pid, 0)
    stop.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0 or not epochs:
        raise RuntimeError(f"training with --heap_limit_mib {limit:g} failed (exit {status})")
    steady = [e["audio_per_second"] for e in epochs[1:]] or [epochs[0]["audio_per_second"]]
    result = {"heap_limit_mib": limit, "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
              "audio_per_second": round(sum(steady) / len(steady), 1), "epochs": len(epochs),
              "best_val_cer": min(e["val_cer"] for e in epochs),
              "rss_mib_by_minute": {f"{m:g}": round(max((r for t, r in samples if t <= 60 * m), default=0), 1)
                                    for m in [0.5 * k for k in range(1, int(2 * a.minutes) + 2)]}}
    run_suite.log(f"heap limit {limit:g} MiB: peak {result['peak_rss_mib']:.0f} MiB, "
                  f"{result['audio_per_second']:.0f} audio-s/s, {len(epochs)} epochs")
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=3.0, help="training budget of each run")
    p.add_argument("--limits", default="0,1536", help="--heap_limit_mib values; 0 = never trim (the reference)")
    p.add_argument("--extra", default="", help="main.py options added to every run")
    p.add_argument("--corpus", help="a 2022-layout dataset (default: the suite's generated 0.5 h corpus)")
    p.add_argument("--hours", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--work", default="/tmp/train_memory")
    p.add_argument("--out", default=None, help="default bench/results/train_memory.json (smoke: bench/results/smoke/)")
    p.add_argument("--smoke", action="store_true", help="CI: 24 sample utterances, a tiny model, 3 s per run")
    a = p.parse_args(argv)
    a.out = a.out or os.path.join(common.RESULTS, *(["smoke"] if a.smoke else []), "train_memory.json")
    if a.smoke:
        a.minutes = min(a.minutes, 0.05)
        a.extra = shlex.join(common.SMOKE_MODELS["deepspeech2"] + ["--lm_order", "0", "--decoder", "greedy"]) \
            + " " + a.extra
        corpus = a.corpus or common.tiny_corpus(os.path.join(a.work, "corpus"))
    else:
        a.cache = common.CACHE
        corpus = common.suite_corpus(a, run_suite.log)
    runs = [run(float(x), corpus, a) for x in a.limits.split(",")]
    reference = runs[0]
    print(f"\n{'heap limit':>12} {'peak RSS':>10} {'audio-s/s':>10} {'vs first':>9} {'epochs':>7} {'best val CER':>13}")
    for r in runs:
        print(f"{r['heap_limit_mib']:>8g} MiB {r['peak_rss_mib']:>6.0f} MiB {r['audio_per_second']:>10.1f} "
              f"{r['audio_per_second'] / reference['audio_per_second']:>8.2f}x {r['epochs']:>7} {r['best_val_cer']:>13.3f}")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"command": "python bench/train_memory.py " + " ".join(argv or sys.argv[1:]),
                   "machine": run_suite.machine(), "corpus": corpus, "minutes": a.minutes, "extra": a.extra,
                   "runs": runs}, f, indent=1)
    print(f"written to {a.out}")


if __name__ == "__main__":
    main()
