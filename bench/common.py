"""What the bench scripts share: their common options, the corpora they run on, and smoke mode.

    add_run_arguments(parser, ...)   --budget-minutes --hours --seed --corpus --cache --extra --out --work --smoke
    finish_run_arguments(args, ...)  smoke limits and the default output folders
    generated_corpus(...)            a tools/make_corpus.py corpus, made once under --cache
    tiny_corpus(folder, ...)         a few utterances of the committed sample_dataset/ (no espeak-ng needed)
    tiny_checkpoint(task, ...)       a checkpoint folder of a tiny model trained for a second or two

Smoke mode (`--smoke` on every script) runs each step of a script on tiny data with tiny models
in seconds, so tests/test_bench_scripts.py and tests/test_bench_smoke.py keep the scripts from
rotting; its figures are not benchmarks.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CACHE = os.path.join(ROOT, "bench", "cache")  # generated corpora (git-ignored)
RESULTS = os.path.join(ROOT, "bench", "results")
SAMPLE_DATASET = os.path.join(ROOT, "sample_dataset")

# --smoke: the smallest model of each kind that still runs every code path.
SMOKE_MODELS = {"deepspeech2": ["--rnn_hidden", "32", "--rnn_layers", "1"],
                "conformer": ["--d_model", "32", "--layers", "1", "--heads", "2"],
                "attention": ["--d_model", "32", "--layers", "1", "--heads", "2"]}


def logger(name: str):
    """log(msg) printing `[name HH:MM:SS] msg`, flushed (the scripts' output is read while they run)."""
    def log(msg):
        print(f"[{name} {time.strftime('%H:%M:%S')}] {msg}", flush=True)
    return log


def add_run_arguments(p: argparse.ArgumentParser, budget_minutes: float, budget_help: str,
                      hours: float = None, work: str = "work") -> None:
    """The options of the scripts that train on a generated corpus: the budget, the corpus (`--hours`
    when `hours` is given), main.py options added to every run, where the results (and, when `work`
    is given, the sessions and logs) go."""
    p.add_argument("--budget-minutes", type=float, default=budget_minutes, help=budget_help)
    if hours is not None:
        p.add_argument("--hours", type=float, default=hours, help="corpus size (train + test), generated once, cached")
    p.add_argument("--seed", type=int, default=1, help="corpus seed")
    p.add_argument("--corpus", type=str, default=None, help="use this corpus (2022 layout) instead of generating")
    p.add_argument("--cache", type=str, default=CACHE, help="generated corpora")
    p.add_argument("--extra", type=str, default="",
                   help="main.py options added last to every run (e.g. '--rnn_hidden 128' for a quick check); "
                        "such a run is not the benchmark")
    p.add_argument("--out", type=str, default=None, help="where the results go (default bench/results, "
                                                         "smoke: bench/results/smoke)")
    if work:
        p.add_argument("--work", type=str, default=None, help=f"sessions and logs (default OUT/{work})")


def finish_run_arguments(a: argparse.Namespace, work: str = "work") -> argparse.Namespace:
    """Default --out and --work; smoke results never overwrite the committed ones."""
    a.out = a.out or os.path.join(RESULTS, *(["smoke"] if a.smoke else []))
    if hasattr(a, "work"):
        a.work = a.work or os.path.join(a.out, work)
    return a


def generated_corpus(cache: str, name: str, size: list, seed: int, log=print, quiet: bool = False) -> str:
    """tools/make_corpus.py's corpus `cache/name` (`size`: its --hours or --train-utts/--test-utts options),
    generated once: a folder with corpus_info.json is complete and reused."""
    out = os.path.join(cache, name)
    if os.path.isfile(os.path.join(out, "corpus_info.json")):
        log(f"corpus: cached {out}")
        return out
    cmd = [sys.executable, os.path.join(ROOT, "tools", "make_corpus.py"), "--out", out, "--seed", str(seed),
           "--no-progress", "--force", *size]
    log("corpus: " + " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if quiet else None)
    return out


def suite_corpus(a: argparse.Namespace, log=print) -> str:
    """The suite's corpus (bench/run_suite.py, learning_curves.py, train_memory.py): `--corpus`, or a
    generated one of `--hours` (smoke: 60 + 12 utterances)."""
    if a.corpus:
        return os.path.abspath(a.corpus)
    if a.smoke:
        return generated_corpus(a.cache, f"smoke_seed{a.seed}", ["--train-utts", "60", "--test-utts", "12"], a.seed, log)
    return generated_corpus(a.cache, f"ko_{a.hours:g}h_seed{a.seed}", ["--hours", str(a.hours)], a.seed, log)


def tiny_corpus(folder: str, train: int = 24, test: int = 6) -> str:
    """A 2022-layout corpus of the first `train` and `test` utterances of sample_dataset/ (hard links
    where the file system allows): smoke runs need neither espeak-ng nor minutes of generation."""
    for split, count in (("train", train), ("test", test)):
        with open(os.path.join(SAMPLE_DATASET, split, f"{split}_label"), encoding="utf-8") as f:
            header, *rows = f.read().splitlines()
        rows = rows[:count]
        data = os.path.join(folder, split, f"{split}_data")
        os.makedirs(data, exist_ok=True)
        for row in rows:
            name = row.split(",", 1)[0]
            source, target = os.path.join(SAMPLE_DATASET, split, f"{split}_data", name), os.path.join(data, name)
            if not os.path.exists(target):
                try:
                    os.link(source, target)
                except OSError:  # another file system
                    shutil.copyfile(source, target)
        with open(os.path.join(folder, split, f"{split}_label"), "w", encoding="utf-8") as f:
            f.write("\n".join([header, *rows]) + "\n")
    return folder


def tiny_clip_corpus(folder: str, classes=("low", "mid", "high"), per_class: int = 8, test: int = 6) -> str:
    """A keyword-spotting dataset of tones (train/audio/<class>/<speaker>_nohash_0.wav, test/test_data,
    test/test_label with a `filename,label` header): a separable task for classify's smoke runs."""
    import numpy as np
    import soundfile

    rate, rng = 16000, np.random.default_rng(0)
    pitch = {c: 300.0 * (3 ** i) for i, c in enumerate(classes)}

    def tone(c):
        t = np.arange(int(0.5 * rate)) / rate
        return (0.3 * np.sin(2 * np.pi * pitch[c] * rng.uniform(0.95, 1.05) * t)).astype(np.float32)

    for c in classes:
        os.makedirs(os.path.join(folder, "train", "audio", c), exist_ok=True)
        for speaker in range(per_class):
            soundfile.write(os.path.join(folder, "train", "audio", c, f"spk{speaker}_nohash_0.wav"), tone(c), rate)
    os.makedirs(os.path.join(folder, "test", "test_data"), exist_ok=True)
    rows = ["filename,label"]
    for i in range(test):
        c = classes[i % len(classes)]
        soundfile.write(os.path.join(folder, "test", "test_data", f"t{i:02d}.wav"), tone(c), rate)
        rows.append(f"t{i:02d}.wav,{c}")
    with open(os.path.join(folder, "test", "test_label"), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    return folder


# The task's options for a tiny model trained for a moment: what smoke runs need a checkpoint of.
TINY_TRAINING = {
    "transcribe": ["--epochs", "1", "--specaugment", "off", "--speed_perturb", "off", "--no_tune_lm",
                   "--lm_order", "3", *SMOKE_MODELS["deepspeech2"]],
    "classify": ["--classes", "low,mid,high", "--clip_seconds", "0.5", "--n_mels", "20", "--width", "8",
                 "--stages", "2", "--blocks", "1", "--epochs", "1", "--batch_size", "8", "--ensemble", "2"],
}


def tiny_checkpoint(task_name: str, dataset: str, folder: str, extra=()) -> str:
    """Train a tiny `task_name` model on `dataset` through the task's own recipe (as main.py would) and
    write its checkpoints with modules/checkpoint.py into `folder/<name>`; returns the last one written."""
    import torch

    from modules.checkpoint import write_checkpoint
    from modules.task_interface import Callbacks
    from modules.tasks import tasks

    task = tasks()[task_name]
    argv = [*TINY_TRAINING[task_name], *extra]
    parser = argparse.ArgumentParser()
    task.add_arguments(parser, argv)
    options = task.options_from_args(parser.parse_args(argv))
    written = []

    def save(name, state):
        written.append(os.path.join(folder, str(name)))
        write_checkpoint(written[-1], task.NAME, state)

    torch.manual_seed(0)
    task.train(options, dataset, torch.device("cpu"), Callbacks(save=save, log=lambda line: None))
    if not written:
        raise RuntimeError(f"training a tiny {task_name} model on {dataset} saved no checkpoint")
    return written[-1]
