"""Scores of both competitions and the label files they read.

CER = sum of Levenshtein(hyp, ref) / sum of len(ref), spaces removed from
both sides (2019 evaluation and the 2022 baseline metric). The 2019
leaderboard showed CRR = (1 - CER) * 100, not clipped: a CER above 1 gives a
negative CRR.
"""
import csv
import os

from .errors import NSMLError


def _distance(a, b):
    import Levenshtein  # python-Levenshtein; imported late to keep `import nsml` light
    return Levenshtein.distance(a, b)


def cer(pairs):
    """pairs: [(hypothesis, reference), ...] -> CER as a float."""
    errors = 0
    length = 0
    for hyp, ref in pairs:
        hyp = hyp.replace(' ', '')
        ref = ref.replace(' ', '')
        errors += _distance(hyp, ref)
        length += len(ref)
    if length == 0:
        raise NSMLError('cannot score: the references of the scored items are all empty')
    return errors / length


def crr(cer_value):
    return (1.0 - cer_value) * 100.0


def read_labels(path):
    """test_label as {filename: text}: a CSV `filename,text`, with a header."""
    if not os.path.isfile(path):
        raise NSMLError('label file %s does not exist' % path)
    labels = {}
    with open(path, encoding='utf-8', newline='') as f:
        for row in csv.reader(f):
            if not row or (row[0] == 'filename' and not labels):
                continue
            if len(row) < 2:
                raise NSMLError('label file %s: line %r is not "filename,text"' % (path, ','.join(row)))
            labels[row[0]] = ','.join(row[1:])
    return labels


def label_for(labels, filename):
    """The reference of a test file; 2019 labels may name it with or without .wav."""
    if filename in labels:
        return labels[filename]
    stem = os.path.splitext(filename)[0]
    if stem in labels:
        return labels[stem]
    return None
