"""A character n-gram language model with interpolated Kneser-Ney smoothing, for CTC beam search.

Trained in seconds from the training transcripts and saved inside the checkpoint as
plain dicts of strings and ints (so checkpoints still load with weights_only=True).
KenLM would need its `lmplz` binary to build a model, which a participant's machine
and NSML images do not have; at character level this small model is all we need.
"""
import math
from collections import defaultdict

import numpy as np

BOS, EOS = "\x02", "\x03"  # sentence start / end; never in a normalised transcript


class CharNgramLM:
    def __init__(self, order: int, counts: list, discount: float = 0.75):
        """counts[n][context] = {char: count} for context length n (0 .. order-1).

        The highest order holds raw counts; lower orders hold Kneser-Ney continuation
        counts (how many distinct characters precede the n-gram).
        """
        self.order, self.counts, self.discount = order, counts, discount
        self.vocab = sorted({c for table in counts[:1] for nxt in table.values() for c in nxt})
        self._cache = {}

    @classmethod
    def train(cls, texts, order: int = 5, discount: float = 0.75, max_ngrams: int = 2_000_000):
        """Count `texts`; above `max_ngrams` stored n-grams, singletons of the highest orders are
        pruned (highest first) so that checkpoints and memory stay bounded on large corpora."""
        if order < 1:
            raise ValueError(f"lm order must be >= 1, got {order}")
        highest = defaultdict(lambda: defaultdict(int))
        ngrams = set()
        for text in texts:
            seq = BOS * (order - 1) + text + EOS
            for i in range(order - 1, len(seq)):
                highest[seq[i - order + 1:i]][seq[i]] += 1
                for n in range(1, order):  # every lower-order n-gram with its left neighbour
                    ngrams.add(seq[i - n:i + 1])
        counts = [defaultdict(lambda: defaultdict(int)) for _ in range(order)]
        counts[order - 1] = highest
        for gram in ngrams:  # continuation count of gram[1:]: distinct left characters gram[0]
            suffix = gram[1:]
            counts[len(suffix) - 1][suffix[:-1]][suffix[-1]] += 1
        if order == 1:
            counts[0] = highest
        plain = [{ctx: dict(nxt) for ctx, nxt in table.items()} for table in counts]
        for n in range(order - 1, 0, -1):
            if sum(len(nxt) for table in plain for nxt in table.values()) <= max_ngrams:
                break
            pruned = {ctx: {c: k for c, k in nxt.items() if k > 1} for ctx, nxt in plain[n].items()}
            plain[n] = {ctx: nxt for ctx, nxt in pruned.items() if nxt}
        return cls(order, plain, discount)

    def _distribution(self, context: str) -> dict:
        """P(. | context) over self.vocab as {char: prob}, recursively interpolated."""
        context = context[-(self.order - 1):] if self.order > 1 else ""
        if context in self._cache:
            return self._cache[context]
        if context == "" and self.order >= 1:
            lower = {c: 1.0 / len(self.vocab) for c in self.vocab}
        else:
            lower = self._distribution(context[1:])
        table = self.counts[len(context)].get(context)
        if not table:
            dist = lower
        else:
            total = sum(table.values())
            backoff = self.discount * len(table) / total
            dist = {c: backoff * p for c, p in lower.items()}
            for c, n in table.items():
                dist[c] = dist.get(c, 0.0) + max(n - self.discount, 0.0) / total
        if len(self._cache) > 200_000:  # bound memory on long decodes
            self._cache.clear()
        self._cache[context] = dist
        return dist

    def log_prob(self, char: str, context: str) -> float:
        """log P(char | context); a character never seen in training gets a small floor."""
        context = (BOS * (self.order - 1) + context) if self.order > 1 else ""
        return math.log(max(self._distribution(context).get(char, 0.0), 1e-10))

    def score(self, text: str, eos: bool = True) -> float:
        """Total log-probability of `text` (with the sentence end when `eos`)."""
        total = sum(self.log_prob(c, text[:i]) for i, c in enumerate(text))
        return total + (self.log_prob(EOS, text) if eos else 0.0)

    def log_prob_vector(self, context: str, units: list) -> np.ndarray:
        """log P(unit | context) for every unit string (tokenizer order); multi-char or unknown units floor."""
        key = ("vec", context[-(self.order - 1):] if self.order > 1 else "", id(units))
        cached = self._cache.get(key)
        if cached is None:
            dist = self._distribution((BOS * (self.order - 1) + context) if self.order > 1 else "")
            cached = np.log(np.maximum(np.array([dist.get(u, 0.0) for u in units]), 1e-10))
            self._cache[key] = cached
        return cached

    def state_dict(self) -> dict:
        return {"kind": "char_ngram_kn", "order": self.order, "discount": self.discount, "counts": self.counts}

    @classmethod
    def from_state_dict(cls, state: dict):
        if state.get("kind") != "char_ngram_kn":
            raise ValueError(f"unknown language model kind {state.get('kind')!r}")
        return cls(state["order"], state["counts"], state["discount"])
