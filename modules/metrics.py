"""Character error rate as the competitions score it."""
from typing import Iterable

import Levenshtein


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
