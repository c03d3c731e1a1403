"""The kit against the 2022 official baseline's recipe (`--preset baseline2022`), side by side.

    python bench/run_suite.py                          # full: 1 h corpus, 20 min of training each
    python bench/run_suite.py --budget-minutes 5 --hours 0.5
    python bench/run_suite.py --smoke --out /tmp/s     # CI: tiny corpus, models and budgets (~1 min)

On a generated corpus (tools/make_corpus.py; held-out test sentences and voices;
cached under --cache), for the kit's defaults and for baseline2022:
  1. train through main.py (local nsml) for the same wall-clock budget, recording
     validation CER against time, then submit (`--mode test --pause 1 --iteration best`)
     and read the test CER from its last line;
  2. training throughput (audio seconds per second) over fixed steps, plus the kit's
     pipeline at the baseline's model size (BiGRU 1024 x 3), and peak RSS;
  3. inference real-time factor: the kit batched vs one file at a time (same model),
     and the baseline one file at a time with its own model; projected time for
     10,000 utterances (the 2021 test set) against the 3600 s limit;
  4. feature extraction seconds per hour of audio: batched torch vs per-file librosa.
Writes OUT/suite.json and OUT/cer_vs_time.png, prints the table, and (full runs)
rewrites the table in bench/README.md between its marker comments.
"""
import argparse
import glob
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import measure  # noqa: E402

CONFIGS = {"kit": [], "baseline2022": ["--preset", "baseline2022"],
           # the kit's DeepSpeech2 default before jamo units and speed perturbation (issue 6's reference)
           "ds2_char": ["--unit", "char", "--time_stride", "6", "--rnn_layers", "3", "--speed_perturb", "off"],
           # issue 6's models, each with the kit's pipeline, trained for the same budget
           "conformer": ["--model", "conformer"],
           "attention": ["--model", "attention", "--decoder", "attention"]}
# Decoders tried on each trained checkpoint (`test_cer_by_decoder`): the acoustic model is the
# same, so the rows compare decoders alone. "as trained" is what `nsml submit` runs.
DECODERS = {"greedy": {"decoder": "greedy"}, "beam": {"decoder": "beam", "lm_weight": 0.0},
            "beam+LM": {"decoder": "beam"}, "attention": {"decoder": "attention"}, "joint": {"decoder": "joint"}}
# The kit's pipeline (time stride 6, duration batches, its optimizer...) with the baseline's model size.
KIT_AT_BASELINE_SIZE = ["--rnn_hidden", "1024", "--rnn_layers", "3"]
# --smoke: tiny models so CI runs every step in about a minute; figures are not comparable.
SMOKE_MODEL = ["--rnn_hidden", "32", "--rnn_layers", "1"]
SMOKE_BASELINE_BATCH = ["--batch_utterances", "16"]
SMOKE_TRANSFORMER = ["--d_model", "32", "--layers", "1", "--heads", "2"]

