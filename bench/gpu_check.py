"""The GPU check: one command, at most 8 minutes on one GPU (run it as bench/gpu_check.sh).

    bench/gpu_check.sh                    # on a GPU machine: writes bench/results/gpu.json
    bench/gpu_check.sh --smoke --out F    # CPU, tiny models and data (tests/test_bench_smoke.py)

Steps, in priority order, each a process of its own under a hard timeout that ends before
the budget does (--budget-minutes, default 8). A step that fails is recorded with its error
text and the rest go on; a step the budget cannot fit is recorded as skipped. The JSON is
rewritten after every step, so an interrupted check still leaves what it measured.

  1. throughput (audio-s/s) and peak GPU memory of DeepSpeech2 and Conformer medium,
     each with --amp off and --amp bf16 (bench/measure.py throughput, one process each);
  2. a 1-process `torchrun` DDP run (measure.py --ddp: nccl on CUDA, gloo on CPU), DeepSpeech2 bf16;
  3. ./run.sh on the GPU (1 minute of training, then the submit): its CER;
  4. the four throughputs of step 1 again with --compile (compiling takes the longest).

Smoke mode (--smoke, or no CUDA device): the same steps on CPU with tiny models, a generated
tiny dataset, a few steps; bf16 is CPU autocast, torchrun uses gloo, --compile is skipped,
and step 3 is `nsml run` for one epoch then `nsml submit` instead of ./run.sh. Its figures
only show that every step runs.
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

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEASURE = os.path.join(ROOT, "bench", "measure.py")

MODELS = {  # name in the JSON -> main.py options (on the GPU, and the tiny stand-in of smoke mode)
    "deepspeech2": (["--model", "deepspeech2"], ["--model", "deepspeech2", "--rnn_hidden", "32", "--rnn_layers", "1"]),
    "conformer_medium": (["--model", "conformer", "--conformer_size", "medium"],
                         ["--model", "conformer", "--d_model", "32", "--layers", "1", "--heads", "2"]),
}
AMPS = ("off", "bf16")
DDP_CONFIG = ("deepspeech2", "bf16")
# Longest each step may take on the GPU (seconds); the budget's deadline can cut them shorter.
STEP_LIMITS = {"throughput": 75, "ddp": 90, "run_sh": 210, "compiled": 150}
MIN_STEP_SECONDS = 20      # a step with less time left than this is skipped, not started
SMOKE_STEP_LIMIT = 120     # smoke mode: a generous cap per step, so a hung step still ends
CER_LINE = re.compile(r"^CER: ([0-9.eE+-]+|nan|inf)\s*$")
SESSION_LINE = re.compile(r"^Session (\S+) started$")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="CPU smoke mode (also chosen when no CUDA device exists)")
    p.add_argument("--budget-minutes", type=float, default=8.0, help="the whole check ends within this")
    p.add_argument("--out", default=None, help="JSON (default bench/results/gpu.json; smoke: bench/results/smoke/gpu.json)")
    p.add_argument("--work", default=None, help="scratch folder: tiny dataset, nsml state (default: a new "
                                                "temporary folder)")
    p.add_argument("--dataset", default=None, help="training data (default ./sample_dataset; smoke: a generated "
                                                   "tiny one)")
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

def measure_throughput(python, main_args, settings, budget, limit, env, ddp=False):
    cmd = [python, MEASURE, "throughput", "--steps", str(settings["steps"]), "--warmup", str(settings["warmup"])]
    if ddp:
        cmd = [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
               *cmd[1:], "--ddp"]
    cmd += ["--", *main_args]
    timeout = budget.timeout(limit)
    if timeout is None:
        return {"command": shlex.join(cmd), "skipped": f"the {settings['budget_minutes']:g}-minute budget ran out"}
    code, out, err, seconds = run_step(cmd, timeout, env)
    result = last_json(out) if code == 0 else None
    if result is None:
        return outcome(cmd, code, out, err, seconds, timeout)
    result.update(command=shlex.join(cmd), process_seconds=round(seconds, 1))
    return result


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

SENTENCES = ["가나 다라", "마바 사아", "자차 카타", "파하 가나", "다라 마바", "사아 자차"]


def make_tiny_dataset(root, train=16, test=4):
    """2022 layout, 1 s tones: enough for every step to run, nothing to learn."""
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for split, count in (("train", train), ("test", test)):
        data = os.path.join(root, split, f"{split}_data")
        os.makedirs(data, exist_ok=True)
        rows = ["filename,text"]
        for i in range(count):
            name = f"{'idx' if split == 'train' else 'test'}_{i:06d}"
            tone = np.sin(2 * np.pi * (200 + 40 * (i % 6)) * t) + 0.1 * rng.standard_normal(16000)
            (tone * 3000).astype("<i2").tofile(os.path.join(data, name))
            rows.append(f"{name},{SENTENCES[i % len(SENTENCES)]}")
        with open(os.path.join(root, split, f"{split}_label"), "w", encoding="utf-8") as f:
            f.write("\n".join(rows) + "\n")
    return root


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


def summary(result):
    rows = ["| model | amp | compile | audio-s/s | peak GPU MiB | note |", "|---|---|---|---|---|---|"]
    for model, by in result["throughput"].items():
        for key, r in by.items():
            amp, _, compiled = key.partition("+")
            figure = r.get("audio_seconds_per_second")
            gpu = r.get("peak_gpu_allocated_mib")
            note = r.get("skipped") or r.get("error") or r.get("warning") or (
                f"{r['over_eager']:.2f}x eager" if "over_eager" in r else "")
            rows.append(f"| {model} | {amp} | {'yes' if compiled else 'no'} | "
                        f"{'%.0f' % figure if figure else '-'} | {'%.0f' % gpu if gpu else '-'} | {note} |")
    ddp, run = result["ddp"], result["run"]
    rows.append(f"DDP (torchrun, 1 process, {ddp.get('ddp_backend') or '-'}): "
                + (f"{ddp['audio_seconds_per_second']:.0f} audio-s/s" if "audio_seconds_per_second" in ddp
                   else ddp.get("skipped") or ddp.get("error", "")))
    rows.append(f"{result['run_label']}: " + (f"CER {run['cer']:.4f} in {run['seconds']:.0f} s" if "cer" in run
                                              else run.get("skipped") or run.get("error", "")))
    return "\n".join(rows)


# -- main -----------------------------------------------------------------------

def main(argv=None):
    a = parse_args(argv)
    budget = Budget(a.budget_minutes * 60 - 15)  # 15 s for starting up and writing the JSON
    info, cuda = machine()
    smoke = a.smoke or not cuda
    out = a.out or os.path.join(ROOT, "bench", "results", *(("smoke", "gpu.json") if smoke else ("gpu.json",)))
    out = os.path.abspath(out)
    work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="gpu_check_"))
    os.makedirs(work, exist_ok=True)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    dataset = os.path.abspath(a.dataset or (make_tiny_dataset(os.path.join(work, "tiny")) if smoke
                                            else os.path.join(ROOT, "sample_dataset")))
    python = sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSML_LOCAL_")}
    env.update(NSML_LOCAL_HOME=os.path.join(work, "nsml_home"), PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join(p for p in (os.path.join(ROOT, "nsml_local"), env.get("PYTHONPATH")) if p))
    if smoke:
        env["OMP_NUM_THREADS"] = "1"
    settings = {"smoke": smoke, "reason": ("--smoke" if a.smoke else "no CUDA device") if smoke else None,
                "budget_minutes": a.budget_minutes, "dataset": dataset, "work": work,
                "steps": a.steps or (2 if smoke else 20), "warmup": a.warmup or (1 if smoke else 3),
                # smoke: tiny batches on CPU; GPU: the kit's own defaults (device auto, batch_seconds 900)
                "common_cpu": ["--device", "cpu", "--batch_seconds", "4"] if smoke else [],
                "smoke_model": MODELS["deepspeech2"][1]}
    common = ["--dataset_path", dataset, "--decoder", "greedy", *settings["common_cpu"]]
    limit = (lambda step: SMOKE_STEP_LIMIT) if smoke else STEP_LIMITS.get
    result = {"settings": settings, "machine": info, "throughput": {m: {} for m in MODELS},
              "ddp": {}, "run": {}, "run_label": "nsml run + submit (smoke)" if smoke else "./run.sh"}

    def config(model, amp):
        return MODELS[model][1 if smoke else 0] + ["--amp", amp] + common

    print(f"[gpu_check] {'smoke mode (' + settings['reason'] + ')' if smoke else info.get('gpu')}; "
          f"budget {a.budget_minutes:g} min; writing {out}", flush=True)
    for model in MODELS:                                            # 1. eager throughput
        for amp in AMPS:
            r = measure_throughput(python, config(model, amp), settings, budget, limit("throughput"), env)
            if not smoke and r.get("device", "cuda").split(":")[0] != "cuda":
                r["warning"] = "measured on %s, not on the GPU" % r["device"]
            result["throughput"][model][amp] = r
            write_json(out, result)
            print(f"[gpu_check] {model} {amp}: {r.get('audio_seconds_per_second') or r.get('error') or r.get('skipped')}",
                  flush=True)
    model, amp = DDP_CONFIG                                         # 2. 1-process DDP under torchrun
    result["ddp"] = measure_throughput(python, config(model, amp), settings, budget, limit("ddp"), env, ddp=True)
    result["ddp"]["config"] = f"{model} --amp {amp}"
    single = result["throughput"][model][amp].get("audio_seconds_per_second")
    if single and "audio_seconds_per_second" in result["ddp"]:
        result["ddp"]["over_single_process"] = result["ddp"]["audio_seconds_per_second"] / single
    write_json(out, result)
    print(f"[gpu_check] ddp: {result['ddp'].get('ddp_backend') or result['ddp'].get('error') or result['ddp'].get('skipped')}",
          flush=True)
    result["run"] = training_and_submit(python, settings, budget, limit("run_sh"), env, work, smoke)  # 3.
    write_json(out, result)
    print(f"[gpu_check] {result['run_label']}: {result['run'].get('cer', result['run'].get('error'))}", flush=True)
    for model in MODELS:                                            # 4. compiled throughput
        for amp in AMPS:
            if smoke:
                r = {"skipped": "smoke mode: torch.compile is measured on the GPU only"}
            else:
                r = measure_throughput(python, config(model, amp) + ["--compile"], settings, budget,
                                       limit("compiled"), env)
                eager = result["throughput"][model][amp].get("audio_seconds_per_second")
                if eager and "audio_seconds_per_second" in r:
                    r["over_eager"] = r["audio_seconds_per_second"] / eager
            result["throughput"][model][amp + "+compile"] = r
            write_json(out, result)
    result["seconds"] = round(time.monotonic() - budget.start, 1)
    write_json(out, result)
    print(summary(result), flush=True)
    failed = [e for by in result["throughput"].values() for e in by.values() if "error" in e]
    failed += [e for e in (result["ddp"], result["run"]) if "error" in e]
    print(f"[gpu_check] {len(failed)} step(s) failed; {result['seconds']:.0f} s; results in {out}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
