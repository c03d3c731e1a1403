"""Test-set scores of each ensemble member alone and of the averaged ensemble, from one checkpoint.

    python bench/classify_ensemble.py --checkpoint CKPT_DIR/model.pt --dataset corpora/kws

Scores come from the dataset's own scorer (tools/classification_eval.py: accuracy for
single labels, KL divergence for distributions); the figures go to stdout and to
bench/results/classify_ensemble.json.
"""
import argparse
import json
import os
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tools")]
from classification_eval import score  # noqa: E402
from modules.checkpoint import load_checkpoint  # noqa: E402
from modules.classifier import AudioClassifier  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a model.pt written by main.py --task classify")
    p.add_argument("--dataset", required=True, help="dataset root with test/test_data and test/test_label")
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results", "classify_ensemble.json"))
    args = p.parse_args(argv)
    classifier = AudioClassifier.from_state_dict(load_checkpoint(args.checkpoint)["classifier"], torch.device("cpu"))
    folder = os.path.join(args.dataset, "test", "test_data")
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    start = time.time()
    members = list(classifier.models)
    per_member = []
    for model in members:  # each member alone: the ensemble's probabilities are their mean
        classifier.models = [model]
        per_member.append(classifier.classify_files([os.path.join(folder, n) for n in names], progress=False))
    seconds = time.time() - start
    label_file = os.path.join(args.dataset, "test", "test_label")
    results = {"checkpoint": args.checkpoint, "dataset": args.dataset, "kind": classifier.spec.kind,
               "test_clips": len(names), "members": [], "ensemble": []}
    for k, probs in enumerate(per_member):
        results["members"].append(score(classifier.records(names, probs), label_file))
        mean = sum(per_member[: k + 1]) / (k + 1)
        results["ensemble"].append(score(classifier.records(names, mean), label_file))
    results["seconds_per_clip_per_model"] = seconds / max(len(names) * len(members), 1)
    for k in range(len(members)):
        print(f"model {k + 1} alone: " + ", ".join(f"{m} {v:.4f}" for m, v in results["members"][k].items()) +
              f" | ensemble of {k + 1}: " + ", ".join(f"{m} {v:.4f}" for m, v in results["ensemble"][k].items()))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