EPOCH_LINE = re.compile(r"^epoch\s+(\d+)(?:/\d+)? \|.*\| val_cer ([0-9.]+) \|.*?\| ([0-9.]+) min")
AUDIO_PER_SECOND = re.compile(r"\| ([0-9.]+) audio-s/s \|")
CER_LINE = re.compile(r"^CER: ([0-9.eE+-]+|nan|inf)\s*$")
INFERENCE_LINE = re.compile(r"^inference time: ([0-9.]+) s")
README_START, README_END = "<!-- suite-results:start -->", "<!-- suite-results:end -->"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget-minutes", type=float, default=20.0, help="training wall-clock budget per config")
    p.add_argument("--hours", type=float, default=1.0, help="corpus size (train + test), generated once, cached")
    p.add_argument("--seed", type=int, default=1, help="corpus seed")
    p.add_argument("--corpus", type=str, default=None, help="use this corpus (2022 layout) instead of generating")
    p.add_argument("--cache", type=str, default=os.path.join(ROOT, "bench", "cache"), help="generated corpora")
    p.add_argument("--out", type=str, default=None,
                   help="where suite.json and the PNG go (default bench/results, smoke: bench/results/smoke)")
    p.add_argument("--work", type=str, default=None, help="sessions and logs (default OUT/work)")
    p.add_argument("--throughput-steps", type=int, default=20)
    p.add_argument("--throughput-warmup", type=int, default=2)
    p.add_argument("--infer-files", type=int, default=0, help="test files timed at inference; 0 = all")
    p.add_argument("--feature-hours", type=float, default=0.25, help="audio timed for feature extraction")
    p.add_argument("--extra", type=str, default="",
                   help="main.py options added last to every run (e.g. '--rnn_hidden 128' for a quick check); "
                        "such a run is not the benchmark")
    p.add_argument("--configs", type=str, default=",".join(CONFIGS),
                   help="configurations trained for the budget (kit and baseline2022 always), from: "
                        + ", ".join(CONFIGS))
    p.add_argument("--readme", type=str, default=os.path.join(ROOT, "bench", "README.md"))
    p.add_argument("--no-readme", action="store_true", help="do not update the README table")
    p.add_argument("--smoke", action="store_true",
                   help="CI: tiny corpus (60+12 utterances), 0.1 min budgets, tiny models, 2+1 steps")
    a = p.parse_args(argv)
    if a.smoke:
        a.budget_minutes = min(a.budget_minutes, 0.1)
        a.throughput_steps, a.throughput_warmup = min(a.throughput_steps, 2), min(a.throughput_warmup, 1)
        a.no_readme = True  # smoke figures are not the benchmark
    a.out = a.out or os.path.join(ROOT, "bench", "results", *(["smoke"] if a.smoke else []))
    a.work = a.work or os.path.join(a.out, "work")
    return a


def log(msg):
    print(f"[suite {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- corpus --------------------------------------------------------------------

def make_corpus(a) -> str:
    if a.corpus:
        return os.path.abspath(a.corpus)
    name = f"smoke_seed{a.seed}" if a.smoke else f"ko_{a.hours:g}h_seed{a.seed}"
    out = os.path.join(a.cache, name)
    if os.path.isfile(os.path.join(out, "corpus_info.json")):
        log(f"corpus: cached {out}")
        return out
    size = ["--train-utts", "60", "--test-utts", "12"] if a.smoke else ["--hours", str(a.hours)]
    cmd = [sys.executable, os.path.join(ROOT, "tools", "make_corpus.py"), "--out", out, "--seed", str(a.seed),
           "--no-progress", "--force", *size]
    log("corpus: " + " ".join(cmd))
    subprocess.run(cmd, check=True)
    return out


# -- training and submit through main.py ---------------------------------------

def session_env(home: str, corpus: str) -> dict:
    env = dict(os.environ, NSML_LOCAL_HOME=home, NSML_LOCAL_DATASET_PATH=corpus, PYTHONUNBUFFERED="1")
    for name in list(env):  # a run inside an `nsml run` session must not inherit that session
        if name.startswith("NSML_LOCAL_") and name not in ("NSML_LOCAL_HOME", "NSML_LOCAL_DATASET_PATH"):
            del env[name]
    return env


def tail(path, n=30):
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-n:])


