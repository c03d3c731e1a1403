"""The benchmark suite runs end to end (tiny corpus, models and budgets) and reports every figure.

The figures of a smoke run are not the benchmark (bench/README.md holds those);
this only keeps the suite from rotting: each step must run and give a sane number.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def finite_positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is needed to generate the corpus")
@pytest.mark.skipif(not os.path.isfile(os.path.join(ROOT, "tools", "make_corpus.py")),
                    reason="tools/make_corpus.py (the corpus generator) is not in this checkout")
def test_suite_smoke_run_reports_every_figure(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "run_suite.py"), "--smoke",
                           "--out", str(out), "--cache", str(tmp_path / "cache")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = json.loads((out / "suite.json").read_text(encoding="utf-8"))
    assert (out / "cer_vs_time.png").stat().st_size > 1000

    assert r["settings"]["smoke"] is True and r["machine"]["cores"] >= 1 and r["machine"]["torch"]
    assert list(r["cer"]) == ["kit", "baseline2022", "ds2_char", "conformer", "attention"]
    for name in r["cer"]:
        run = r["cer"][name]
        assert 0 <= run["test_cer"] < 50 and 0 <= run["best_val_cer"] < 50
        assert run["epochs"] == len(run["curve"]) >= 1
        times = [p["seconds"] for p in run["curve"]]
        assert times == sorted(times) and finite_positive(times[0])
        assert finite_positive(run["train_peak_rss_mib"]) and run["train_peak_rss_mib"] > 50
    assert "--preset" in r["cer"]["baseline2022"]["argv"] and "--preset" not in r["cer"]["kit"]["argv"]

    for name in ("kit", "kit_at_baseline_size", "baseline2022"):
        t = r["throughput"][name]
        assert finite_positive(t["audio_seconds_per_second"]) and t["peak_rss_mib"] > 50
        assert t["steps"] == r["settings"]["throughput_steps"] and finite_positive(t["audio_seconds"])

    inf = r["inference"]
    for name in ("kit_batched", "kit_one_by_one", "baseline2022_one_by_one"):
        assert finite_positive(inf[name]["rtf"]) and inf[name]["files"] >= 1
        assert inf[name]["projected_10k_seconds"] == \
            inf[name]["seconds"] / inf[name]["files"] * 10_000
    assert inf["kit_one_by_one"]["batch_seconds"] == inf["baseline2022_one_by_one"]["batch_seconds"] == 0
    assert inf["kit_batched"]["batch_seconds"] > 0

    f = r["features"]
    assert finite_positive(f["kit_batched_seconds_per_hour"]) and finite_positive(f["librosa_per_file_seconds_per_hour"])

    assert all(math.isfinite(v) and v >= 0 for v in r["ratios"].values()), r["ratios"]
    assert r["ratios"]["test_cer_kit_over_baseline"] == \
        r["cer"]["kit"]["test_cer"] / r["cer"]["baseline2022"]["test_cer"]
    assert set(r["targets"]) and all(isinstance(v, bool) for v in r["targets"].values())
    assert "| test CER after the budget |" in done.stdout  # the table is printed

    # Issue 6: every configuration decoded by every decoder that applies to it, on the same checkpoint.
    dec = r["decoders"]
    assert set(dec["kit"]) == {"greedy", "beam", "beam+LM"} and dec["kit"]["beam+LM"]["as_trained"]
    assert set(dec["attention"]) == {"greedy", "beam", "attention", "joint"} and dec["attention"]["attention"]["as_trained"]
    assert set(dec["baseline2022"]) == {"greedy"} and dec["baseline2022"]["greedy"]["as_trained"]
    for by in dec.values():
        assert sum(m["as_trained"] for m in by.values()) == 1
        assert all(m["test_cer"] >= 0 and finite_positive(m["seconds_per_utterance"]) for m in by.values())
    # the decoder the checkpoint was trained with is what the submit ran: the same CER
    assert math.isclose(dec["kit"]["beam+LM"]["test_cer"], r["cer"]["kit"]["test_cer"], abs_tol=1e-6)
    best = r["best_configuration"]
    assert best["test_cer"] == min(m["test_cer"] for n, by in dec.items() if n != "baseline2022" for m in by.values())
    assert r["ratios"]["best_over_kit_greedy"] == best["test_cer"] / dec["kit"]["greedy"]["test_cer"]
    # issue 6's reference: the DeepSpeech2 default it started from, trained in the same run
    assert best["reference"] == "ds2_char" and set(dec["ds2_char"]) == {"greedy", "beam", "beam+LM"}
    assert r["ratios"]["best_over_reference_greedy"] == best["test_cer"] / dec["ds2_char"]["greedy"]["test_cer"]
    assert "--unit" in r["cer"]["ds2_char"]["argv"] and "--unit" not in r["cer"]["kit"]["argv"]
    assert "| configuration | decoder | test CER |" in done.stdout

def test_attention_decode_speed_bench_runs_and_its_searches_agree(tmp_path):
    out = tmp_path / "attention.json"
    tiny = '{"d_model": 32, "heads": 2, "layers": 1, "conv_channels": 4, "decoder_layers": 1}'
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "attention_decode_speed.py"),
                           "--utterances", "4", "--model_options", tiny, "--vocab", "20",
                           "--max_target_length", "12", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = json.loads(out.read_text(encoding="utf-8"))
    assert r["utterances"] == 4 and r["identical_hypotheses"] == 4
    assert 0 < r["hypothesis_units"] <= 4 * 12
    for name in ("per_utterance_loop", "one_utterance_per_call", "batched"):
        assert finite_positive(r[name]["ms_per_utterance"])
    assert r["speedup"] == r["per_utterance_loop"]["seconds"] / r["batched"]["seconds"]


# -- bench/gpu_check.sh (issues 12, 20): its CPU smoke mode, and the parts only a GPU run reaches ----

sys.path.insert(0, os.path.join(ROOT, "bench"))
import gpu_check  # noqa: E402


def test_gpu_check_smoke_mode_runs_every_step(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu_check.sh"), "--smoke", "--out", str(out),
                           "--work", str(tmp_path / "work")], cwd=ROOT, env=dict(os.environ, PYTHON=sys.executable),
                          capture_output=True, text=True, timeout=480)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = json.loads(out.read_text(encoding="utf-8"))
    assert r["settings"]["smoke"] is True and r["machine"]["torch"] and r["seconds"] < 8 * 60
    assert r["machine"]["shm"]["total_mib"] > 0 and r["corpus"]["train"]["utterances"] >= 16
    assert list(r["throughput"]) == ["deepspeech2", "conformer_medium"]
    for model, by in r["throughput"].items():
        assert list(by) == ["off", "bf16", "auto"]
        assert by["auto"] == {"same_as": "off", "amp_dtype": "float32"}  # --amp auto on a CPU: full precision
        for amp, dtype in (("off", "float32"), ("bf16", "bfloat16")):  # bf16: CPU autocast really engaged
            t = by[amp]
            assert finite_positive(t["audio_seconds_per_second"]) and t["peak_rss_mib"] > 50
            assert t["amp_dtype"] == dtype and t["device"] == "cpu" and t["compiled"] is False
            assert t["steps"] == r["settings"]["steps"] and f"--amp {amp}" in t["command"]
            assert t["amp_auto"] == "float32" and finite_positive(t["first_step_seconds"])
            # the step's time split: data wait + compute + host is the whole of it
            split = t["split"]
            assert set(split) == {"data_wait", "compute", "host"} and all(0 <= v <= 1 for v in split.values())
            assert math.isclose(sum(split.values()), 1.0)
            assert math.isclose(sum(t["phase_shares"].values()), 1.0) and t["phase_shares"]["backward"] > 0
            assert t["full_length"]["utterance_seconds"] == 30 and t["full_length"]["rows"] >= 1
        if model == "deepspeech2":  # its GRU's dtype is seen by the hook (float32 without autocast)
            assert by["off"]["recurrent_dtypes"] == {"rnn": "float32"}
            assert set(by["bf16"]["recurrent_dtypes"].values()) <= {"float32", "bfloat16"}
    p = r["precision"]["deepspeech2"]
    assert len(p["steps"]) == 3 and p["compared_dtype"] == "bfloat16"
    for step in p["steps"]:  # same batches, seeds and weights: bf16 is close to fp32, not equal
        assert 0 < step["loss_relative_diff"] < 0.05 and 0 < step["grad_relative_diff"] < 0.5
        assert step["grad_cosine"] > 0.9
    e = r["evaluate"]
    assert e["validation"]["split_utterances"] >= 1 and finite_positive(e["validation"]["seconds"])
    inf = e["inference"]
    assert inf["decoder"] == "beam" and inf["lm"] is True and inf["files"] == 6
    assert inf["projected_seconds"] == inf["seconds_per_utterance"] * 10_000
    assert inf["within_limit"] == (inf["projected_seconds"] < 3600)
    ddp = r["ddp"]
    assert "torch.distributed.run" in ddp["command"] and "--ddp" in ddp["command"]
    assert ddp["ddp_backend"] == "gloo" and ddp["world_size"] == 1 and finite_positive(ddp["audio_seconds_per_second"])
    assert finite_positive(ddp["over_single_process"])
    slow = r["slow_rank0"]  # 2 gloo ranks, rank 0 asleep past the timeout: exit 0 with 'best', or "not supported"
    assert slow["backend"] == "gloo (CPU)" and slow["rank0_delay_seconds"] > slow["pg_timeout_seconds"]
    assert (slow["supported"] is False and "not supported by this version" in slow["note"]) or \
        (slow["exit_status"] == 0 and slow["best_checkpoint_saved"] is True), slow
    c = r["compiled"]["deepspeech2"]
    assert c["compiled"] is True and finite_positive(c["first_step_seconds"]) and c["unique_graphs"] >= 1
    assert c["recompiles"] >= 0 and c["graph_breaks"] >= 0 and finite_positive(c["audio_seconds_per_second"])
    assert "nsml run" in r["run"]["command"] and "nsml submit" in r["run"]["command"]
    assert math.isfinite(r["run"]["cer"]) and r["run"]["cer"] >= 0
    assert "| deepspeech2 | bf16 |" in done.stdout and "0 step(s) failed" in done.stdout


def test_synthetic_corpus_has_real_size_utterances_and_enough_batches(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import measure
    from modules.transcribe.corpus import read_training_set
    summary = measure.synthetic_corpus(str(tmp_path), 600, test_utterances=5, unique_waves=16)
    utts = read_training_set(str(tmp_path))
    assert len(utts) == summary["train"]["utterances"] and 600 <= summary["train"]["audio_seconds"] < 630
    assert all(2 - 1e-3 <= u.duration <= 30 + 1e-3 for u in utts)
    assert max(u.duration for u in utts) > 20 and min(u.duration for u in utts) < 8  # the whole range
    assert len({u.text for u in utts}) == len(utts)  # random transcripts, ~4 syllables a second
    assert all(len(u.text.replace(" ", "")) == max(1, round(u.duration * 4)) for u in utts)
    assert len(os.listdir(tmp_path / "test" / "test_data")) == 5
    assert len(os.listdir(tmp_path / "_waves")) == 16  # the rest are hard links to these


def test_gpu_check_slow_rank_step_sets_the_timeout_and_reads_the_outcome(tmp_path, monkeypatch):
    """The slowed 2-rank run gets a short process-group timeout through main.py's option when the
    version has one (in its unit), else through the bench hook; failing without an option means the
    version does not bound its end of run ("not supported"), failing with one is a failure."""
    calls = []

    def fake_measure(exit_status, best):
        def measure(*a, **k):
            calls.append((a, k))
            if best:
                os.makedirs(tmp_path / "slow_rank0_home" / "s" / "checkpoints" / "best", exist_ok=True)
            return {"command": "c", "seconds": 1.0, "error": f"exit status {exit_status}", "output_tail": "t"}
        return measure

    def run(option, exit_status, best):
        calls.clear()
        shutil.rmtree(tmp_path / "slow_rank0_home", ignore_errors=True)
        monkeypatch.setattr(gpu_check, "timeout_option", lambda python, env: option)
        monkeypatch.setattr(gpu_check, "measure", fake_measure(exit_status, best))
        entry = gpu_check.slow_rank0_run(sys.executable, ["--model", "x"], {}, gpu_check.Budget(60), 30, {},
                                         str(tmp_path), 1)
        (_, what, args, _, _, _, env, extra), kwargs = calls[0]
        assert what == "slow-rank0" and kwargs["torchrun"] == 2 and args[:3] == ["--model", "x", "--epochs"]
        assert env["CUDA_VISIBLE_DEVICES"] == ""  # one GPU: two CPU ranks on gloo
        return entry, args, extra

    entry, args, extra = run(None, 1, False)  # today's kit: the bench hook sets the timeout; rank 1 times out
    assert extra == ["--delay", str(gpu_check.SLOW_RANK_DELAY), "--pg-timeout", str(gpu_check.PG_TIMEOUT_SECONDS)]
    assert entry["supported"] is False and "not supported by this version" in entry["note"] and "error" not in entry
    entry, args, extra = run(("--pg_timeout_minutes", True), 0, True)
    assert args[-2:] == ["--pg_timeout_minutes", f"{gpu_check.PG_TIMEOUT_SECONDS / 60:g}"]
    assert "--pg-timeout" not in extra
    assert entry["supported"] is True and entry["exit_status"] == 0 and entry["best_checkpoint_saved"] is True
    assert "error" not in entry
    entry, _, _ = run(("--pg_timeout", False), 1, True)
    assert entry["error"] == "exit status 1, best checkpoint saved: True" and entry["exit_status"] == 1
    entry, _, _ = run(None, 0, True)  # a kit that bounds its end of run without an option passes too
    assert entry["supported"] is True and "error" not in entry and "note" not in entry


def test_host_overhead_bench_splits_the_step(tmp_path):
    out = tmp_path / "host_overhead.json"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "host_overhead.py"), "--smoke",
                           "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = json.loads(out.read_text(encoding="utf-8"))
    shares = r["phase_shares"]
    assert set(shares) == {"data_wait", "features", "forward", "loss", "backward", "optimizer"}
    assert all(0 <= v < 1 for v in shares.values()) and shares["forward"] > 0 and shares["backward"] > 0
    assert math.isclose(r["host_share"], shares["data_wait"] + shares["features"])
    assert 0 <= r["unaccounted_share"] < 0.2 and math.isclose(r["host_share"] + r["model_share"]
                                                              + r["unaccounted_share"], 1.0)
    assert r["steps"] == 3 and finite_positive(r["audio_seconds_per_second"]) and r["machine"]["cores"] >= 1
    assert "host overhead (data wait + features)" in done.stdout


def test_end_of_run_bench_projects_tuning_and_decode(tmp_path):
    out = tmp_path / "end_of_run.json"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "end_of_run.py"), "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = json.loads(out.read_text(encoding="utf-8"))
    assert r["sample_utterances"] == 4 and r["grid_points"] >= 25 and finite_positive(r["tuning_seconds"])
    p = r["projected"]
    assert list(p) == ["1000", "10000", "100000"]
    # tuning is capped at FusionGrid.max_utterances; the final decode grows with the validation set
    assert p["1000"]["tuning_seconds"] == p["100000"]["tuning_seconds"] == \
        r["tuning_seconds"] / 4 * r["tuning_max_utterances"]
    assert math.isclose(p["100000"]["decode_seconds"], 100 * p["1000"]["decode_seconds"])
    assert all(math.isclose(t["total_seconds"], t["tuning_seconds"] + t["decode_seconds"]) for t in p.values())
    assert "| 100,000 |" in done.stdout


def test_gpu_check_records_failures_and_timeouts_and_goes_on(tmp_path):
    code, out, err, _ = gpu_check.run_step([sys.executable, "-c", "import sys; print('x'); sys.exit('boom')"], 30)
    assert code == 1 and out.strip() == "x" and "boom" in err
    entry = gpu_check.outcome(["cmd"], code, out, err, 0.5, 30)
    assert entry["error"] == "exit status 1" and "boom" in entry["output_tail"]
    # A step past its timeout is killed with its whole process group (torchrun's workers, run.sh's children).
    marker = tmp_path / "child_survived"
    code, _, _, seconds = gpu_check.run_step(
        ["bash", "-c", f"(sleep 3; touch {marker}) & sleep 30"], 1)
    assert code is None and seconds < 10
    assert gpu_check.outcome(["cmd"], None, "", "", seconds, 1)["error"] == "timed out after 1 s"
    time.sleep(3.5)
    assert not marker.exists()
    # No time left: the step is recorded as skipped, not started.
    budget = gpu_check.Budget(gpu_check.MIN_STEP_SECONDS - 1)
    settings = {"steps": 1, "warmup": 0, "budget_minutes": 8}
    skipped = gpu_check.measure_throughput(sys.executable, ["--model", "deepspeech2"], settings, budget, 60, None)
    assert "budget ran out" in skipped["skipped"]


def test_gpu_check_runs_run_sh_with_a_short_budget_and_reads_its_cer(tmp_path):
    """The GPU-only branch: ./run.sh is called with the knobs it reads, and its last line is the CER."""
    fake = tmp_path / "run.sh"
    fake.write_text('EPOCHS=${EPOCHS:-60}\necho "training $EPOCHS epochs"\necho "CER: 0.${EPOCHS}5"\n')
    settings = {"budget_minutes": 8}
    r = gpu_check.training_and_submit(sys.executable, settings, gpu_check.Budget(60), 30, dict(os.environ),
                                      str(tmp_path), smoke=False, run_sh=str(fake))
    assert r["cer"] == 0.205 and r["env"]["EPOCHS"] == "20"  # the CER line says run.sh read EPOCHS=20
    fake.write_text('echo "Traceback: no GPU"\nexit 3\n')
    r = gpu_check.training_and_submit(sys.executable, settings, gpu_check.Budget(60), 30, dict(os.environ),
                                      str(tmp_path), smoke=False, run_sh=str(fake))
    assert r["error"] == "exit status 3" and "no GPU" in r["output_tail"]


def test_learning_curve_comparisons_read_the_curves_right():
    """bench/learning_curves.py: equal wall-clock = the end of each budget; equal updates = both curves
    interpolated at the smaller final step count; 'still falling' = the last point below the one at
    75% of the budget; the attention row compares decoders of the same checkpoint."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import learning_curves as lc

    def pts(rows):
        return [dict(zip(("seconds", "updates", "test_cer_greedy"), r)) for r in rows]
    ds2 = pts([(60, 100, 0.8), (120, 200, 0.4), (180, 300, 0.2)])
    conf = pts([(60, 50, 0.9), (120, 100, 0.5), (170, 150, 0.3), (180, 160, 0.25)])
    ds2[-1]["test_cer_beam+LM"], conf[-1]["test_cer_beam+LM"] = 0.1, 0.12
    att = pts([(180, 90, 0.5)])
    att[-1].update({"test_cer_beam": 0.4, "test_cer_joint": 0.35, "test_cer_attention": 0.45})
    c = lc.compare({"deepspeech2": {"points": ds2}, "conformer": {"points": conf}, "attention": {"points": att}})
    assert c["conformer_over_ds2_at_end_greedy"] == 1.25 and c["conformer_over_ds2_at_end_beam_lm"] == 1.2
    assert c["equal_updates"] == {"updates": 160, "deepspeech2": pytest.approx(0.56), "conformer": 0.25}
    assert c["conformer_still_falling"] is True
    assert c["attention_joint_vs_ctc_beam"]["joint"] < c["attention_joint_vs_ctc_beam"]["beam"]
    conf[-1]["test_cer_greedy"] = 0.31  # flat over the last quarter
    assert lc.compare({"deepspeech2": {"points": ds2}, "conformer": {"points": conf}})["conformer_still_falling"] is False


