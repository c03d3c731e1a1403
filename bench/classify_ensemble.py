"""Test-set scores of each ensemble member alone, of the mean member and of the averaged ensemble.

    python bench/classify_ensemble.py --checkpoint CKPT_DIR --dataset corpora/kws [--name kws]
    python bench/classify_ensemble.py --smoke    # CI: a tiny 2-model ensemble trained for a moment on tones

Scores come from the dataset's own scorer (tools/classification_eval.py: accuracy for
single labels, KL divergence for distributions); accuracies carry their binomial
standard error sqrt(p(1-p)/n). The ensemble's probabilities come from the classifier
itself (all members loaded, as at submit) and are checked against the mean of the
members' probabilities. The figures go to stdout and, under `--name`, into
bench/results/classify_ensemble.json (other names in the file are kept).
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tools"), os.path.join(REPO, "bench")]
import common  # noqa: E402
from classification_eval import kl_row, read_table, score  # noqa: E402

from modules.checkpoint import CHECKPOINT_FILE, read_checkpoint  # noqa: E402
from modules.classify.classifier import AudioClassifier  # noqa: E402


def standard_error(accuracy: float, n: int) -> float:
    return math.sqrt(accuracy * (1 - accuracy) / max(n, 1))


def member_and_ensemble_probs(classifier: AudioClassifier, paths: list):
    """([probabilities of each member alone], probabilities of the whole ensemble)."""
    members = list(classifier.models)
    try:
        alone = []
        for model in members:
            classifier.models = [model]
            alone.append(classifier.classify_files(paths, progress=False))
    finally:
        classifier.models = members
    return alone, classifier.classify_files(paths, progress=False)


def paired_counts(classifier, names, label_file, ensemble_probs, member_probs) -> dict:
    """Test clips that only the ensemble gets right, and that only the member gets right (single labels):
    the ensemble and a member are scored on the same clips, so their difference is judged on these."""
    _, labels = read_table(label_file)
    truth = [labels[n]["label"] if n in labels else None for n in names]
    right = [[r["label"] == t for r, t in zip(classifier.records(names, p), truth)]
             for p in (ensemble_probs, member_probs)]
    return {"ensemble_only": sum(e and not m for e, m in zip(*right)),
            "member_only": sum(m and not e for e, m in zip(*right))}


def kl_difference(names, label_file, ensemble_probs, member_probs, classes) -> dict:
    """Mean and standard error over test clips of KL(ensemble) - KL(member) (distributions): paired,
    since both are scored on the same clips; negative = the ensemble is better."""
    columns, labels = read_table(label_file)
    order = [classes.index(c) for c in columns]
    diffs = []
    for i, name in enumerate(names):
        expected = [float(labels[name][c]) for c in columns]
        expected = [p / sum(expected) for p in expected]
        diffs.append(kl_row(expected, ensemble_probs[i, order].tolist()) - kl_row(expected, member_probs[i, order].tolist()))
    mean = sum(diffs) / len(diffs)
    spread = math.sqrt(sum((d - mean) ** 2 for d in diffs) / max(len(diffs) - 1, 1))
    return {"mean": mean, "standard_error": spread / math.sqrt(len(diffs))}


def load_classifier(path: str) -> AudioClassifier:
    """The classifier of a checkpoint folder (or its model.pt), any format modules/checkpoint.py reads."""
    folder = os.path.dirname(path) if os.path.basename(path) == CHECKPOINT_FILE else path
    task, state = read_checkpoint(folder)
    if task != "classify":
        raise SystemExit(f"{folder}: a {task} checkpoint; classify_ensemble needs a classify one")
    return AudioClassifier.from_state_dict(state["classifier"], torch.device("cpu"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", help="a checkpoint folder (or its model.pt) written by main.py --task classify")
    p.add_argument("--dataset", help="dataset root with test/test_data and test/test_label")
    p.add_argument("--name", default="", help="key of this run in the results file (default: the dataset's name)")
    p.add_argument("--command", default="", help="the training command, recorded with the figures")
    p.add_argument("--out", default=None, help="default bench/results/classify_ensemble.json (smoke: bench/results/smoke/)")
    p.add_argument("--smoke", action="store_true", help="CI: train a tiny ensemble on tones and score it")
    args = p.parse_args(argv)
    if not args.smoke and not (args.checkpoint and args.dataset):
        p.error("--checkpoint and --dataset are required (or --smoke)")
    args.out = args.out or os.path.join(REPO, "bench", "results", *(["smoke"] if args.smoke else []),
                                        "classify_ensemble.json")
    with tempfile.TemporaryDirectory(prefix="classify_ensemble_") as scratch:
        if args.smoke:
            args.dataset = common.tiny_clip_corpus(os.path.join(scratch, "clips"))
            args.checkpoint = common.tiny_checkpoint("classify", args.dataset, os.path.join(scratch, "checkpoints"))
        return evaluate(load_classifier(args.checkpoint), args)


def evaluate(classifier: AudioClassifier, args) -> dict:
    folder = os.path.join(args.dataset, "test", "test_data")
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    paths = [os.path.join(folder, n) for n in names]
    start = time.time()
    alone, ensemble = member_and_ensemble_probs(classifier, paths)
    seconds = time.time() - start
    mean_probs = sum(alone) / len(alone)
    gap = float((ensemble - mean_probs).abs().max())
    if gap > 1e-4:
        raise SystemExit(f"the classifier's ensemble differs from the mean of its members by {gap:.2e}")

    label_file = os.path.join(args.dataset, "test", "test_label")
    members = [score(classifier.records(names, probs), label_file) for probs in alone]
    cumulative = [score(classifier.records(names, sum(alone[:k + 1]) / (k + 1)), label_file) for k in range(len(alone))]
    metrics = list(members[0])
    mean_member = {m: sum(s[m] for s in members) / len(members) for m in metrics}
    results = {"checkpoint": args.checkpoint, "dataset": args.dataset, "command": args.command,
               "kind": classifier.spec.kind, "test_clips": len(names), "members": members,
               "mean_member": mean_member, "best_member": {m: (max if m == "accuracy" else min)(s[m] for s in members)
                                                           for m in metrics},
               "ensemble": cumulative[-1], "ensemble_of_first_k": cumulative,
               "accuracy_standard_error": standard_error(cumulative[-1]["accuracy"], len(names)),
               "ensemble_vs_member_clips": [] if classifier.spec.kind != "single" else [
                   paired_counts(classifier, names, label_file, ensemble, probs) for probs in alone],
               "ensemble_minus_member_kl": [] if classifier.spec.kind == "single" else [
                   kl_difference(names, label_file, ensemble, probs, classifier.spec.classes) for probs in alone],
               "seconds_per_clip_per_model": seconds / max(2 * len(names) * len(alone), 1)}

    def line(scores):
        return ", ".join(f"{m} {v:.4f}" for m, v in scores.items())
    for k, s in enumerate(members):
        print(f"model {k + 1} alone: {line(s)} | ensemble of the first {k + 1}: {line(cumulative[k])}")
    for k, c in enumerate(results["ensemble_vs_member_clips"]):
        print(f"clips only the ensemble gets right / only model {k + 1} gets right: "
              f"{c['ensemble_only']} / {c['member_only']}")
    for k, d in enumerate(results["ensemble_minus_member_kl"]):
        print(f"KL(ensemble) - KL(model {k + 1}), per clip: {d['mean']:+.4f} +- {d['standard_error']:.4f}")
    print(f"mean member: {line(mean_member)}\nbest member: {line(results['best_member'])}\n"
          f"ensemble of {len(members)}: {line(cumulative[-1])}\n"
          f"{len(names)} test clips: binomial standard error of an accuracy near the ensemble's "
          f"{100 * results['accuracy_standard_error']:.1f} points")
    name = args.name or os.path.basename(os.path.normpath(args.dataset))
    everything = {}
    if os.path.isfile(args.out):
        with open(args.out) as f:
            everything = json.load(f)
        if "members" in everything:  # the old one-run layout
            everything = {}
    everything[name] = results
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(everything, f, indent=1)
    print(f"written to {args.out} under {name!r}")
    return results


if __name__ == "__main__":
    main()
