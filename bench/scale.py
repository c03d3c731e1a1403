"""The data layer at scale: the path from process start to the first optimizer step with
10,000 to 600,000 label rows (KsponSpeech alone has 620,000 utterances).

    python bench/scale.py                                   # N = 10k, 100k, 600k; writes bench/results/scale.json
    python bench/scale.py --sizes 10000 --steps 5 --cache /tmp/scale -- --num_workers 0
    python bench/scale.py --smoke --out /tmp/s.json          # CI: 200 rows on 24 sample files, a tiny model

Corpora: a 2022-layout dataset of N label rows (`train/train_label`, headerless PCM in
`train/train_data`) whose audio files are hard links to the few thousand files of a base
corpus (tools/make_corpus.py, espeak-ng; made once), so 600,000 rows take no extra disk.
Each row's text is drawn from the ~57,500 distinct sentences of tools/korean_text.py's
grammar and linked to a base file long enough for it; some rows carry what real 2022 labels
carry: masked personal data (`&name&`, ...), dual transcriptions `(철자)/(발음)`, noise tags
and filler marks. Corpora are cached under --cache (git-ignored bench/cache/ by default).

Each N runs in a fresh process (so its peak RSS is its own) through the real entry point,
`main.py --dataset_path D --epochs 1 [options after --]`, with hooks that time the named
stages of the data path (labels, duration scan, normalisation, split, tokenizer, LM, trainer
construction) and stop after --steps optimizer steps. It measures:
  - seconds from process start (the parent's clock before it starts the process) to the
    end of the first optimizer step, with the stages' share;
  - peak RSS before training (at the first step) and during it (os.wait4's maxrss), plus
    the DataLoader workers' resident and proportional size when there are workers;
  - seconds per epoch outside forward and backward, estimated from the --steps steps:
    the sampler's set_epoch + the first batch's wait (iterator and worker start) +
    (batches per epoch - 1) x the median wait for a batch between steps + the same
    for the validation loader's batches. The wait between steps includes data loading,
    collate, heap trimming and the progress bar: everything of an epoch but `train_step`.
Writes bench/results/scale.json (with the machine's CPU model and load) and prints a table.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

TARGET_FIRST_STEP_S = 120.0   # at 600k rows
TARGET_RSS_GROWTH_MIB = 1024  # 600k run's peak over the 10k run's

# ---------------------------------------------------------------------------
# Corpora
# ---------------------------------------------------------------------------
MASKS = ("&name&", "&address&", "&tel-num&", "&company-name&", "&card-num&")


def base_corpus(cache: str, utts: int, smoke: bool = False) -> str:
    """The real audio the big corpora link to: tools/make_corpus.py, made once (smoke: sample_dataset's files)."""
    if smoke:
        return common.tiny_corpus(os.path.join(cache, f"sample{utts}"), train=utts, test=4)
    path = os.path.join(cache, f"base{utts}")
    if not os.path.isfile(os.path.join(path, "train", "train_label")):
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_corpus.py"), "--out", path,
                        "--train-utts", str(utts), "--test-utts", "10", "--masked-tokens", "--no-progress"],
                       check=True, cwd=ROOT)
    return path


def annotate(words: list, rng) -> list:
    """What real 2022 labels carry in some rows: a masked name, a dual transcription, noise tags."""
    r = rng.random()
    i = int(rng.integers(len(words)))
    if r < 0.10:
        words[i] = MASKS[int(rng.integers(len(MASKS)))]
    elif r < 0.15:
        words[i] = f"({words[i]})/({words[i]})"
    elif r < 0.20:
        words.insert(i, "n/" if rng.random() < 0.5 else "o/")
    elif r < 0.25:
        words.insert(i, "어/")
    return words


def label_texts(n: int, seed: int) -> list:
    import numpy as np
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from korean_text import SentenceGenerator
    sentences = sorted(SentenceGenerator(masked=True).enumerate())
    rng = np.random.default_rng(seed)
    return [" ".join(annotate(sentences[i].split(), rng)) for i in rng.integers(len(sentences), size=n)]


