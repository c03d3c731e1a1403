"""The training and validation split: no sentence, and no speaker when known, on both sides."""
import os
import random
import warnings
from dataclasses import replace

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
    """
    if not utterances:
        return [], []
    parent = list(range(len(utterances)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = {}
    for i, u in enumerate(utterances):
        for key in (("sentence", _sentence(u)), ("speaker", u.speaker)):
            if key[1] is None:
                continue
            j = first.setdefault(key, i)
            parent[find(i)] = find(j)
    groups = {}
    for i in range(len(utterances)):
        groups.setdefault(find(i), []).append(i)
    components = sorted(groups.values(), key=lambda g: g[0])
    random.Random(seed).shuffle(components)
    target = valid_fraction * len(utterances)
    valid_idx = set()
    for group in components:
        if len(valid_idx) >= target:
            break
        if len(valid_idx) + len(group) <= 1.5 * target + 1:  # a giant component would swallow validation
            valid_idx.update(group)
    if target and len(valid_idx) < 0.5 * target and any(u.speaker is not None for u in utterances):
        train, valid = _split_by_speaker(utterances, valid_fraction, seed)
        if len(train) >= 0.5 * (len(utterances) - len(valid)):
            return train, valid
        # speakers and sentences fully crossed: keeping both apart would leave too little to train on
        warnings.warn("split: speakers read the same sentences; splitting by sentence only, "
                      "so validation speakers are also heard in training")
        anonymous = [replace(u, speaker=None) for u in utterances]
        original = {id(a): u for a, u in zip(anonymous, utterances)}
        train, valid = split_by_sentence(anonymous, valid_fraction, seed)
        return [original[id(a)] for a in train], [original[id(a)] for a in valid]
    train = [u for i, u in enumerate(utterances) if i not in valid_idx]
    valid = [u for i, u in enumerate(utterances) if i in valid_idx]
    return train, valid


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


