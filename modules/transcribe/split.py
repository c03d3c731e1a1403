"""The training and validation split: no sentence, and no speaker when known, on both sides."""
import os
import random
import warnings

import numpy as np

from .corpus import Utterance


def _sentence(u: Utterance) -> str:
    return u.text.replace(" ", "")


def split_by_sentence(utterances: list, valid_fraction: float = 0.2, seed: int = 0):
    """Seeded train/validation split in which no sentence, and no speaker (when known), is on both sides.

    Whole sentences are held out, so validation CER measures recognition of unseen
    sentences (and voices) as the test set does, not recall of memorised ones.
    Utterances are grouped into connected components of "same sentence or same
    speaker" and whole components go to validation until it holds `valid_fraction`.
    When speakers read overlapping sentences the components merge into one; then
    validation takes whole speakers and training drops its utterances of validation
    sentences (a warning says how many), which keeps both sides disjoint. If that
    would drop more than half of the training side (speakers x sentences fully
    crossed), the split is by sentence only, with a warning.

    Linear in the number of utterances: one pass to number sentences and speakers, a
    union-find over the distinct (sentence, speaker) pairs, the rest NumPy (600,000
    utterances in about a second).
    """
    return _split(utterances, valid_fraction, seed, use_speakers=True)


def _split(utterances: list, valid_fraction: float, seed: int, use_speakers: bool):
    if not utterances:
        return [], []
    has_speakers = use_speakers and any(u.speaker is not None for u in utterances)
    component = _components(utterances, has_speakers)
    sizes = np.bincount(component)
    order = list(range(len(sizes)))  # components numbered by their first utterance
    random.Random(seed).shuffle(order)
    target = valid_fraction * len(utterances)
    chosen, held = np.zeros(len(sizes), dtype=bool), 0
    for c in order:
        if held >= target:
            break
        if held + sizes[c] <= 1.5 * target + 1:  # a giant component would swallow validation
            chosen[c] = True
            held += int(sizes[c])
    if target and held < 0.5 * target and has_speakers:
        train, valid = _split_by_speaker(utterances, valid_fraction, seed)
        if len(train) >= 0.5 * (len(utterances) - len(valid)):
            return train, valid
        # speakers and sentences fully crossed: keeping both apart would leave too little to train on
        warnings.warn("split: speakers read the same sentences; splitting by sentence only, "
                      "so validation speakers are also heard in training")
        return _split(utterances, valid_fraction, seed, use_speakers=False)
    in_valid = chosen[component]
    return ([utterances[i] for i in np.flatnonzero(~in_valid)],
            [utterances[i] for i in np.flatnonzero(in_valid)])


def _components(utterances: list, use_speakers: bool) -> np.ndarray:
    """(N,) component of each utterance under "same sentence or same speaker", components
    numbered in the order of their first utterance."""
    sentence_ids = {}
    sentence = np.fromiter((sentence_ids.setdefault(_sentence(u), len(sentence_ids)) for u in utterances),
                           dtype=np.int64, count=len(utterances))
    if not use_speakers:
        return sentence  # numbered by first appearance already
    # Union-find over sentence nodes [0, S) and speaker nodes [S, S + speakers), joined by each
    # distinct (sentence, speaker) pair an utterance makes.
    speaker_ids, n = {}, len(sentence_ids)
    pairs = {(s, n + speaker_ids.setdefault(u.speaker, len(speaker_ids)))
             for s, u in zip(sentence.tolist(), utterances) if u.speaker is not None}
    parent = list(range(n + len(speaker_ids)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[find(a)] = find(b)
    root = np.array([find(i) for i in range(n)], dtype=np.int64)[sentence]
    # renumber the roots in the order of their first utterance
    roots, first = np.unique(root, return_index=True)
    rank = np.empty(len(roots), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(roots))
    return rank[np.searchsorted(roots, root)]


def _split_by_speaker(utterances, valid_fraction, seed):
    speakers = sorted({u.speaker for u in utterances if u.speaker is not None})
    random.Random(seed).shuffle(speakers)
    target, chosen, held = valid_fraction * len(utterances), set(), 0
    counts = {}
    for u in utterances:
        counts[u.speaker] = counts.get(u.speaker, 0) + 1
    for s in speakers:
        if held >= target:
            break
        chosen.add(s)
        held += counts[s]
    valid = [u for u in utterances if u.speaker in chosen]
    valid_sentences = {_sentence(u) for u in valid}
    rest = [u for u in utterances if u.speaker not in chosen]
    train = [u for u in rest if _sentence(u) not in valid_sentences]
    if len(train) < len(rest):
        warnings.warn(f"split: speakers read overlapping sentences; {len(rest) - len(train)} training utterances "
                      "of validation sentences left out so that no sentence or speaker is on both sides")
    return train, valid


def split_by_names(utterances: list, valid_names: list):
    """The split a checkpoint recorded (validation file names), so a forked session keeps it."""
    names = set(valid_names)
    train = [u for u in utterances if os.path.basename(u.path) not in names]
    valid = [u for u in utterances if os.path.basename(u.path) in names]
    return train, valid




def capped_sample(utterances: list, limit: int, seed: int = 0) -> list:
    """At most `limit` of `utterances` (0 = all): the same seeded random sample every time, in the
    original order, so scores over the sample are comparable from epoch to epoch and run to run."""
    if not 0 < limit < len(utterances):
        return list(utterances)
    keep = sorted(random.Random(seed).sample(range(len(utterances)), limit))
    return [utterances[i] for i in keep]