def scale_corpus(cache: str, base: str, n: int, seed: int = 0) -> str:
    """A 2022-layout dataset of `n` rows whose audio files are hard links into `base`."""
    import numpy as np
    path = os.path.join(cache, f"rows{n}")
    done = os.path.join(path, ".complete")
    if os.path.isfile(done):
        return path
    shutil.rmtree(path, ignore_errors=True)
    start = time.time()
    base_data = os.path.join(base, "train", "train_data")
    names = sorted(os.listdir(base_data))
    durations = np.array([os.path.getsize(os.path.join(base_data, f)) / 32000 for f in names])
    order = np.argsort(durations)
    texts = label_texts(n, seed)
    # A file long enough for the text (CTC needs an output frame per unit: ~2.5 jamo per syllable at
    # 40 ms a frame), drawn among those, so few rows are dropped as too short.
    need = np.array([0.25 * len(t.replace(" ", "")) + 0.3 for t in texts])
    first = np.searchsorted(durations[order], need).clip(max=len(names) - 1)
    rng = np.random.default_rng(seed + 1)
    pick = order[first + (rng.random(n) * (len(names) - first)).astype(int)]
    data = os.path.join(path, "train", "train_data")
    os.makedirs(data)
    with open(os.path.join(path, "train", "train_label"), "w", encoding="utf-8") as f:
        f.write("filename,text\n")
        for i, (text, k) in enumerate(zip(texts, pick)):
            name = f"idx_{i:07d}"
            os.link(os.path.join(base_data, names[k]), os.path.join(data, name))
            f.write(f"{name},{text}\n")
    shutil.copytree(os.path.join(base, "test"), os.path.join(path, "test"), copy_function=os.link)
    open(done, "w").close()
    print(f"[scale] corpus of {n} rows in {time.time() - start:.0f} s: {path}", flush=True)
    return path


# ---------------------------------------------------------------------------
# The measured process: main.py with timing hooks
# ---------------------------------------------------------------------------
# (module, attributes, stage): each stage the data path has had, the first of its attributes the
# version measured has (a batched one before the per-row one it replaced); missing ones are skipped.
STAGES = [
    ("modules.transcribe.recipe", ["read_training_set"], "read_training_set"),
    ("modules.transcribe.corpus", ["read_label_columns", "read_label_records"], "labels"),
    ("modules.transcribe.corpus", ["read_speakers"], "speakers"),
    ("modules.transcribe.corpus", ["resolve_paths", "safe_join"], "paths"),
    ("modules.transcribe.corpus", ["usable_durations", "usable_duration"], "duration_scan"),
    ("modules.transcribe.corpus", ["normalize_texts", "normalize_text"], "normalisation"),
    ("modules.transcribe.corpus", ["unlabelled_files"], "unlabelled_listing"),
    ("modules.transcribe.recipe", ["split_by_sentence"], "split"),
    ("modules.transcribe.recipe", ["build_tokenizer"], "tokenizer"),
    ("modules.transcribe.recipe", ["train_lm"], "lm"),
    ("modules.transcribe.trainer", ["SpeechTrainer.__init__"], "trainer"),
    ("modules.transcribe.dataset", ["Targets.encode"], "trainer_encode"),
    ("modules.transcribe.dataset", ["SpeechDataset.__init__"], "trainer_datasets"),
    ("modules.transcribe.trainer", ["SpeechTrainer._trainable"], "trainer_trainable"),
    ("modules.samplers", ["DurationBatchSampler.__init__"], "trainer_sampler"),
]


class StopRun(BaseException):
    """Raised after the last measured step; not an Exception, so nothing on the way catches it."""


def _resident_mib(pid="self") -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def _workers_memory() -> dict:
    """Resident and proportional (shared pages split between sharers) MiB of this process's children."""
    pids = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids += f.read().split()
        except OSError:
            pass
    rss = pss = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    key, value = line.split(":", 1)[0], line.split()[1] if ":" in line else "0"
                    if key == "Rss":
                        rss += int(value) / 1024
                    elif key == "Pss":
                        pss += int(value) / 1024
        except (OSError, ValueError, IndexError):
            pass
    return {"workers": len(pids), "workers_rss_mib": round(rss, 1), "workers_pss_mib": round(pss, 1)}