def train_and_submit(name: str, argv: list, corpus: str, a) -> dict:
    """Train `main.py argv` for the budget, recording (seconds, val_cer) per epoch; then submit."""
    work = os.path.join(a.work, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    env = session_env(os.path.join(work, "nsml_home"), corpus)
    cmd = [sys.executable, os.path.join(ROOT, "main.py"), *argv, "--dataset_path", corpus,
           "--max_minutes", f"{a.budget_minutes:g}", "--epochs", "100000"]  # the budget ends training
    log(f"{name}: train  " + " ".join(cmd[1:]))
    out_log, err_log = os.path.join(work, "train.out"), os.path.join(work, "train.err")
    curve = []
    with open(out_log, "w") as out, open(err_log, "w") as err:
        start = time.time()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        for line in proc.stdout:
            out.write(line)
            m = EPOCH_LINE.match(line)
            if m:
                speed = AUDIO_PER_SECOND.search(line)
                curve.append({"epoch": int(m.group(1)), "seconds": round(time.time() - start, 2),
                              "val_cer": float(m.group(2)), "audio_per_second": float(speed.group(1)) if speed else None})
                log(f"{name}: epoch {m.group(1)} val_cer {m.group(2)} at {time.time() - start:.0f} s")
        # wait4 gives this child's own resource usage, hence its peak RSS.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        train_seconds = time.time() - start
    if proc.returncode != 0 or not curve:
        raise RuntimeError(f"{name}: training failed (exit {proc.returncode}, {len(curve)} epochs); "
                           f"see {out_log}, {err_log}:\n{tail(err_log)}")

    cmd = [sys.executable, os.path.join(ROOT, "main.py"), *argv, "--dataset_path", corpus,
           "--mode", "test", "--pause", "1", "--iteration", "best"]
    log(f"{name}: submit " + " ".join(cmd[1:]))
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    with open(os.path.join(work, "submit.out"), "w") as f:
        f.write(done.stdout + "\n--- stderr ---\n" + done.stderr)
    lines = done.stdout.strip().splitlines()
    m = CER_LINE.match(lines[-1]) if lines else None
    if done.returncode != 0 or not m:
        raise RuntimeError(f"{name}: submit failed (exit {done.returncode}); last lines:\n"
                           + "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:]))
    submit_seconds = next((float(x.group(1)) for x in map(INFERENCE_LINE.match, lines) if x), None)
    checkpoints = glob.glob(os.path.join(work, "nsml_home", "sessions", "*", "*", "*", "checkpoints", "best",
                                         "model", "model.pt"))
    if len(checkpoints) != 1:
        raise RuntimeError(f"{name}: expected one best checkpoint under {work}, found {checkpoints}")
    speeds = [p["audio_per_second"] for p in curve[1:] if p["audio_per_second"]]  # epoch 1 includes warm-up
    return {"test_cer": float(m.group(1)), "best_val_cer": min(p["val_cer"] for p in curve),
            "train_audio_per_second": sum(speeds) / len(speeds) if speeds else None,
            "epochs": len(curve), "curve": curve, "train_seconds": round(train_seconds, 1),
            "train_peak_rss_mib": usage.ru_maxrss / 1024, "submit_inference_seconds": submit_seconds,
            "checkpoint": checkpoints[0], "argv": argv}


def throughput(name: str, argv: list, corpus: str, a) -> dict:
    cmd = [sys.executable, os.path.join(ROOT, "bench", "measure.py"), "throughput", "--steps",
           str(a.throughput_steps), "--warmup", str(a.throughput_warmup), "--", *argv, "--dataset_path", corpus]
    log(f"{name}: throughput " + " ".join(cmd[1:]))
    env = session_env(os.path.join(a.work, "throughput_nsml_home"), corpus)
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name}: throughput failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"{name}: {result['audio_seconds_per_second']:.1f} audio-s/s, peak RSS {result['peak_rss_mib']:.0f} MiB")
    return dict(result, argv=argv)


# -- in-process measurements ---------------------------------------------------

def load_recognizer(path):
    """The recognizer of a checkpoint's model.pt (any format the kit has written)."""
    import torch

    from modules.checkpoint import read_checkpoint
    from modules.transcribe.recognizer import SpeechRecognizer
    return SpeechRecognizer.from_state_dict(read_checkpoint(os.path.dirname(path))[1]["recognizer"],
                                            torch.device("cpu"))


def parameters(checkpoint: str) -> int:
    return sum(p.numel() for p in load_recognizer(checkpoint).model.parameters())


def inference(runs: dict, corpus: str, a) -> dict:
    folder = os.path.join(corpus, "test", "test_data")
    paths = sorted(os.path.join(folder, n) for n in os.listdir(folder) if not n.startswith("."))
    paths = paths[: a.infer_files] if a.infer_files else paths
    kit = load_recognizer(runs["kit"]["checkpoint"])
    base = load_recognizer(runs["baseline2022"]["checkpoint"])
    kit_batch, base_batch = kit.decoder_config.batch_seconds, base.decoder_config.batch_seconds  # as trained
    results = {}
    for key, rec, batch in (("kit_batched", kit, kit_batch), ("kit_one_by_one", kit, 0.0),
                            ("baseline2022_one_by_one", base, base_batch)):
        results[key] = measure.inference_speed(rec, paths, batch)
        log(f"inference {key}: RTF {results[key]['rtf']:.4f}, "
            f"{results[key]['seconds_per_utterance'] * 1000:.1f} ms/utt")
    return results