def test_ablation_table_compares_rows_with_a_paired_bootstrap(tmp_path):
    """bench/learning_curves.py --table: a row's CER difference to its model's baseline row, with the
    standard error of the difference over the same resampled utterances (smaller than either CER's)."""
    import numpy as np
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import learning_curves as lc
    rng = np.random.default_rng(0)
    chars = rng.integers(10, 40, size=200)
    hard = rng.random(200) < 0.2  # a fifth of the utterances carry most errors, in both rows
    base = np.where(hard, chars // 2, rng.integers(0, 2, size=200))
    better = np.maximum(base - (rng.random(200) < 0.3), 0)  # one edit fewer on ~30% of them
    assert lc.bootstrap_se(list(zip(base, chars)), baseline=list(zip(base, chars))) == 0.0
    paired = lc.bootstrap_se(list(zip(better, chars)), baseline=list(zip(base, chars)))
    assert 0 < paired < 0.5 * lc.bootstrap_se(list(zip(base, chars)))

    def row(tag, edits):
        counts = [[int(e), int(c)] for e, c in zip(edits, chars)]
        submitted = {"test": {"test_cer": round(float(edits.sum() / chars.sum()), 4), "se": 0.01,
                              "seconds_per_utterance": 0.01, "files": 200, "counts": counts},
                     "final_weights": "plain"}
        run = {"epochs": 3, "points": [{"updates": 30}], "train_audio_per_second": 50.0, "train_peak_rss_mib": 900,
               "best_val_cer": 0.2, "submitted": submitted}
        (tmp_path / f"learning_curves_{tag}.json").write_text(json.dumps({"tag": tag, "extra": "", "runs":
                                                                          {"deepspeech2": run}}))
    row("base", base)
    row("better", better)
    text = lc.table(str(tmp_path), {"deepspeech2": "base"})
    [line] = [x for x in text.splitlines() if x.startswith("| better |")]
    delta = round(float(better.sum() / chars.sum()), 4) - round(float(base.sum() / chars.sum()), 4)
    assert f"{delta:+.4f} ± {paired:.4f}" in line
    assert (tmp_path / "ablation.md").read_text() == text


def has_revision(rev):
    return subprocess.run(["git", "-C", ROOT, "cat-file", "-e", f"{rev}:modules/lm.py"],
                          capture_output=True).returncode == 0


@pytest.mark.skipif(not os.path.isfile(os.path.join(ROOT, "tools", "korean_text.py")),
                    reason="tools/korean_text.py (the sentence grammar) is not in this checkout")
@pytest.mark.skipif(not has_revision("31f9668"), reason="the old LM's revision is not in this clone (shallow?)")
def test_lm_scale_count_runs_and_reports_old_and_new(tmp_path):
    results = tmp_path / "lm_scale.json"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "lm_scale.py"), "count", "--kinds", "grammar",
                           "--sizes", "300", "--old_up_to", "300", "--order", "4", "--results", str(results)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LM_SCALE_SCRATCH": str(tmp_path / "scratch")})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads(results.read_text())["count"]["rows"]
    assert sorted(r["impl"] for r in rows) == ["new", "old"]
    for r in rows:
        assert r["n"] == 300 and all(finite_positive(r[k]) for k in ("train_s", "peak_rss_mib", "ngrams"))
        assert r["saved_mb"] >= 0 and r["load_s"] >= 0
    new, old = sorted(rows, key=lambda r: r["impl"])
    assert 0.8 < new["ngrams"] / old["ngrams"] < 1.2  # the old model also counted BOS-padded n-grams


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is needed to generate the corpus")
def test_overfit_bench_runs_every_model_and_decoder(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "overfit.py"), "--smoke",
                           "--out", str(out), "--cache", str(tmp_path / "cache")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = json.loads((out / "overfit.json").read_text(encoding="utf-8"))
    from modules.transcribe.models import MODELS
    assert list(r["models"]) == list(MODELS)
    assert r["settings"]["smoke"] is True and isinstance(r["machine"]["avx512"], bool) and r["machine"]["cpu"]
    for name, m in r["models"].items():
        decoders = {"greedy", "attention", "joint"} if name == "attention" else {"greedy"}
        assert set(m["reached"]) == set(m["final_cer"]) == decoders
        assert m["utterances"] == r["settings"]["utterances"] and m["epochs"] == len(m["curve"]) >= 1
        assert m["updates"] == m["curve"][-1]["updates"] >= m["epochs"]
        assert all(0 <= c < 50 for c in m["final_cer"].values())
        for hit in m["reached"].values():  # None, or when the target was reached (smoke runs rarely do)
            assert hit is None or 1 <= hit["updates"] <= m["updates"]
        assert len(m["load_before"]) == 3
    assert "| model | decoder | updates |" in done.stdout


def test_kill_during_save_bench_kills_and_loses_nothing(tmp_path):
    """bench/kill_during_save.py --smoke: 3 SIGKILLs of a process saving checkpoints through nsml_local;
    every checkpoint it reported saved is listed and loads with its hashes verified."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "kill_during_save.py"), "--smoke",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = json.loads((out / "kill_during_save.json").read_text(encoding="utf-8"))
    assert r["kills"] == len(r["rounds"]) == 3 and r["seconds"] < 240
    assert r["lost"] == [] and r["unloadable"] == []
    assert r["listed"] == r["loadable"] >= 1 and all(x["reported"] <= x["listed"] for x in r["rounds"])
    assert r["session_dir"] is None  # removed without --keep
