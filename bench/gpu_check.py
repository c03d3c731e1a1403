"""The GPU check: one command, at most 8 minutes on one GPU (run it as bench/gpu_check.sh).

    bench/gpu_check.sh                    # on a GPU machine: writes bench/results/gpu.json
    bench/gpu_check.sh --smoke --out F    # CPU, tiny models and data (tests/test_bench_smoke.py)

It measures what decides a leaderboard run on NSML's GPUs, each step a process of its own
(bench/measure.py) under a hard timeout that ends before the budget does (--budget-minutes,
default 8), in priority order:

  0. the machine: GPU, /dev/shm; a generated corpus of utterances of 2-30 s with at least 30
     batches of the largest auto batch (tones in noise, random Korean transcripts, hard links:
     seconds to make, no espeak-ng needed);
  1. throughput of DeepSpeech2 and Conformer medium with --amp off, --amp bf16 and what --amp auto
     picks (run too when it differs from both): audio-s/s split into data wait, host time and GPU
     time, GPU utilisation, each phase of a step, the recurrent layers' dtype, peak GPU memory
     over the run and on a batch of 30-s utterances at the auto batch size;
  2. fp32 against bf16 over 3 steps at the full batch (same weights, batches, seeds): loss and
     gradient relative differences;
  3. one validation pass, and beam search + LM on a sample of test files projected to the 10,000
     utterances of a test set against NSML's 1-hour inference limit;
  4. a 1-process torchrun DDP run (nccl on a GPU) and a 2-rank run whose rank 0 sleeps past the
     process-group timeout after training and must still exit 0 with its checkpoint (2 GPUs:
     nccl; 1 GPU: two CPU processes on gloo, since nccl refuses two ranks on one GPU);
  5. --compile: the first step's time, graphs compiled, recompiles and graph breaks, throughput;
  6. ./run.sh (EPOCHS=20) with what is left of the budget.

A step that fails is recorded with its error text and the rest go on; a step the budget cannot
fit is recorded as skipped. The JSON is rewritten after every step, so an interrupted check
still leaves what it measured.

Smoke mode (--smoke, or no CUDA device): the same steps on CPU with tiny models, a tiny
generated corpus and a few steps; bf16 is CPU autocast, torchrun uses gloo, --compile uses the
aot_eager backend (dynamo's tracing and recompiles without inductor's minutes of C++ builds), and
step 6 is `nsml run` for one epoch then `nsml submit`. Its figures only show that every step runs.
"""
import argparse
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEASURE = os.path.join(ROOT, "bench", "measure.py")
sys.path.insert(0, os.path.join(ROOT, "bench"))
from measure import synthetic_corpus  # noqa: E402

MODELS = {  # name in the JSON -> main.py options (on the GPU, and the tiny stand-in of smoke mode)
    "deepspeech2": (["--model", "deepspeech2"], ["--model", "deepspeech2", "--rnn_hidden", "32", "--rnn_layers", "1"]),
    "conformer_medium": (["--model", "conformer", "--size", "medium"],
                         ["--model", "conformer", "--d_model", "32", "--layers", "1", "--heads", "2"]),
}
AMPS = ("off", "bf16")                 # always measured; "auto" too where it picks something else
DDP_CONFIG = ("deepspeech2", "bf16")
INFERENCE_MODEL = "conformer_medium"   # what --recipe auto trains on a GPU with a large corpus
LARGEST_AUTO_BATCH = 2400.0            # modules/transcribe/auto.py GPU_MAX_BATCH_SECONDS
CORPUS_BATCHES = 30                    # the training split holds this many of the largest batches
# Longest each step may take on the GPU (seconds); the budget's deadline can cut them shorter.
STEP_LIMITS = {"throughput": 70, "precision": 60, "evaluate": 75, "ddp": 60, "slow_rank0": 100,
               "compiled": 150, "run_sh": 210}