def test_cer_by_decoder(runs: dict, corpus: str) -> dict:
    """Each trained checkpoint's test CER under each decoder that applies to it (in-process; the
    submit decodes only as trained). The baseline keeps its own decoder (greedy without merging)."""
    from dataclasses import replace

    from modules.text import read_label_records
    references = {r["filename"]: r["text"] for r in read_label_records(os.path.join(corpus, "test", "test_label"))}
    folder = os.path.join(corpus, "test", "test_data")
    names = sorted(references)
    paths = [os.path.join(folder, n) for n in names]
    results = {}
    for name, run in runs.items():
        rec = load_recognizer(run["checkpoint"])
        as_trained = rec.decoder_config
        if name == "baseline2022":
            decoders = {"greedy": {}}
        else:
            decoders = {k: v for k, v in DECODERS.items()
                        if (k != "beam+LM" or rec.lm is not None) and (k not in ("attention", "joint") or rec.model_name == "attention")}
        batch = as_trained.batch_seconds
        results[name] = {}
        for decoder, changes in decoders.items():
            rec.decoder_config = replace(as_trained, **changes)
            m = measure.test_cer(rec, paths, [references[n] for n in names], batch)
            m["as_trained"] = rec.decoder_config == as_trained
            results[name][decoder] = m
            log(f"{name} + {decoder}: test CER {m['test_cer']:.4f}, {1000 * m['seconds_per_utterance']:.1f} ms/utt"
                + (" (as trained)" if m["as_trained"] else ""))
    return results


def features(corpus: str, a) -> dict:
    folder = os.path.join(corpus, "train", "train_data")
    from modules.audio import audio_duration
    paths, seconds = [], 0.0
    for n in sorted(os.listdir(folder)):
        if seconds >= a.feature_hours * 3600:
            break
        paths.append(os.path.join(folder, n))
        seconds += audio_duration(paths[-1])
    result = measure.feature_extraction(paths)
    log(f"features: kit {result['kit_batched_seconds_per_hour']:.1f} s/h, "
        f"librosa per file {result['librosa_per_file_seconds_per_hour']:.1f} s/h")
    return result


# -- report ----------------------------------------------------------------------

def machine() -> dict:
    return measure.machine()


def ratio(x, y):
    return x / y if y else math.inf


