"""Every bench script runs in its smoke mode (`--smoke`: tiny data and models, seconds) and writes sane figures.

The suite, the overfit check, the attention decoder's speed, the LM's old-against-new count and the
GPU check have their smoke tests in tests/test_bench_smoke.py, the accuracy extras' and the GPU
path's scripts in tests/test_accuracy_extras.py and tests/test_gpu_path_cpu.py; this file holds the
others', and checks that no bench script is left without one. Smoke figures are not benchmarks.
"""
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
# bench/*.py that are not scripts: the shared helpers, imported by the scripts.
HELPERS = {"common.py", "measure.py"}


def run_script(name, *args, timeout=300):
    done = subprocess.run([sys.executable, os.path.join(BENCH, name), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def finite_positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_every_bench_script_has_a_smoke_test():
    tests = "".join(open(p, encoding="utf-8").read() for p in glob.glob(os.path.join(ROOT, "tests", "test_*.py")))
    scripts = sorted(os.path.basename(p) for p in glob.glob(os.path.join(BENCH, "*.py")))
    # named as "X.py", "X.sh" (a script's shell wrapper) or load_bench("X") (imported and run in process)
    untested = [s for s in scripts if s not in HELPERS and not any(
        name in tests for name in (f'"{s}"', f'"{s[:-3]}.sh"', f'load_bench("{s[:-3]}")'))]
    assert not untested, f"bench scripts without a smoke test: {untested}"
    missing_flag = [s for s in scripts if s not in HELPERS and "--smoke" not in open(os.path.join(BENCH, s)).read()]
    assert not missing_flag, f"bench scripts without --smoke: {missing_flag}"


def test_decode_speed_smoke_decodes_a_current_checkpoint(tmp_path):
    """It used to read `model.pt['recognizer']` (the layout before format 2): KeyError on every checkpoint."""
    out = tmp_path / "decode_speed.txt"
    run_script("decode_speed.py", "--smoke", "--out", str(out))
    header, *rows = out.read_text().splitlines()
    assert "deepspeech2" in header and "validation utterances" in header
    names = [r[:34].strip() for r in rows]
    assert names[:4] == ["greedy", "beam 4, no LM", "beam 8, no LM", "beam 16, no LM"]
    assert any("LM weight" in n for n in names)  # the tiny checkpoint carries an LM
    for row in rows:
        assert 0 <= float(re.search(r"CER ([0-9.]+)", row).group(1)) < 50
        assert finite_positive(float(re.search(r"([0-9.]+) ms/utt", row).group(1)))


def test_classify_ensemble_smoke_scores_each_member_and_the_ensemble(tmp_path):
    out = tmp_path / "ensemble.json"
    run_script("classify_ensemble.py", "--smoke", "--out", str(out), "--name", "smoke")
    r = json.loads(out.read_text())["smoke"]
    assert r["kind"] == "single" and r["test_clips"] == 6 and len(r["members"]) == 2
    assert len(r["ensemble_of_first_k"]) == 2 and len(r["ensemble_vs_member_clips"]) == 2
    assert all(0 <= m["accuracy"] <= 1 for m in r["members"] + [r["ensemble"], r["mean_member"]])
    assert finite_positive(r["seconds_per_clip_per_model"])


def test_bench_features_smoke(tmp_path):
    out = tmp_path / "features.json"
    run_script("bench_features.py", "--smoke", "--out", str(out))
    r = json.loads(out.read_text())
    assert list(r["corpora"]) == ["sample", "generated_0.01h"] and r["peak_rss_mib"] > 50
    for c in r["corpora"].values():
        assert c["utterances"] >= 1 and finite_positive(c["kit_torch_batched_s_per_hour"])
        assert finite_positive(c["librosa_over_kit_ratio"]) and 0 <= c["padding_fraction"] < 1


def test_model_speed_smoke(tmp_path):
    out = tmp_path / "model_speed.txt"
    run_script("model_speed.py", "--smoke", "--out", str(out))
    settings, *rows = out.read_text().splitlines()
    assert settings.startswith("batch 4.0 s of 1.0 s utterances") and len(rows) == 3
    assert rows[0].startswith("deepspeech2") and rows[0].endswith("x1.00 vs deepspeech2 default")
    assert all(finite_positive(float(re.search(r"([0-9.]+) audio-s/s", r).group(1))) for r in rows)


def test_scale_smoke_times_the_path_to_the_first_step(tmp_path):
    out = tmp_path / "scale.json"
    run_script("scale.py", "--smoke", "--out", str(out), "--cache", str(tmp_path / "cache"))
    r = json.loads(out.read_text())
    [run] = r["runs"]
    assert run["rows"] == 200 and run["train_utterances"] + run["valid_utterances"] > 100
    assert finite_positive(run["first_step_seconds"]) and run["first_step_begins_seconds"] <= run["first_step_seconds"]
    assert run["peak_rss_during_training_mib"] > 50


def test_train_memory_smoke_runs_each_heap_limit(tmp_path):
    out = tmp_path / "memory.json"
    run_script("train_memory.py", "--smoke", "--out", str(out), "--work", str(tmp_path / "work"))
    r = json.loads(out.read_text())
    assert [x["heap_limit_mib"] for x in r["runs"]] == [0, 1536]
    assert all(x["peak_rss_mib"] > 50 and finite_positive(x["audio_per_second"]) and x["epochs"] >= 1
               for x in r["runs"])


def test_hard_corpus_smoke_degrades_a_tiny_sample_corpus(tmp_path):
    out = tmp_path / "hard"
    run_script("hard_corpus.py", "--smoke", str(out))
    record = json.loads((out / "hard_corpus.json").read_text())["files"]
    assert len(record) == 6 and all(-1 <= r["snr_db"] <= 16 for r in record.values())
    assert os.path.islink(out / "train") and len(os.listdir(out / "test" / "test_data")) == 6


def test_specaugment_speed_smoke_times_both_implementations(tmp_path):
    out = tmp_path / "specaugment.json"
    run_script("specaugment_speed.py", "--smoke", "--device", "cpu", "--rows", "8", "--seconds", "4", "--out", str(out))
    r = json.loads(out.read_text())
    assert r["repeats"] == 5 and r["quick"] is True and r["batch"]["rows"] == 8
    assert finite_positive(r["row_loop_ms"]) and finite_positive(r["vectorised_ms"]) and finite_positive(r["speedup"])


def test_lm_scale_count_smoke_needs_no_old_revision(tmp_path):
    results = tmp_path / "lm.json"
    run_script("lm_scale.py", "count", "--smoke", "--results", str(results))
    [row] = json.loads(results.read_text())["count"]["rows"]
    assert row["impl"] == "new" and row["n"] == 300 and row["order"] == 4 and row["ngrams"] > 300


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is needed to generate the corpus")
def test_learning_curves_smoke_reads_every_checkpoint(tmp_path):
    """The attention model alone (each model trains and submits in processes of their own, minutes on a
    loaded machine): its checkpoints are the ones every decoder applies to."""
    out = tmp_path / "out"
    # an ablation row: tagged, the submitted checkpoint scored on the test set and on a second corpus
    run_script("learning_curves.py", "--smoke", "--models", "attention", "--out", str(out), "--tag", "row",
               "--cache", str(tmp_path / "cache"), "--hard-corpus", str(tmp_path / "cache" / "smoke_seed1"),
               timeout=900)
    r = json.loads((out / "learning_curves_row.json").read_text())
    [(name, run)] = r["runs"].items()
    assert name == "attention" and run["points"] and all(0 <= p["test_cer_greedy"] < 50 for p in run["points"])
    assert [p["epoch"] for p in run["points"]] == sorted(p["epoch"] for p in run["points"])
    assert {"test_cer_beam", "test_cer_attention", "test_cer_joint"} <= set(run["points"][-1])
    assert (out / "learning_curves_row.png").stat().st_size > 1000
    submitted = run["submitted"]
    # the same corpus twice: the same transcripts, so the same CER and standard error
    assert submitted["test"]["files"] == 12 and submitted["test"]["test_cer"] == submitted["hard"]["test_cer"]
    assert 0 <= submitted["test"]["se"] < 0.5 and submitted["final_weights"] == "plain"
    table = run_script("learning_curves.py", "--table", str(out))
    assert (out / "ablation.md").read_text() == table
    [row] = [line for line in table.splitlines() if line.startswith("| row |")]
    assert f"{submitted['test']['test_cer']:.4f} ± {submitted['test']['se']:.4f}" in row