MIN_STEP_SECONDS = 20      # a step with less time left than this is skipped, not started
SMOKE_STEP_LIMIT = 120     # smoke mode: a generous cap per step, so a hung step still ends
PG_TIMEOUT_SECONDS = 8     # the slowed DDP run: the process-group timeout it asks for...
SLOW_RANK_DELAY = 20       # ...and how long rank 0 sleeps after training, well past it
CER_LINE = re.compile(r"^CER: ([0-9.eE+-]+|nan|inf)\s*$")
SESSION_LINE = re.compile(r"^Session (\S+) started$")
TIMEOUT_OPTION = re.compile(r"(--[a-z_]*timeout[a-z_]*)")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="CPU smoke mode (also chosen when no CUDA device exists)")
    p.add_argument("--budget-minutes", type=float, default=8.0, help="the whole check ends within this")
    p.add_argument("--out", default=None, help="JSON (default bench/results/gpu.json; smoke: bench/results/smoke/gpu.json)")
    p.add_argument("--work", default=None, help="scratch folder: corpus, nsml state (default: a new temporary folder)")
    p.add_argument("--dataset", default=None, help="training data (default: a generated corpus)")
    p.add_argument("--steps", type=int, default=None, help="measured steps per throughput (20; smoke 2)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps, compiling included (3; smoke 1)")
    return p.parse_args(argv)


# -- running one step ---------------------------------------------------------

def run_step(cmd, timeout, env=None, cwd=ROOT):
    """Run `cmd` in its own process group; kill the whole group when `timeout` runs out.

    Returns (returncode or None on timeout, stdout, stderr, seconds). Never raises for the
    command's own failures: the check records them and goes on.
    """
    start = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    except OSError as error:
        return 127, "", f"{type(error).__name__}: {error}", time.monotonic() - start
    try:
        out, err = proc.communicate(timeout=max(timeout, 1))
        code = proc.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun's workers and run.sh's children too
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        code = None
    return code, out, err, time.monotonic() - start


def tail(text, n=1500):
    return text[-n:] if len(text) > n else text


def outcome(cmd, code, out, err, seconds, timeout):
    """The JSON entry of a step that produced no result of its own."""
    entry = {"command": shlex.join(cmd), "seconds": round(seconds, 1)}
    if code is None:
        entry["error"] = f"timed out after {timeout:.0f} s"
    else:
        entry["error"] = f"exit status {code}"
    entry["output_tail"] = tail(out + ("\n" if out and err else "") + err)
    return entry


def last_json(stdout):
    """The last line of stdout that is a JSON object (measure.py prints one), or None."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


class Budget:
    """The deadline every step's timeout is cut to."""

    def __init__(self, seconds):
        self.start = time.monotonic()
        self.deadline = self.start + seconds

    def left(self):
        return self.deadline - time.monotonic()

    def timeout(self, limit):
        """Seconds the next step may take, or None when too little is left to start it."""
        left = self.left()
        return None if left < MIN_STEP_SECONDS else min(limit, left)


# -- the steps ----------------------------------------------------------------

def skipped(cmd, settings):
    return {"command": shlex.join(cmd), "skipped": f"the {settings['budget_minutes']:g}-minute budget ran out"}


def measure(python, what, main_args, settings, budget, limit, env, extra=(), torchrun=0):
    """bench/measure.py `what` (under torchrun with that many processes); its JSON, or the error."""
    cmd = [python, MEASURE, what, *extra]
    if torchrun:
        cmd = [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(torchrun), *cmd[1:]]
    cmd += ["--", *main_args]
    timeout = budget.timeout(limit)
    if timeout is None:
        return skipped(cmd, settings)
    code, out, err, seconds = run_step(cmd, timeout, env)
    result = last_json(out) if code == 0 else None
    if result is None:
        return outcome(cmd, code, out, err, seconds, timeout)
    result.update(command=shlex.join(cmd), process_seconds=round(seconds, 1))
    return result


def measure_throughput(python, main_args, settings, budget, limit, env, ddp=False):
    extra = ["--steps", str(settings["steps"]), "--warmup", str(settings["warmup"]), "--profile-steps", "2",
             "--full-length", "30"] + (["--ddp"] if ddp else [])
    return measure(python, "throughput", main_args, settings, budget, limit, env, extra, torchrun=1 if ddp else 0)


