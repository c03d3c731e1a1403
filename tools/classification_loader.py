"""A dataset owner's data_loader.py for classification datasets (copied there by tools/make_kws_corpus.py).

`nsml submit` calls `feed_infer(output_file, infer_func)`: the test folder goes to
the participant's infer, and its records are written as the CSV evaluation.py reads.
"""
import csv
import os

import nsml


def test_data_path():
    root = nsml.DATASET_PATH[0] if isinstance(nsml.DATASET_PATH, (list, tuple)) else nsml.DATASET_PATH
    return os.path.join(root, "test", "test_data")


def write_predictions(records, output_file):
    """`filename,label` rows, or `filename,<classes...>` rows of probabilities."""
    with open(output_file, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if records and "probs" in records[0]:
            classes = list(records[0]["probs"])
            writer.writerow(["filename"] + classes)
            writer.writerows([r["filename"]] + ["%.6g" % float(r["probs"][c]) for c in classes] for r in records)
        else:
            writer.writerow(["filename", "label"])
            writer.writerows([r["filename"], r["label"]] for r in records)


def feed_infer(output_file, infer_func):
    records = infer_func(test_data_path())
    if not isinstance(records, list) or not all(isinstance(r, dict) and "filename" in r for r in records):
        raise ValueError("infer must return a list of {'filename', 'label' or 'probs'} records")
    write_predictions(records, output_file)