def summarize(r: dict) -> dict:
    """Ratios and targets (kit / baseline unless said otherwise)."""
    cer, thr, inf, feat = r["cer"], r["throughput"], r["inference"], r["features"]
    r["ratios"] = {
        "test_cer_kit_over_baseline": ratio(cer["kit"]["test_cer"], cer["baseline2022"]["test_cer"]),
        "throughput_equal_size_kit_over_baseline": ratio(thr["kit_at_baseline_size"]["audio_seconds_per_second"],
                                                         thr["baseline2022"]["audio_seconds_per_second"]),
        "throughput_default_kit_over_baseline": ratio(thr["kit"]["audio_seconds_per_second"],
                                                      thr["baseline2022"]["audio_seconds_per_second"]),
        "inference_batched_speedup_over_one_by_one": ratio(inf["kit_one_by_one"]["seconds"],
                                                           inf["kit_batched"]["seconds"]),
        "inference_kit_speedup_over_baseline": ratio(inf["baseline2022_one_by_one"]["seconds"],
                                                     inf["kit_batched"]["seconds"]),
        "features_batched_speedup_over_librosa": ratio(feat["librosa_per_file_seconds_per_hour"],
                                                       feat["kit_batched_seconds_per_hour"]),
    }
    q = r["ratios"]
    # Issue 6: the best (configuration, decoder) against the kit's DeepSpeech2 decoded greedily
    # and against the baseline. The reference DeepSpeech2 is `ds2_char`, the default the issue
    # started from (characters, no speed perturbation), when the suite ran it; else today's `kit`.
    dec = r.get("decoders", {})
    scored = [(m["test_cer"], name, d) for name, by in dec.items() if name != "baseline2022" for d, m in by.items()]
    reference = "ds2_char" if "greedy" in dec.get("ds2_char", {}) else "kit"
    if scored and "greedy" in dec.get(reference, {}):
        best_cer, best_name, best_decoder = min(scored)
        r["best_configuration"] = {"config": best_name, "decoder": best_decoder, "test_cer": best_cer,
                                   "reference": reference}
        q["best_over_reference_greedy"] = ratio(best_cer, dec[reference]["greedy"]["test_cer"])
        q["best_over_kit_greedy"] = ratio(best_cer, dec["kit"]["greedy"]["test_cer"])
        q["best_over_baseline"] = ratio(best_cer, dec["baseline2022"]["greedy"]["test_cer"])
    r["targets"] = {
        "test CER kit <= 0.5 x baseline": q["test_cer_kit_over_baseline"] <= 0.5,
        "peak RSS of the kit's training <= 2048 MiB": cer["kit"]["train_peak_rss_mib"] <= 2048,
        "throughput at equal size >= 3 x baseline": q["throughput_equal_size_kit_over_baseline"] >= 3,
        "inference batched >= 10 x one file at a time": q["inference_batched_speedup_over_one_by_one"] >= 10,
        "projected 10,000 utterances < 3600 s": inf["kit_batched"]["projected_10k_seconds"] < measure.TIME_LIMIT,
    }
    if "best_over_reference_greedy" in q:
        r["targets"][f"best configuration <= 0.5 x the kit's DeepSpeech2 ({r['best_configuration']['reference']}, "
                     "greedy)"] = q["best_over_reference_greedy"] <= 0.5
        r["targets"]["best configuration <= 1/3 x baseline2022"] = q["best_over_baseline"] <= 1 / 3
    return r


