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


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is needed to generate the corpus")
def test_overfit_bench_runs_every_model_and_decoder(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "overfit.py"), "--smoke",
                           "--out", str(out), "--cache", str(tmp_path / "cache")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = json.loads((out / "overfit.json").read_text(encoding="utf-8"))
    from modules.models import MODELS
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