def child(out_path: str, steps: int, main_argv: list):
    t0 = float(os.environ["SCALE_T0"])
    timers, events = {}, {"script_start": time.time() - t0}
    sys.path.insert(0, ROOT)
    import importlib

    import main as entry
    events["imports_done"] = time.time() - t0

    per_row = {"safe_join", "usable_duration", "normalize_text"}  # called per label row by earlier versions
    memory = {}  # stage -> (resident MiB at its end, peak MiB so far): which stage set the peak

    def timed(fn, stage, attr):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                t = timers.setdefault(stage, [0.0, 0])
                t[0] += time.perf_counter() - start
                t[1] += 1
                if attr not in per_row:
                    memory[stage] = (round(_resident_mib(), 1),
                                     round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
        return wrapper

    for module_name, attrs, stage in STAGES:
        for dotted in attrs:
            owner = importlib.import_module(module_name)
            *path, attr = dotted.split(".")
            for name in path:
                owner = getattr(owner, name, None)
            if owner is not None and hasattr(owner, attr):
                setattr(owner, attr, timed(getattr(owner, attr), stage, attr))
                break

    from modules import samplers, training
    set_epoch_calls = []
    for sampler_cls in (samplers.DurationBatchSampler, samplers.BatchByCountSampler):
        def set_epoch(self, epoch, _orig=sampler_cls.set_epoch):
            start = time.perf_counter()
            _orig(self, epoch)
            set_epoch_calls.append((len(getattr(self, "durations", ())) or getattr(self, "n_items", 0),
                                    time.perf_counter() - start))
        sampler_cls.set_epoch = set_epoch

    steps_log, state = [], {"last_end": None, "trainer": None}
    original_step = training.Trainer.train_step

    def train_step(self, batch):
        begin = time.perf_counter()
        if state["trainer"] is None:
            state["trainer"] = self
            events["first_step_begin"] = time.time() - t0
            events["first_batch_wait"] = begin - state["epoch_start"]
            events["rss_before_training_mib"] = _resident_mib()
            events["peak_rss_before_training_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result = original_step(self, batch)
        end = time.perf_counter()
        wait = begin - state["last_end"] if state["last_end"] is not None else None
        steps_log.append({"wait": wait, "compute": end - begin, "items": len(batch["indices"])})
        state["last_end"] = end
        if len(steps_log) == 1:
            events["first_step_done"] = time.time() - t0
        if len(steps_log) >= steps:
            events.update(_workers_memory())  # now: unwinding past the loader shuts its workers down
            raise StopRun
        return result

    training.Trainer.train_step = train_step
    # The wait for the first batch: from the epoch's start (set_epoch) to the first step.
    original_epoch = training.Trainer.train_epoch

    def train_epoch(self):
        state["epoch_start"] = time.perf_counter()
        return original_epoch(self)

    training.Trainer.train_epoch = train_epoch
    try:
        entry.main(main_argv)
        raise SystemExit("training ended before the measured steps (a corpus smaller than --steps batches?)")
    except StopRun:
        pass
    trainer = state["trainer"]
    events["peak_rss_during_training_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    events["rss_after_steps_mib"] = _resident_mib()
    waits = [s["wait"] for s in steps_log[1:]]
    first_wait = events.get("first_batch_wait")
    result = {
        "events": {k: round(v, 3) if isinstance(v, float) else v for k, v in events.items()},
        "stages": {k: dict(seconds=round(v[0], 3), calls=v[1],
                           **dict(zip(("rss_mib_after", "peak_rss_mib_after"), memory.get(k, ()))))
                   for k, v in timers.items()},
        "set_epoch": [{"items": n, "seconds": round(s, 4)} for n, s in set_epoch_calls],
        "steps": steps_log,
        "first_batch_wait": None if first_wait is None else round(first_wait, 3),
        "train_utterances": len(trainer.train_utts), "valid_utterances": len(trainer.valid_utts),
        "batches_per_epoch": len(trainer.train_loader), "valid_batches": len(trainer.valid_loader),
        "num_workers": trainer.train_loader.num_workers, "pin_memory": trainer.train_loader.pin_memory,
        "median_wait": statistics.median(waits) if waits else None,
        "median_compute": statistics.median(s["compute"] for s in steps_log[1:]) if len(steps_log) > 1 else None,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    sys.stdout.flush()
    os._exit(0)  # skip tearing down 600k objects and the loader: not part of what is measured


# ---------------------------------------------------------------------------
# The parent: one process per size
# ---------------------------------------------------------------------------
def machine() -> dict:
    info = {"cores": os.cpu_count(), "python": platform.python_version()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                info["cpu"] = value.strip()
            elif key.strip() == "Flags":
                flags = value.split()
                info["cpu_flags"] = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    except OSError:
        pass
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                        cwd=ROOT).stdout.strip()
    except OSError:
        pass
    return info


def load_average() -> list:
    return [round(x, 2) for x in os.getloadavg()]


def run_size(corpus: str, n: int, a, main_args: list, work: str) -> dict:
    out = os.path.join(work, f"rows{n}.json")
    log = os.path.join(work, f"rows{n}.log")
    argv = ["--dataset_path", corpus, "--epochs", "1", *main_args]
    env = dict(os.environ, NSML_LOCAL_HOME=os.path.join(work, "nsml_home"), PYTHONUNBUFFERED="1")
    load_before = load_average()
    t0 = time.time()
    env["SCALE_T0"] = repr(t0)
    with open(log, "w", encoding="utf-8") as logf:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", out, "--steps", str(a.steps),
                                 "--", *argv], cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    if os.waitstatus_to_exitcode(status) != 0 or not os.path.isfile(out):
        with open(log, encoding="utf-8", errors="replace") as f:
            raise RuntimeError(f"rows {n}: the measured process failed (exit {status}):\n" + f.read()[-3000:])
    with open(out, encoding="utf-8") as f:
        r = json.load(f)
    with open(log, encoding="utf-8", errors="replace") as f:
        log_text = f.read()
    ev, steps = r["events"], r["steps"]
    overhead_train = (sum(c["seconds"] for c in r["set_epoch"][-1:])
                      + (r["first_batch_wait"] or 0.0) + (r["batches_per_epoch"] - 1) * (r["median_wait"] or 0.0))
    overhead_valid = r["valid_batches"] * (r["median_wait"] or 0.0)
    result = {
        "rows": n, "argv": argv, "load_average_before": load_before, "load_average_after": load_average(),
        "first_step_seconds": ev["first_step_done"], "first_step_begins_seconds": ev["first_step_begin"],
        "imports_seconds": ev["imports_done"],
        "stages": r["stages"],
        "peak_rss_before_training_mib": round(ev["peak_rss_before_training_mib"], 1),
        "rss_before_training_mib": round(ev["rss_before_training_mib"], 1),
        "peak_rss_during_training_mib": round(usage.ru_maxrss / 1024, 1),
        "workers": ev.get("workers", 0), "workers_rss_mib": ev.get("workers_rss_mib", 0.0),
        "workers_pss_mib": ev.get("workers_pss_mib", 0.0),
        "train_utterances": r["train_utterances"], "valid_utterances": r["valid_utterances"],
        "batches_per_epoch": r["batches_per_epoch"], "valid_batches": r["valid_batches"],
        "num_workers": r["num_workers"], "pin_memory": r["pin_memory"],
        "set_epoch_seconds": r["set_epoch"][-1]["seconds"] if r["set_epoch"] else None,
        "first_batch_wait_seconds": r["first_batch_wait"],
        "median_wait_seconds": r["median_wait"], "median_step_seconds": r["median_compute"],
        "epoch_outside_forward_backward_seconds": round(overhead_train + overhead_valid, 1),
        "epoch_step_seconds_estimate": round(r["batches_per_epoch"] * (r["median_compute"] or 0.0), 1),
        "measured_steps": len(steps), "process_wall_seconds": round(wall, 1),
        "skipped_warnings": log_text.count("; skipped"),
    }
    return result


def table(results: list) -> str:
    lines = ["| rows | first step begins / done (s) | read labels+audio | of which paths, durations, normalise | "
             "split | tokenizer | LM | trainer | peak RSS before / during (MiB) | epoch outside fwd/bwd (s) | load |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        s = {k: v["seconds"] for k, v in r["stages"].items()}
        cells = [f"{s.get('read_training_set', 0):.1f}",
                 ", ".join(f"{s.get(k, 0):.1f}" for k in ("paths", "duration_scan", "normalisation"))]
        cells += [f"{s.get(k, 0):.1f}" for k in ("split", "tokenizer", "lm", "trainer")]
        lines.append(f"| {r['rows']:,} | {r['first_step_begins_seconds']:.1f} / {r['first_step_seconds']:.1f} | " +
                     " | ".join(cells) +
                     f" | {r['peak_rss_before_training_mib']:.0f} / {r['peak_rss_during_training_mib']:.0f} | "
                     f"{r['epoch_outside_forward_backward_seconds']:.0f} | {r['load_average_before'][0]:.1f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# DataLoader workers on this machine: bench/measure.py throughput with 0, 1, 2 workers
# ---------------------------------------------------------------------------
def workers_sweep(corpus: str, rounds: int, steps: int, counts: list, main_args: list, out: str):
    """Training throughput (audio-s/s over `steps` steps after 2 warm-up steps, data loading
    included) with each worker count, in `rounds` rounds, each round the counts in a new random
    order, so that a change in the machine's load falls on all of them alike. Per round, each
    count's throughput relative to 0 workers; also the CPU seconds (the process and its workers)
    per audio second."""
    import random
    rng, runs = random.Random(0), []
    for r in range(rounds):
        for workers in rng.sample(counts, len(counts)):
            result_path = os.path.join(os.path.dirname(out), f"workers_{workers}_{r}.json")
            load = load_average()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "measure.py"), "throughput", "--steps",
                            str(steps), "--warmup", "2", "--out", result_path, "--", "--dataset_path", corpus,
                            "--num_workers", str(workers), *main_args], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            with open(result_path, encoding="utf-8") as f:
                t = json.load(f)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            runs.append({"round": r, "workers": workers, "audio_seconds_per_second": round(t["audio_seconds_per_second"], 2),
                         "process_cpu_seconds": round(cpu, 1), "peak_rss_mib": round(t["peak_rss_mib"], 1),
                         "load_average_before": load})
            print(json.dumps(runs[-1]), flush=True)
    summary = {}
    for w in counts:
        ratios = []
        for r in range(rounds):
            by = {x["workers"]: x["audio_seconds_per_second"] for x in runs if x["round"] == r}
            ratios.append(by[w] / by[counts[0]])
        summary[str(w)] = {"median_throughput_vs_first": round(statistics.median(ratios), 3),
                           "ratios": [round(x, 3) for x in ratios],
                           "median_audio_seconds_per_second": statistics.median(
                               x["audio_seconds_per_second"] for x in runs if x["workers"] == w)}
    report = {"command": "python bench/scale.py " + " ".join(sys.argv[1:]), "machine": machine(),
              "corpus": corpus, "steps": steps, "summary": summary, "runs": runs}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(summary))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000,600000", help="label rows of each run")
    p.add_argument("--steps", type=int, default=10, help="optimizer steps measured per run")
    p.add_argument("--cache", default=None,
                   help="corpora (default bench/cache/scale, smoke: bench/cache/scale_smoke; hard links: the base "
                        "corpus must be on the same file system)")
    p.add_argument("--base-utts", type=int, default=3000, help="real audio files the rows link to")
    p.add_argument("--out", default=None, help="default bench/results/scale.json (smoke: bench/results/smoke/)")
    p.add_argument("--smoke", action="store_true", help="CI: 200 rows linked to 24 sample_dataset files, 2 steps, "
                                                        "a tiny model (figures meaningless)")
    p.add_argument("--workers", default="", help="instead: throughput with these DataLoader worker counts, "
                                                 "e.g. 0,1,2, on the base corpus (writes bench/results/scale_workers.json)")
    p.add_argument("--rounds", type=int, default=5, help="--workers: rounds of all counts in a random order")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a, main_args = p.parse_args(argv[:split]), argv[split + 1:]
    if a.child:
        return child(a.child, a.steps, main_args)
    a.out = a.out or os.path.join(common.RESULTS, *(["smoke"] if a.smoke else []), "scale.json")
    a.cache = a.cache or os.path.join(common.CACHE, "scale_smoke" if a.smoke else "scale")
    if a.smoke:
        a.sizes, a.steps, a.base_utts = "200", min(a.steps, 2), 24
        main_args = common.SMOKE_MODELS["deepspeech2"] + main_args
    os.makedirs(a.cache, exist_ok=True)
    base = base_corpus(a.cache, a.base_utts, a.smoke)
    if a.workers:
        out = os.path.join(os.path.dirname(a.out), "scale_workers.json")
        return workers_sweep(base, a.rounds, a.steps, [int(w) for w in a.workers.split(",")], main_args, out)
    work = os.path.join(a.cache, "runs")
    os.makedirs(work, exist_ok=True)
    results = []
    for n in [int(x) for x in a.sizes.split(",")]:
        corpus = scale_corpus(a.cache, base, n)
        r = run_size(corpus, n, a, main_args, work)
        results.append(r)
        print(json.dumps(r), flush=True)
    by_rows = {r["rows"]: r for r in results}
    verdict = {}
    if max(by_rows) >= 600_000:
        big = by_rows[max(by_rows)]
        verdict["first_step_within_target"] = big["first_step_seconds"] <= TARGET_FIRST_STEP_S
        if min(by_rows) <= 10_000:
            growth = big["peak_rss_during_training_mib"] - by_rows[min(by_rows)]["peak_rss_during_training_mib"]
            verdict["rss_growth_mib"] = round(growth, 1)
            verdict["rss_growth_within_target"] = growth <= TARGET_RSS_GROWTH_MIB
    report = {"command": "python bench/scale.py " + " ".join(argv), "machine": machine(),
              "targets": {"first_step_seconds_at_600k": TARGET_FIRST_STEP_S,
                          "rss_growth_over_10k_mib": TARGET_RSS_GROWTH_MIB},
              "verdict": verdict, "runs": results}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    print(table(results))
    print(json.dumps(verdict))


if __name__ == "__main__":
    main()