def table(r: dict) -> str:
    cer, thr, inf, feat, q = r["cer"], r["throughput"], r["inference"], r["features"], r["ratios"]
    k, b = cer["kit"], cer["baseline2022"]
    rows = [
        ("test CER after the budget", f"{k['test_cer']:.4f}", f"{b['test_cer']:.4f}",
         f"{q['test_cer_kit_over_baseline']:.3f}", "<= 0.5"),
        ("best validation CER", f"{k['best_val_cer']:.4f}", f"{b['best_val_cer']:.4f}",
         f"{ratio(k['best_val_cer'], b['best_val_cer']):.3f}", ""),
        ("epochs in the budget", str(k["epochs"]), str(b["epochs"]), "", ""),
        ("peak RSS of training (MiB)", f"{k['train_peak_rss_mib']:.0f}", f"{b['train_peak_rss_mib']:.0f}",
         f"{ratio(k['train_peak_rss_mib'], b['train_peak_rss_mib']):.2f}", ""),
        (f"training audio-s/s, default models ({thr['kit']['parameters'] / 1e6:.1f} M vs "
         f"{thr['baseline2022']['parameters'] / 1e6:.1f} M parameters)", f"{thr['kit']['audio_seconds_per_second']:.1f}",
         f"{thr['baseline2022']['audio_seconds_per_second']:.1f}", f"{q['throughput_default_kit_over_baseline']:.2f}",
         ""),
        (f"training audio-s/s, equal model size ({thr['kit_at_baseline_size']['parameters'] / 1e6:.1f} M vs "
         f"{thr['baseline2022']['parameters'] / 1e6:.1f} M parameters)",
         f"{thr['kit_at_baseline_size']['audio_seconds_per_second']:.1f}",
         f"{thr['baseline2022']['audio_seconds_per_second']:.1f}",
         f"{q['throughput_equal_size_kit_over_baseline']:.2f}", ">= 3"),
        ("peak RSS of throughput run at baseline size (MiB)", f"{thr['kit_at_baseline_size']['peak_rss_mib']:.0f}",
         f"{thr['baseline2022']['peak_rss_mib']:.0f}",
         f"{ratio(thr['kit_at_baseline_size']['peak_rss_mib'], thr['baseline2022']['peak_rss_mib']):.2f}", ""),
        ("inference RTF: kit batched vs kit model one file at a time", f"{inf['kit_batched']['rtf']:.4f}",
         f"{inf['kit_one_by_one']['rtf']:.4f}", f"{1 / q['inference_batched_speedup_over_one_by_one']:.3f}",
         "<= 0.1"),
        ("inference RTF: kit batched vs baseline (own model, one file at a time)", f"{inf['kit_batched']['rtf']:.4f}",
         f"{inf['baseline2022_one_by_one']['rtf']:.4f}", f"{1 / q['inference_kit_speedup_over_baseline']:.3f}", ""),
        ("projected 10,000-utterance test (s)", f"{inf['kit_batched']['projected_10k_seconds']:.0f}",
         f"{inf['baseline2022_one_by_one']['projected_10k_seconds']:.0f}",
         f"{ratio(inf['kit_batched']['projected_10k_seconds'], inf['baseline2022_one_by_one']['projected_10k_seconds']):.3f}",
         "kit < 3600"),
        ("feature extraction s per hour of audio (batched torch vs per-file librosa)",
         f"{feat['kit_batched_seconds_per_hour']:.1f}", f"{feat['librosa_per_file_seconds_per_hour']:.1f}",
         f"{1 / q['features_batched_speedup_over_librosa']:.3f}", ""),
    ]
    lines = ["| measure | kit | baseline2022 | kit / baseline | target |", "|---|---:|---:|---:|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    lines.append("")
    lines += configuration_table(r)
    lines += [f"- {'met' if ok else 'NOT met'}: {name}" for name, ok in r["targets"].items()]
    return "\n".join(lines)


def configuration_table(r: dict) -> list:
    """One row per (configuration, decoder): same corpus, same training budget."""
    if not r.get("decoders"):
        return []
    lines = ["Every configuration, trained for the same budget; each checkpoint decoded by each decoder "
             "that applies (* = the decoder it was trained with, which `nsml submit` uses):", "",
             "| configuration | decoder | test CER | ms/utt | parameters (M) | epochs | training audio-s/s "
             "| peak RSS (MiB) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, by in r["decoders"].items():
        run = r["cer"][name]
        speed = run.get("train_audio_per_second")
        params = r.get("parameters", {}).get(name)
        for decoder, m in by.items():
            lines.append(f"| {name} | {decoder}{' *' if m['as_trained'] else ''} | {m['test_cer']:.4f} | "
                         f"{1000 * m['seconds_per_utterance']:.1f} | {f'{params / 1e6:.1f}' if params else ''} | "
                         f"{run['epochs']} | {f'{speed:.0f}' if speed else ''} | {run['train_peak_rss_mib']:.0f} |")
    best, q = r.get("best_configuration"), r["ratios"]
    if best:
        lines += ["", f"Best: {best['config']} + {best['decoder']}, test CER {best['test_cer']:.4f}: "
                      f"{q['best_over_reference_greedy']:.2f} x {best['reference']} (the kit's DeepSpeech2) decoded "
                      f"greedily, {q['best_over_kit_greedy']:.2f} x kit decoded greedily, "
                      f"{q['best_over_baseline']:.2f} x baseline2022."]
    lines.append("")
    return lines


def plot(r: dict, path: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, run in r["cer"].items():
        ax.plot([p["seconds"] / 60 for p in run["curve"]], [p["val_cer"] for p in run["curve"]], marker="o",
                markersize=3, label=f"{name} (test CER {run['test_cer']:.3f})")
    ax.set_xlabel("wall-clock minutes since the training process started")
    ax.set_ylabel("validation CER")
    ax.set_title(f"Validation CER vs time ({r['settings']['corpus_hours']:.2f} h corpus, {r['machine']['cpu']})",
                 fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_readme(path: str, r: dict, text: str):
    m, s = r["machine"], r["settings"]
    block = (f"{README_START}\n"
             f"Latest run: {m['date']} on {m['cpu']}, {m['cores']} cores, torch {m['torch']}"
             f"{', GPU ' + m['gpu'] if m['gpu'] else ', no GPU'}; corpus {s['corpus_hours']:.2f} h "
             f"(seed {s['seed']}), {s['budget_minutes']:g} min of training per config, throughput over "
             f"{s['throughput_steps']} steps after {s['throughput_warmup']}; command: `{s['command']}`\n\n"
             f"{text}\n\n![validation CER vs time](results/cer_vs_time.png)\n{README_END}")
    with open(path, encoding="utf-8") as f:
        content = f.read()
    if README_START not in content or README_END not in content:
        raise ValueError(f"{path} lacks the marker comments {README_START} / {README_END}")
    before, rest = content.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    with open(path, "w", encoding="utf-8") as f:
        f.write(before + block + after)


def main(argv=None):
    a = parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.work, exist_ok=True)
    started = time.time()
    corpus = make_corpus(a)
    with open(os.path.join(corpus, "corpus_info.json"), encoding="utf-8") as f:
        info = json.load(f)
    hours = sum(split.get("hours", 0) for split in info.get("splits", {}).values())
    smoke = SMOKE_MODEL if a.smoke else []
    extra = shlex.split(a.extra)
    chosen = ["kit", "baseline2022"] + [c for c in a.configs.split(",") if c and c not in ("kit", "baseline2022")]
    unknown = [c for c in chosen if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown --configs {unknown}; choose from: {', '.join(CONFIGS)}")
    configs = {}
    for name in chosen:
        tiny = []
        if a.smoke:
            tiny = {"baseline2022": SMOKE_BASELINE_BATCH, "kit": SMOKE_MODEL, "ds2_char": SMOKE_MODEL}.get(
                name, SMOKE_TRANSFORMER)
        configs[name] = CONFIGS[name] + (SMOKE_MODEL if a.smoke and name == "baseline2022" else []) + tiny + extra
    r = {"machine": machine(),
         "settings": {"command": shlex.join(["python", "bench/run_suite.py",
                                              *(argv if argv is not None else sys.argv[1:])]),
                      "smoke": a.smoke, "extra": a.extra, "budget_minutes": a.budget_minutes, "corpus": corpus,
                      "corpus_hours": hours, "seed": a.seed, "throughput_steps": a.throughput_steps,
                      "throughput_warmup": a.throughput_warmup, "configs": configs},
         "corpus": info.get("splits", {})}
    # One heavy process at a time: the figures must not compete with each other for the CPU.
    r["cer"] = {name: train_and_submit(name, argv, corpus, a) for name, argv in configs.items()}
    r["throughput"] = {
        "kit": throughput("kit", configs["kit"], corpus, a),
        "kit_at_baseline_size": throughput("kit_at_baseline_size",
                                           configs["kit"] + (smoke or KIT_AT_BASELINE_SIZE) + extra, corpus, a),
        "baseline2022": throughput("baseline2022", configs["baseline2022"], corpus, a),
    }
    r["inference"] = inference(r["cer"], corpus, a)
    r["decoders"] = test_cer_by_decoder(r["cer"], corpus)
    r["parameters"] = {name: parameters(run["checkpoint"]) for name, run in r["cer"].items()}
    r["features"] = features(corpus, a)
    summarize(r)
    r["settings"]["suite_seconds"] = round(time.time() - started, 1)

    with open(os.path.join(a.out, "suite.json"), "w", encoding="utf-8") as f:
        json.dump(r, f, indent=1, ensure_ascii=False)
    plot(r, os.path.join(a.out, "cer_vs_time.png"))
    text = table(r)
    print("\n" + text + "\n", flush=True)
    log(f"wrote {os.path.join(a.out, 'suite.json')} and cer_vs_time.png in {r['settings']['suite_seconds']:.0f} s")
    if not a.no_readme:
        update_readme(a.readme, r, text)
        log(f"updated the table in {a.readme}")
    return r


if __name__ == "__main__":
    main()