def timeout_option(python, env):
    """main.py's option for the process-group timeout, if this version has one (e.g. --pg_timeout),
    and whether it counts minutes; None otherwise. Read from `main.py --help`."""
    done = subprocess.run([python, os.path.join(ROOT, "main.py"), "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    names = sorted(n for n in set(TIMEOUT_OPTION.findall(done.stdout))
                   if any(word in n for word in ("pg", "dist", "ddp", "group", "nccl", "barrier")))
    return (names[0], "min" in names[0]) if names else None


def exit_status(entry):
    """A step's exit status from its entry: 0 without an error, the number, or the timeout's text."""
    error = entry.get("error")
    if error is None:
        return 0
    return int(error.split()[-1]) if error.startswith("exit status ") else error


def slow_rank0_run(python, main_args, settings, budget, limit, env, work, gpus):
    """2 ranks, rank 0 asleep past the process-group timeout after training: exit 0 and 'best' saved?

    The timeout is set through main.py's own option when this version has one; else through a
    bench-only hook (measure.py slow-rank0 --pg-timeout), and a failure then means the version
    does not bound its end of run: recorded as "not supported by this version", not as a failure."""
    option = timeout_option(python, env)
    home = os.path.join(work, "slow_rank0_home")
    env = dict(env, NSML_LOCAL_HOME=home)
    if gpus < 2:  # nccl refuses two ranks on one GPU: the end-of-run logic on two CPU ranks instead
        env["CUDA_VISIBLE_DEVICES"] = ""
    extra = ["--delay", str(SLOW_RANK_DELAY)]
    args = main_args + ["--epochs", "1"]
    if option:
        name, minutes = option
        args += [name, f"{PG_TIMEOUT_SECONDS / 60:g}" if minutes else str(PG_TIMEOUT_SECONDS)]
    else:
        extra += ["--pg-timeout", str(PG_TIMEOUT_SECONDS)]
    result = measure(python, "slow-rank0", args, settings, budget, limit, env, extra, torchrun=2)
    if "skipped" in result:
        return result
    # measure.py slow-rank0 runs main.py, which prints no JSON: outcome() recorded its exit status
    best = [r for r, dirs, _ in os.walk(home) if "best" in dirs]  # nsml_local's checkpoints/best
    entry = {"command": result["command"], "backend": "nccl" if gpus >= 2 else "gloo (CPU)",
             "timeout_set_by": option[0] if option else "bench hook (main.py has no timeout option)",
             "pg_timeout_seconds": PG_TIMEOUT_SECONDS, "rank0_delay_seconds": SLOW_RANK_DELAY,
             "exit_status": exit_status(result),
             "best_checkpoint_saved": bool(best), "seconds": result.get("seconds")}
    passed = entry["exit_status"] == 0 and bool(best)
    entry["supported"] = passed or bool(option)
    if not passed:
        what = f"exit status {entry['exit_status']}, best checkpoint saved: {bool(best)}"
        if option:
            entry["error"] = what
        else:
            entry["note"] = f"not supported by this version (no process-group timeout option; {what})"
        entry["output_tail"] = result.get("output_tail", "")
    return entry


def training_and_submit(python, settings, budget, limit, env, work, smoke, run_sh=os.path.join(ROOT, "run.sh")):
    """GPU: ./run.sh (its last line is the submit's CER). Smoke: `nsml run` one epoch, `nsml submit`."""
    env = dict(env, NSML_LOCAL_HOME=os.path.join(work, "nsml_home"))
    timeout = budget.timeout(limit)
    if smoke:
        args = " ".join(settings["smoke_model"] + settings["common_cpu"] + ["--epochs", "1", "--decoder", "greedy",
                                                                           "--valid_fraction", "0.3"])
        cmd = [python, "-m", "nsml", "run", "-d", settings["dataset"], "-e", "main.py", "-a", args]
    else:
        cmd = ["bash", run_sh]
        env.update(run_sh_env(python))
    if timeout is None:
        return {"command": shlex.join(cmd), "skipped": f"the {settings['budget_minutes']:g}-minute budget ran out"}
    code, out, err, seconds = run_step(cmd, timeout, env)
    if smoke and code == 0:
        session = next((m.group(1) for m in map(SESSION_LINE.match, out.splitlines()) if m), None)
        submit = [python, "-m", "nsml", "submit", session or "?", "best"]
        timeout = budget.timeout(limit - seconds) or 0
        code, out2, err2, more = run_step(submit, timeout, env) if timeout else (None, "", "no time left", 0.0)
        cmd, out, err, seconds = cmd + ["&&", *submit], out + out2, err + err2, seconds + more
    lines = out.strip().splitlines()
    match = CER_LINE.match(lines[-1]) if lines else None
    if code != 0 or not match:
        entry = outcome(cmd, code, out, err, seconds, timeout)
        if code == 0:
            entry["error"] = "no `CER: ...` last line"
        return entry
    entry = {"command": shlex.join(cmd), "cer": float(match.group(1)), "seconds": round(seconds, 1)}
    if not smoke:
        entry["env"] = {k: v for k, v in env.items() if k in ("EPOCHS", "PYTHON")}
    return entry


def run_sh_env(python):
    """./run.sh trains a fixed number of epochs (EPOCHS); 20 keep the step within its share of the
    budget. PYTHON only matters when run.sh has to create its .venv."""
    env = {"EPOCHS": "20"}
    if not os.path.isdir(os.path.join(ROOT, ".venv")):
        env["PYTHON"] = python
    return env


# -- data and machine -----------------------------------------------------------

def machine():
    import torch
    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cores": os.cpu_count(), "platform": platform.platform()}
    cuda = torch.cuda.is_available()  # counts devices; no CUDA context here, the steps' memory is their own
    if cuda:
        info["gpus"] = torch.cuda.device_count()
        info["gpu"] = _output(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"])
    info["commit"] = _output(["git", "rev-parse", "HEAD"])
    return info, cuda


def _output(cmd):
    """First line of a command's output, or None."""
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else None


def write_json(path, result):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    os.replace(tmp, path)


def shared_memory():
    """/dev/shm, where loader workers hand batches over: Docker's default 64 MB bus-errors them."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError as error:
        return {"error": str(error)}
    return {"total_mib": st.f_blocks * st.f_frsize / 2**20, "free_mib": st.f_bavail * st.f_frsize / 2**20}


def shm_needed_mib(throughput: dict) -> float:
    """What the loader's workers hold in /dev/shm at once: workers x 2 prefetched float32 batches."""
    return throughput["num_workers"] * 2 * throughput["batch_seconds_option"] * 16000 * 4 / 2**20


def summary(result):
    rows = ["| model | amp | audio-s/s | data wait | host | GPU (CPU: compute) | GPU util | peak MiB | "
            "30-s batch MiB | note |",
            "|---|---|---|---|---|---|---|---|---|---|"]

    def pct(x):
        return f"{100 * x:.0f}%" if isinstance(x, (int, float)) else "-"

    for model, by in result["throughput"].items():
        for key, r in by.items():
            figure, split = r.get("audio_seconds_per_second"), r.get("split", {})
            peak = r.get("peak_gpu_allocated_mib") or r.get("peak_rss_mib")
            full = r.get("full_length", {})
            full_peak = full.get("peak_gpu_allocated_mib") or full.get("peak_rss_mib")
            note = r.get("skipped") or r.get("error") or r.get("warning") or (
                f"same as {r['same_as']}" if "same_as" in r else "") or (
                f"{r['amp_dtype']}, RNN {','.join(set(r['recurrent_dtypes'].values()))}" if r.get("recurrent_dtypes")
                else r.get("amp_dtype", ""))
            rows.append(f"| {model} | {key} | {'%.0f' % figure if figure else '-'} | {pct(split.get('data_wait'))} | "
                        f"{pct(split.get('host'))} | {pct(split.get('gpu', split.get('compute')))} | "
                        f"{pct(r.get('gpu_utilization'))} | {'%.0f' % peak if peak else '-'} | "
                        f"{'%.0f' % full_peak if full_peak else full.get('error', '-')} | {note} |")

    def line(label, entry, text):
        if entry and not ({"error", "skipped"} & set(entry)):
            try:
                rows.append(f"{label}: {text(entry)}")
                return
            except (KeyError, TypeError, ValueError):  # a figure this version does not give: show what there is
                pass
        rows.append(f"{label}: " + str(entry.get("skipped") or entry.get("error") or entry.get("note")
                                       or {k: v for k, v in entry.items() if k != "command"})[:300])

    for model, p in result["precision"].items():
        line(f"fp32 vs bf16, {model}", p, lambda p: f"loss rel. diff <= {p['max_loss_relative_diff']:.2g}, "
             f"gradient rel. diff <= {p['max_grad_relative_diff']:.2g} over {len(p['steps'])} steps")
    line("validation pass", result["evaluate"], lambda e: f"{e['validation']['seconds']:.1f} s for "
         f"{e['validation']['split_utterances']} utterances")
    line("inference, 10k utterances", result["evaluate"], lambda e: f"{e['inference']['projected_seconds']:.0f} s "
         f"projected ({e['inference']['decoder']}, LM {e['inference']['lm']}; "
         f"limit {e['inference']['time_limit_seconds']:.0f} s)")
    line("DDP, torchrun 1 process", result["ddp"],
         lambda d: f"{d['ddp_backend']}, {d['audio_seconds_per_second']:.0f} audio-s/s")
    line("DDP, rank 0 slow past the timeout", result["slow_rank0"],
         lambda d: d.get("note") or f"exit {d['exit_status']}, best saved {d['best_checkpoint_saved']}")
    for model, c in result["compiled"].items():
        line(f"--compile, {model}", c, lambda c: f"first step {c['first_step_seconds']:.1f} s, "
             f"{c['unique_graphs']} graphs, {c['graph_breaks']} graph breaks, {c['audio_seconds_per_second']:.3g} "
             f"audio-s/s" + ("" if c.get("compiled_model", True) else " (fell back to eager)"))
    line(result["run_label"], result["run"], lambda r: f"CER {r['cer']:.4f} in {r['seconds']:.0f} s")
    return "\n".join(rows)


def failures(result):
    entries = [e for by in result["throughput"].values() for e in by.values()]
    entries += list(result["precision"].values()) + list(result["compiled"].values())
    entries += [result["evaluate"], result["ddp"], result["slow_rank0"], result["run"]]
    return [e for e in entries if "error" in e]


# -- main -----------------------------------------------------------------------

def main(argv=None):
    a = parse_args(argv)
    budget = Budget(a.budget_minutes * 60 - 15)  # 15 s for starting up and writing the JSON
    info, cuda = machine()
    info["shm"] = shared_memory()
    smoke = a.smoke or not cuda
    out = a.out or os.path.join(ROOT, "bench", "results", *(("smoke", "gpu.json") if smoke else ("gpu.json",)))
    out = os.path.abspath(out)
    work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="gpu_check_"))
    os.makedirs(work, exist_ok=True)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    python = sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSML_LOCAL_")}
    env.update(NSML_LOCAL_HOME=os.path.join(work, "nsml_home"), PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join(p for p in (os.path.join(ROOT, "nsml_local"), env.get("PYTHONPATH")) if p))
    if smoke:
        env.update(OMP_NUM_THREADS="1", BENCH_COMPILE_BACKEND="aot_eager")
    settings = {"smoke": smoke, "reason": ("--smoke" if a.smoke else "no CUDA device") if smoke else None,
                "budget_minutes": a.budget_minutes, "work": work,
                "steps": a.steps or (2 if smoke else 20), "warmup": a.warmup or (1 if smoke else 3),
                # smoke: tiny batches on CPU; GPU: the kit's own auto batch and workers
                "common_cpu": ["--device", "cpu", "--batch_seconds", "4"] if smoke else [],
                "smoke_model": MODELS["deepspeech2"][1]}
    result = {"settings": settings, "machine": info, "corpus": {}, "throughput": {m: {} for m in MODELS},
              "precision": {}, "evaluate": {}, "ddp": {}, "slow_rank0": {}, "compiled": {}, "run": {},
              "run_label": "nsml run + submit (smoke)" if smoke else "./run.sh"}
    print(f"[gpu_check] {'smoke mode (' + settings['reason'] + ')' if smoke else info.get('gpu')}; "
          f"budget {a.budget_minutes:g} min; writing {out}", flush=True)

    # 0. the corpus: at least CORPUS_BATCHES of the largest auto batch in the training split (80%)
    if a.dataset:
        result["corpus"] = {"path": os.path.abspath(a.dataset), "given": True}
    elif smoke:
        result["corpus"] = synthetic_corpus(os.path.join(work, "corpus"), 48, test_utterances=6, min_seconds=1,
                                            max_seconds=3, unique_waves=8)
    else:
        result["corpus"] = synthetic_corpus(os.path.join(work, "corpus"), CORPUS_BATCHES * LARGEST_AUTO_BATCH / 0.8)
    settings["dataset"] = result["corpus"]["path"]
    write_json(out, result)
    common = ["--dataset_path", settings["dataset"], "--decoder", "greedy", *settings["common_cpu"]]
    limit = (lambda step: SMOKE_STEP_LIMIT) if smoke else STEP_LIMITS.get

    def config(model, amp=None):
        return MODELS[model][1 if smoke else 0] + (["--amp", amp] if amp else []) + common

    def record(label, entry):
        write_json(out, result)
        print(f"[gpu_check] {label}: " + str(entry.get("audio_seconds_per_second") or entry.get("error")
                                            or entry.get("skipped") or entry.get("note") or "done"), flush=True)

    for model in MODELS:                                            # 1. throughput and its split
        by = result["throughput"][model]
        for amp in AMPS:
            r = measure_throughput(python, config(model, amp), settings, budget, limit("throughput"), env)
            if not smoke and r.get("device", "cuda").split(":")[0] != "cuda":
                r["warning"] = "measured on %s, not on the GPU" % r["device"]
            by[amp] = r
            record(f"{model} {amp}", r)
        auto = next((r["amp_auto"] for r in by.values() if "amp_auto" in r), None)
        same = next((amp for amp, r in by.items() if r.get("amp_dtype") == auto), None)
        if auto and same:
            by["auto"] = {"same_as": same, "amp_dtype": auto}
        else:
            by["auto"] = measure_throughput(python, config(model, "auto"), settings, budget, limit("throughput"), env)
            record(f"{model} auto", by["auto"])
    first = result["throughput"]["deepspeech2"]["off"]
    if "num_workers" in first:
        info["shm"]["needed_mib_estimate"] = shm_needed_mib(first)

    for model in (["deepspeech2"] if smoke else MODELS):            # 2. fp32 vs bf16 at the full batch
        result["precision"][model] = measure(python, "precision", config(model, "off"), settings, budget,
                                             limit("precision"), env, ["--steps", "3"])
        record(f"precision {model}", result["precision"][model])

    beam = [*MODELS[INFERENCE_MODEL][1 if smoke else 0], *common[:2], "--decoder", "beam", *settings["common_cpu"]]
    result["evaluate"] = measure(python, "evaluate", beam, settings, budget, limit("evaluate"), env,  # 3.
                                 ["--sample", "6" if smoke else "200"])
    record("validation and inference", result["evaluate"])

    model, amp = DDP_CONFIG                                         # 4. DDP
    result["ddp"] = measure_throughput(python, config(model, amp), settings, budget, limit("ddp"), env, ddp=True)
    result["ddp"]["config"] = f"{model} --amp {amp}"
    single = result["throughput"][model][amp].get("audio_seconds_per_second")
    if single and "audio_seconds_per_second" in result["ddp"]:
        result["ddp"]["over_single_process"] = result["ddp"]["audio_seconds_per_second"] / single
    record("ddp", result["ddp"])
    if smoke or info.get("gpus", 0) >= 2:
        slow_args = config("deepspeech2")
    else:  # two CPU ranks: a tiny model on a tiny corpus, or one epoch would take hours
        tiny = synthetic_corpus(os.path.join(work, "tiny"), 48, test_utterances=2, min_seconds=1, max_seconds=3,
                                unique_waves=8)
        slow_args = MODELS["deepspeech2"][1] + ["--dataset_path", tiny["path"], "--decoder", "greedy",
                                                "--device", "cpu", "--batch_seconds", "4"]
    result["slow_rank0"] = slow_rank0_run(python, slow_args, settings, budget, limit("slow_rank0"), env, work,
                                          info.get("gpus", 0))
    record("ddp, rank 0 slow", result["slow_rank0"])

    for model in (["deepspeech2"] if smoke else MODELS):            # 5. --compile
        amp = "off" if smoke else "bf16"
        r = measure_throughput(python, config(model, amp) + ["--compile"], settings, budget, limit("compiled"), env)
        eager = result["throughput"][model][amp].get("audio_seconds_per_second")
        if eager and "audio_seconds_per_second" in r:
            r["over_eager"] = r["audio_seconds_per_second"] / eager
        result["compiled"][model] = r
        record(f"{model} --compile", r)

    result["run"] = training_and_submit(python, settings, budget, limit("run_sh"), env, work, smoke)  # 6.
    record(result["run_label"], result["run"])
    result["seconds"] = round(time.monotonic() - budget.start, 1)
    write_json(out, result)
    print(summary(result), flush=True)
    failed = failures(result)
    print(f"[gpu_check] {len(failed)} step(s) failed; {result['seconds']:.0f} s; results in {out}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
