"""Learning curves: test CER against wall-clock and against updates, one model after another.

    python bench/learning_curves.py                          # 2.2 h corpus, 45 min per model
    python bench/learning_curves.py --budget-minutes 60 --models deepspeech2,conformer
    python bench/learning_curves.py --smoke --out /tmp/lc    # CI: tiny corpus and models (~1 min)
    # an ablation row: one model, some options, its own tag, scored on the plain and the hard test set
    python bench/learning_curves.py --models deepspeech2 --budget-minutes 20 --tag ema \
        --extra "--ema_decay 0.995 --average_best 3" --hard-corpus bench/cache/ko_2.2h_seed1_hard
    # the rows above as one markdown table, each compared with its model's baseline row
    python bench/learning_curves.py --table bench/results/ablation --baselines deepspeech2=ds2_base

Each model trains through main.py (the local nsml, a direct run) for the same wall-clock budget,
saving a checkpoint every --save-every epochs; then every checkpoint decodes the held-out test
set greedily (the acoustic model alone), and the last one with every decoder that applies to it
(greedy, beam, beam + LM; for the attention model its own beam search and joint CTC/attention).
Run it on a quiet machine, one model after the other: the x axis is time.

The checkpoint a submit would use ('best': the weights and fusion weights the run chose) is scored
too, with its own decoder, on the test set and on --hard-corpus's (bench/hard_corpus.py), each CER
with its bootstrap standard error over utterances (1,000 resamples): the ablation table's figures.

Writes OUT/learning_curves[_TAG].json and .png, and prints the comparisons the issue asks for:
at the end of the budget (equal wall-clock) and at equal numbers of updates.
"""
import argparse
import glob
import json
import os
import sys
import time
from dataclasses import replace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import measure  # noqa: E402
import run_suite  # noqa: E402

MODELS = {"deepspeech2": ["--model", "deepspeech2"],
          "conformer": ["--model", "conformer"],
          "attention": ["--model", "attention", "--decoder", "joint"]}
