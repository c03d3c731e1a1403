"""Scoring of classification submissions, written as a dataset owner's evaluation.py.

The corpus generator (tools/make_kws_corpus.py) copies this file to the root of
each classification dataset as `evaluation.py`, next to `data_loader.py`; the
local NSML then calls `evaluation_metrics(prediction_file, label_file)` (or runs
`python evaluation.py --prediction P --test_label_path L`, whose last line is the
score). Self-contained: the dataset owner's scripts do not import the kit.

Label and prediction files are CSVs with a header:
  `filename,label`                 one class per clip  -> accuracy (fraction correct)
  `filename,<class 1>,<class 2>,...` a distribution     -> mean KL(label || prediction), nats
"""
import argparse
import csv
import math

# The number's name and direction, which the local NSML prints (`ACCURACY: 0.85`) and ranks by.
# The generator writes METRIC = "KL" and HIGHER_IS_BETTER = False here for distribution datasets.
METRIC = "ACCURACY"
HIGHER_IS_BETTER = True
EPS = 1e-7  # predictions are clipped to [EPS, 1] and renormalised: one confident miss costs a bounded amount


def read_table(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "filename" not in [h.strip().lower() for h in rows[0]]:
        raise ValueError("%s: expected a CSV header with 'filename'" % path)
    header = [h.strip() for h in rows[0]]
    fi = [h.lower() for h in header].index("filename")
    table = {}
    for row in rows[1:]:
        if len(row) == len(header):
            table[row[fi].strip()] = {h: v.strip() for h, v in zip(header, row) if h != header[fi]}
    return header[:fi] + header[fi + 1:], table


def kl_row(expected, predicted):
    q = [min(max(p, EPS), 1.0) for p in predicted]
    total = sum(q)
    return sum(p * (math.log(p) - math.log(x / total)) for p, x in zip(expected, q) if p > 0)


def score_tables(predictions, labels, columns):
    """{'accuracy': ..} or {'kl': .., 'accuracy': ..} of prediction rows against label rows.
    A clip missing from the predictions counts as wrong (or as the uniform distribution)."""
    if columns == ["label"]:
        correct = sum(predictions.get(name, {}).get("label") == row["label"] for name, row in labels.items())
        return {"accuracy": correct / max(len(labels), 1)}
    total, correct = 0.0, 0
    for name, row in labels.items():
        expected = [float(row[c]) for c in columns]
        s = sum(expected)
        expected = [p / s for p in expected]
        guess = predictions.get(name)
        try:
            predicted = [float(guess[c]) for c in columns]
        except (TypeError, KeyError, ValueError):
            predicted = [1.0 / len(columns)] * len(columns)
        total += kl_row(expected, predicted)
        correct += max(range(len(columns)), key=expected.__getitem__) == max(range(len(columns)), key=predicted.__getitem__)
    return {"kl": total / max(len(labels), 1), "accuracy": correct / max(len(labels), 1)}


def score(records, label_csv):
    """Scores of the kit's infer() records (`{'filename', 'label'}` or `{'filename', 'probs': {...}}`)."""
    columns, labels = read_table(label_csv)
    predictions = {r["filename"]: ({"label": r["label"]} if "label" in r else r["probs"]) for r in records}
    return score_tables(predictions, labels, columns)


def evaluation_metrics(prediction_file, label_file):
    """The leaderboard number: accuracy (METRIC 'ACCURACY'), or mean KL divergence (METRIC 'KL')."""
    columns, labels = read_table(label_file)
    _, predictions = read_table(prediction_file)
    scores = score_tables(predictions, labels, columns)
    return scores["accuracy"] if "kl" not in scores else scores["kl"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--prediction", required=True)
    parser.add_argument("--test_label_path", required=True)
    args = parser.parse_args()
    print(evaluation_metrics(args.prediction, args.test_label_path))
