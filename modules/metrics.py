"""Scores as the competitions compute them: CER for transcripts, accuracy / macro-F1 / KL for classes."""
from typing import Iterable, Sequence

import Levenshtein
import numpy as np


def cer_counts(hypothesis: str, reference: str):
    """(edit distance, reference length), both sides with spaces removed."""
    hyp, ref = hypothesis.replace(" ", ""), reference.replace(" ", "")
    return Levenshtein.distance(hyp, ref), len(ref)


def cer(hypotheses: Iterable[str], references: Iterable[str]) -> float:
    """Σ edit distance / Σ reference length over the corpus, spaces removed (not clipped at 1)."""
    edits = chars = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        e, n = cer_counts(hyp, ref)
        edits += e
        chars += n
    return edits / max(chars, 1)


# Classification scores (keyword spotting, class distributions).

def accuracy(predicted: Sequence[int], expected: Sequence[int]) -> float:
    pairs = list(zip(predicted, expected, strict=True))
    return sum(p == e for p, e in pairs) / max(len(pairs), 1)


def macro_f1(predicted: Sequence[int], expected: Sequence[int], n_classes: int) -> float:
    """Mean over the classes present in either list of 2PR/(P+R) (= 2TP / (2TP + FP + FN))."""
    scores = []
    for c in range(n_classes):
        tp = sum(p == c and e == c for p, e in zip(predicted, expected, strict=True))
        fp = sum(p == c and e != c for p, e in zip(predicted, expected))
        fn = sum(p != c and e == c for p, e in zip(predicted, expected))
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / max(len(scores), 1)


def kl_divergence(expected: np.ndarray, predicted: np.ndarray, eps: float = 1e-7) -> float:
    """Mean over rows of KL(expected || predicted) in nats; predictions clipped to [eps, 1] and
    renormalised so one confident miss costs a bounded amount (as DACON's scorer does)."""
    p = np.asarray(expected, dtype=np.float64)
    q = np.clip(np.asarray(predicted, dtype=np.float64), eps, 1.0)
    q = q / q.sum(axis=1, keepdims=True)
    terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q)), 0.0)
    return float(terms.sum(axis=1).mean())