FINAL_DECODERS = {"greedy": {"decoder": "greedy"}, "beam": {"decoder": "beam", "lm_weight": 0.0},
                  "beam+LM": {"decoder": "beam"}, "attention": {"decoder": "attention"},
                  "joint": {"decoder": "joint"}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_run_arguments(p, budget_minutes=45.0, budget_help="training wall-clock budget per model", hours=2.2,
                             work="work_curves")
    p.add_argument("--models", type=str, default=",".join(MODELS), help="from: " + ", ".join(MODELS))
    p.add_argument("--save-every", type=int, default=2, help="epochs between the checkpoints the curve is read from")
    p.add_argument("--smoke", action="store_true", help="CI: tiny corpus, 0.15 min budgets, tiny models")
    p.add_argument("--tag", type=str, default="", help="name of this configuration (an ablation row): results go "
                                                      "to learning_curves_TAG.json and sessions to WORK/TAG")
    p.add_argument("--table", type=str, default=None, metavar="FOLDER",
                   help="only print (and write to FOLDER/ablation.md) the table of FOLDER/learning_curves_*.json")
    p.add_argument("--baselines", type=str, default="", metavar="MODEL=TAG,...",
                   help="--table: compare each model's rows with its row TAG (paired bootstrap of the difference)")
    p.add_argument("--rescore", action="store_true",
                   help="--table: first score each row's submitted checkpoint again (sessions under --work/TAG)")
    p.add_argument("--hard-corpus", type=str, default=None,
                   help="also score the submitted checkpoint on this corpus's test set (bench/hard_corpus.py)")
    a = p.parse_args(argv)
    if a.smoke:
        a.budget_minutes, a.save_every = min(a.budget_minutes, 0.15), 1
    a = common.finish_run_arguments(a, work="work_curves")
    if a.tag:
        a.work = os.path.join(a.work, a.tag)
    return a


def bootstrap_se(counts: list, resamples: int = 1000, seed: int = 0, baseline: list = None) -> float:
    """Standard error of the corpus CER (sum of edits / sum of reference characters) when the test
    utterances are resampled with replacement: the spread another draw of test sentences would give.
    With `baseline` (the same utterances' counts under another configuration): the standard error of
    the difference CER - CER(baseline), both computed on each resample (paired: the utterances that
    are hard for one are hard for the other, so a difference is far better measured than either CER)."""
    import numpy as np
    edits, chars = np.array(counts, dtype=np.float64).T
    rows = np.random.default_rng(seed).integers(0, len(counts), size=(resamples, len(counts)))
    values = edits[rows].sum(1) / np.maximum(chars[rows].sum(1), 1)
    if baseline is not None:
        base_edits, base_chars = np.array(baseline, dtype=np.float64).T
        values = values - base_edits[rows].sum(1) / np.maximum(base_chars[rows].sum(1), 1)
    return float(np.std(values))


def score_submitted(run: dict, corpora: dict) -> dict:
    """The 'best' checkpoint (what a submit decodes) with its own decoder on each corpus's test set:
    CER, bootstrap SE, seconds per utterance."""
    import torch
    from modules.checkpoint import read_checkpoint
    from modules.metrics import cer_counts
    from modules.text import read_label_records
    from modules.transcribe.inference import transcribe_files
    from modules.transcribe.recognizer import SpeechRecognizer
    folders = glob.glob(os.path.join(run["home"], "sessions", "*", "*", "*", "checkpoints", "best", "model"))
    _, state = read_checkpoint(folders[0])
    rec = SpeechRecognizer.from_state_dict(state["recognizer"], torch.device("cpu"))
    out = {"final_weights": state["trainer"].get("final_weights", "plain"), "decoder": rec.decoder_config.decoder,
           "lm_weight": rec.decoder_config.lm_weight}
    for name, corpus in corpora.items():
        refs = {r["filename"]: r["text"] for r in read_label_records(os.path.join(corpus, "test", "test_label"))}
        names = sorted(refs)
        start = time.perf_counter()
        hyps = transcribe_files(rec, [os.path.join(corpus, "test", "test_data", n) for n in names],
                                batch_seconds=rec.decoder_config.batch_seconds, progress=False)
        seconds = time.perf_counter() - start
        counts = [cer_counts(h, refs[n]) for h, n in zip(hyps, names)]
        out[name] = {"test_cer": round(sum(e for e, _ in counts) / max(sum(c for _, c in counts), 1), 4),
                     "se": round(bootstrap_se(counts), 4), "seconds_per_utterance": round(seconds / len(names), 4),
                     "files": len(names), "counts": [list(c) for c in counts]}
        run_suite.log(f"{run['model']}: submitted weights ({out['final_weights']}) on {name}: "
                      f"CER {out[name]['test_cer']} +- {out[name]['se']}")
    return out


def checkpoints(run: dict) -> list:
    """[(epoch, folder)] of a run's epoch checkpoints, in order."""
    found = []
    for folder in glob.glob(os.path.join(run["home"], "sessions", "*", "*", "*", "checkpoints", "*", "model")):
        name = os.path.basename(os.path.dirname(folder))
        if name.isdigit():
            found.append((int(name), folder))
    return sorted(found)


def evaluate(run: dict, corpus: str, decoders: dict) -> list:
    """Test CER of every epoch checkpoint (greedy), and of the last one with `decoders`."""
    import torch
    from modules.checkpoint import read_checkpoint
    from modules.text import read_label_records
    from modules.transcribe.decoding import SEQUENCE_DECODERS
    from modules.transcribe.recognizer import SpeechRecognizer
    refs = {r["filename"]: r["text"] for r in read_label_records(os.path.join(corpus, "test", "test_label"))}
    names = sorted(refs)
    paths = [os.path.join(corpus, "test", "test_data", n) for n in names]
    seconds_at_epoch = {p["epoch"]: p["seconds"] for p in run["curve"]}
    points, found = [], checkpoints(run)
    for i, (epoch, folder) in enumerate(found):
        _, state = read_checkpoint(folder)
        rec = SpeechRecognizer.from_state_dict(state["recognizer"], torch.device("cpu"))
        as_trained = rec.decoder_config
        point = {"epoch": epoch, "updates": state["trainer"]["step"], "seconds": seconds_at_epoch.get(epoch)}
        last = i == len(found) - 1
        for name, changes in (decoders.items() if last else [("greedy", {"decoder": "greedy"})]):
            if (name == "beam+LM" and rec.lm is None) or (name in SEQUENCE_DECODERS and not rec.model.has_decoder):
                continue
            rec.decoder_config = replace(as_trained, **changes)
            point[f"test_cer_{name}"] = round(measure.test_cer(rec, paths, [refs[n] for n in names],
                                                               as_trained.batch_seconds)["test_cer"], 4)
        run_suite.log(f"{run['model']}: epoch {epoch}, {point['updates']} updates, "
                      + ", ".join(f"{k} {v}" for k, v in point.items() if k.startswith("test_cer")))
        points.append(point)
    return points


def at(points: list, key: str, x: float, field: str = "test_cer_greedy"):
    """`field` linearly interpolated at x along `key` (None outside the curve)."""
    pairs = [(p[key], p[field]) for p in points if p.get(key) is not None and field in p]
    for (x0, y0), (x1, y1) in zip(pairs, pairs[1:]):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / max(x1 - x0, 1e-9)
    return pairs[-1][1] if pairs and x == pairs[-1][0] else None


def compare(results: dict) -> dict:
    """The issue's comparisons: Conformer vs DeepSpeech2 at equal wall-clock (the end of the budget)
    and at equal updates, whether the Conformer's curve still falls, and the attention model's
    joint decoding against its CTC beam search on the same checkpoint."""
    out = {}
    ds2, conf = results.get("deepspeech2"), results.get("conformer")
    if ds2 and conf:
        end_ds2, end_conf = ds2["points"][-1], conf["points"][-1]
        out["conformer_over_ds2_at_end_greedy"] = round(end_conf["test_cer_greedy"] / end_ds2["test_cer_greedy"], 3)
        if "test_cer_beam+LM" in end_conf and "test_cer_beam+LM" in end_ds2:
            out["conformer_over_ds2_at_end_beam_lm"] = round(end_conf["test_cer_beam+LM"]
                                                             / end_ds2["test_cer_beam+LM"], 3)
        shared = min(end_ds2["updates"], end_conf["updates"])
        out["equal_updates"] = {"updates": shared, "deepspeech2": at(ds2["points"], "updates", shared),
                                "conformer": at(conf["points"], "updates", shared)}
        pts = conf["points"]
        quarter = [p for p in pts if p["seconds"] and p["seconds"] >= 0.75 * pts[-1]["seconds"]]
        out["conformer_still_falling"] = bool(quarter and pts[-1]["test_cer_greedy"] < quarter[0]["test_cer_greedy"]
                                              if len(quarter) > 1 else None)
    att = results.get("attention")
    if att:
        end = att["points"][-1]
        out["attention_joint_vs_ctc_beam"] = {"joint": end.get("test_cer_joint"), "beam": end.get("test_cer_beam"),
                                              "beam+LM": end.get("test_cer_beam+LM"),
                                              "attention": end.get("test_cer_attention")}
    return out


def plot(results: dict, path: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for name, r in results.items():
        pts = [p for p in r["points"] if p.get("seconds") is not None]
        axes[0].plot([p["seconds"] / 60 for p in pts], [p["test_cer_greedy"] for p in pts], marker="o", ms=3,
                     label=name)
        axes[1].plot([p["updates"] for p in r["points"]], [p["test_cer_greedy"] for p in r["points"]], marker="o",
                     ms=3, label=name)
    axes[0].set_xlabel("minutes of training (wall-clock, 2 CPU cores)")
    axes[1].set_xlabel("updates (optimizer steps)")
    axes[0].set_ylabel("test CER, greedy")
    for axis in axes:
        axis.grid(True, alpha=0.3)
        axis.set_ylim(0, min(1.05, max(axis.get_ylim()[1], 0.1)))
        axis.legend()
    figure.suptitle("Learning curves on held-out sentences and voices")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def rescore(folder: str, work: str, hard_corpus: str = None):
    """Score again the submitted checkpoint of every row in `folder` whose sessions are still under
    `work`/TAG (for rows written before per-utterance counts were kept)."""
    for path in sorted(glob.glob(os.path.join(folder, "learning_curves_*.json"))):
        with open(path) as f:
            result = json.load(f)
        for model, run in result["runs"].items():
            home = os.path.join(work, result["tag"], model, "nsml_home")
            hard = hard_corpus or result.get("hard_corpus")  # the one given wins (the row's may be relative)
            corpora = {"test": result["corpus"], **({"hard": hard} if hard else {})}
            run["submitted"] = score_submitted({"home": home, "model": model}, corpora)
        with open(path, "w") as f:
            json.dump(result, f, indent=1, ensure_ascii=False)


def submit_speed(run: dict, submitted: dict) -> str:
    """Seconds per test utterance of the local submit (timed by nsml_local from the end of loading), as a cell."""
    seconds, files = run.get("submit_inference_seconds"), submitted.get("test", {}).get("files")
    return f"{seconds / files:.4f} |" if seconds and files else "- |"


def table(folder: str, baselines: dict = None) -> str:
    """One markdown row per run of every learning_curves_*.json in `folder`: the ablation table.
    `baselines`: model -> tag of the row the others of that model are compared with (the difference in
    test CER and its paired bootstrap standard error)."""
    results = []
    for path in sorted(glob.glob(os.path.join(folder, "learning_curves_*.json"))):
        with open(path) as f:
            result = json.load(f)
        results += [(result, model, run) for model, run in result["runs"].items()]
    base = {model: run.get("submitted", {}) for result, model, run in results
            if (baselines or {}).get(model) == result.get("tag")}
    rows = ["| tag | model | options | epochs | updates | audio-s/s | peak RSS MiB | best val CER (greedy) | weights "
            "submitted | test CER | vs baseline | hard test CER | vs baseline | submit s/utt after load |", "|" + "---|" * 14]
    for result, model, run in results:
        sub, reference = run.get("submitted", {}), base.get(model, {})

        def cer(name):
            return f"{sub[name]['test_cer']:.4f} ± {sub[name]['se']:.4f}" if name in sub else "-"

        def versus(name):
            if name not in sub or name not in reference or sub is reference:
                return "-"
            if "counts" not in sub[name] or "counts" not in reference[name]:
                return "-"
            delta = sub[name]["test_cer"] - reference[name]["test_cer"]
            return f"{delta:+.4f} ± {bootstrap_se(sub[name]['counts'], baseline=reference[name]['counts']):.4f}"
        speed = run.get("train_audio_per_second")
        rows.append(" | ".join([
            f"| {result.get('tag') or '-'}", model, f"`{result.get('extra') or 'defaults'}`", str(run["epochs"]),
            str(run["points"][-1]["updates"]), f"{speed:.0f}" if speed else "-",
            f"{run['train_peak_rss_mib']:.0f}", f"{run['best_val_cer']:.3f}", sub.get("final_weights", "-"),
            cer("test"), versus("test"), cer("hard"), versus("hard"),
            submit_speed(run, sub)]))
    text = "\n".join(rows) + "\n"
    with open(os.path.join(folder, "ablation.md"), "w") as f:
        f.write(text)
    return text


def main(argv=None):
    a = parse_args(argv)
    if a.table:
        if a.rescore:
            rescore(a.table, a.work, a.hard_corpus)
        baselines = dict(pair.split("=") for pair in a.baselines.split(",") if pair)
        print(table(a.table, baselines), end="")
        return None
    os.makedirs(a.out, exist_ok=True)
    corpus = common.suite_corpus(a, run_suite.log)
    budget = argparse.Namespace(work=a.work, budget_minutes=a.budget_minutes)
    results = {}
    for name in a.models.split(","):
        argv = MODELS[name] + (common.SMOKE_MODELS[name] if a.smoke else []) + ["--save_every", str(a.save_every)] + a.extra.split()
        start = time.time()
        run = run_suite.train_and_submit(name, argv, corpus, budget)
        run.update(model=name, home=os.path.join(a.work, name, "nsml_home"))
        run["points"] = evaluate(run, corpus, FINAL_DECODERS)
        run["submitted"] = score_submitted(run, {"test": corpus, **({"hard": a.hard_corpus} if a.hard_corpus else {})})
        run["evaluation_seconds"] = round(time.time() - start - run["train_seconds"], 1)
        results[name] = {k: v for k, v in run.items() if k not in ("home", "checkpoint")}
    summary = {"machine": measure.machine(), "tag": a.tag, "extra": a.extra, "hard_corpus": a.hard_corpus,
               "corpus": corpus, "budget_minutes": a.budget_minutes, "save_every": a.save_every,
               "runs": results, "comparisons": compare(results)}
    stem = os.path.join(a.out, "learning_curves" + (f"_{a.tag}" if a.tag else ""))
    with open(stem + ".json", "w") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
    plot(results, stem + ".png")
    print(json.dumps(summary["comparisons"], indent=1), flush=True)
    return summary


if __name__ == "__main__":
    main()
