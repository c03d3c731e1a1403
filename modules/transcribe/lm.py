"""An n-gram language model over the tokenizer's units, for CTC beam search.

Units are what the acoustic model emits: single characters (syllables or jamo) and each 2022
mask token (`&name&`, ...) as one unit, so a mask is learned from the transcripts like any word
piece instead of being priced at a floor. Smoothing is interpolated modified Kneser-Ney
(Chen & Goodman 1998) with three discounts per order estimated from counts of counts.

Counting is vectorised with numpy: every n-gram of the corpus gets an integer id in a reversed
trie (its key is `id of its (n-1)-word suffix * B + its first word`), and equal keys are grouped
by one in-place sort per order. A jamo 10-gram of 600,000 distinct transcripts of ~21 syllables
(36 M positions) counted in 53 CPU seconds with a peak RSS of 2.0 GiB (bench/lm_scale.py). Above
`max_ngrams` n-grams, rare n-grams of the highest orders are pruned (count thresholds, highest
order first) and their probability mass goes to the backoff.

The model is stored as arrays, loaded as they are:
  keys[m]    sorted int64 keys of the contexts of m words (m = 1 .. order-1), found by
             np.searchsorted walking from the most recent word leftwards
  offsets[m] context k of m words predicts words[m][offsets[m][k]:offsets[m][k+1]]
  words[m], probs[m]  those words and their discounted probabilities
  gammas[m]  per context: the weight of the lower-order distribution (1 - sum of its probs)
so P(w | context) = probs + gamma * P(w | context without its oldest word), down to uniform.

Considered instead: KenLM (its Python module only queries; building needs the `lmplz` binary,
which neither pip nor NSML images provide), nltk.lm (pure Python, slower than the counting this
replaces), OpenGrm NGram and SRILM (not on PyPI; pynini has no n-gram counting). None builds a
model from Python on a participant's machine.
"""
import math
import random
import zlib
from collections import Counter

import numpy as np
import torch

from .normalize import MASK_PATTERN, split_units

BOS, EOS = "\x02", "\x03"  # sentence start / end; never in a normalised transcript
_BOS, _EOS = 0, 1          # their ids: vocab[0], vocab[1]
FLOOR = 1e-10              # probability of a unit the LM never saw
LOG_FLOOR = math.log(FLOOR)
KIND = "unit_ngram_kn"


class CharNgramLM:
    """P(unit | previous units). vocab[0] is BOS (a context only), vocab[1] EOS, then the units.

    Build with `train`; the decoder asks `log_prob_vector(context, units)` and
    `end_log_prob(context, units)`, where `context` is the hypothesis as ids into `units`."""

    CACHE_FLOATS = 8_000_000  # distributions cached per context, at most this many numbers (64 MB)

    def __init__(self, order: int, vocab: list, keys: list, offsets: list, words: list, probs: list,
                 gammas: list, discounts=None):
        self.order, self.vocab = order, list(vocab)
        self.index = {u: i for i, u in enumerate(self.vocab)}
        self.keys, self.offsets, self.words, self.probs, self.gammas = keys, offsets, words, probs, gammas
        self.discounts = discounts  # per order (D1, D2, D3+), for the record
        self.base = np.full(len(self.vocab), 1.0 / max(len(self.vocab) - 1, 1))
        self.base[_BOS] = 0.0  # uniform over everything that can be predicted
        # Python ints for the hot path (numpy scalars are slower to index with)
        self._offsets = [o.tolist() for o in offsets]
        self._gammas = [g.tolist() for g in gammas]
        self._cache = {}   # (depth, context node) -> P(. | context) over vocab
        self._vectors = {}  # decoder context (tuple of unit ids) -> (log P over units, log P(EOS))
        self._limit = max(256, self.CACHE_FLOATS // max(len(self.vocab), 1))
        # Contexts start with order-1 BOS: models before issue 13 padded so; for others the walk
        # stops at the first BOS, as no n-gram has two.
        self._start = [_BOS] * max(order - 1, 1)
        self._units = None  # (units list, LM id of each unit or -1, mask of units the LM never saw)

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, texts, order: int = 5, discount: float = None, max_ngrams: int = 3_000_000,
              max_texts: int = 0, seed: int = 0):
        """Count `texts` (strings whose units are their characters, each mask token whole).

        discount: None estimates modified Kneser-Ney discounts per order; a number fixes one
        discount for all counts (as models before issue 13). Above `max_ngrams` n-grams, rare ones
        of the highest orders are pruned: an n-gram takes ~14 bytes in a checkpoint (3 M: ~42 MB).
        max_texts > 0 counts a seeded sample of that many texts."""
        if order < 1:
            raise ValueError(f"lm order must be >= 1, got {order}")
        texts = list(texts)
        if 0 < max_texts < len(texts):
            texts = random.Random(seed).sample(texts, max_texts)
        vocab, tok, weights = _encode(texts)
        tables = _count(tok, weights, order, len(vocab), max_ngrams, discount)
        return cls(order, vocab, **tables)

    # ------------------------------------------------------------------ querying
    def _distribution(self, ids) -> np.ndarray:
        """P(. | context) over vocab (float64); `ids` are vocab ids, most recent last, -1 = unknown."""
        B, path = len(self.vocab), [0]
        for j in range(1, min(len(ids), self.order - 1) + 1):  # longest context the model has
            w = ids[-j]
            if w < 0:
                break
            keys, key = self.keys[j], path[-1] * B + w
            pos = int(keys.searchsorted(key))
            if pos == len(keys) or keys[pos] != key:
                break
            path.append(pos)
        depth = len(path)
        while depth > 0 and (depth, path[depth - 1]) not in self._cache:
            depth -= 1
        dist = self._cache[(depth, path[depth - 1])] if depth else self.base
        for m in range(depth, len(path)):  # interpolate upwards from the deepest cached level
            k = path[m]
            lo, hi = self._offsets[m][k], self._offsets[m][k + 1]
            dist = dist * self._gammas[m][k]
            dist[self.words[m][lo:hi]] += self.probs[m][lo:hi]
            if len(self._cache) >= self._limit:  # bound memory on long decodes
                self._cache.clear()
            self._cache[(m + 1, k)] = dist
        return dist

    def _ids(self, units) -> list:
        return [self.index.get(u, -1) for u in units]

    def log_prob(self, unit: str, context: str) -> float:
        """log P(unit | context text); a unit never seen in training gets the floor."""
        i = self.index.get(unit, -1)
        if i < 0:
            return LOG_FLOOR
        return math.log(max(float(self._distribution(self._start + self._ids(split_units(context)))[i]), FLOOR))

    def score(self, text: str, eos: bool = True) -> float:
        """Total log-probability of `text` (with the sentence end when `eos`)."""
        ids = self._start + self._ids(split_units(text)) + ([_EOS] if eos else [])
        return sum(math.log(max(float(self._distribution(ids[:i])[w]), FLOOR)) if w >= 0 else LOG_FLOOR
                   for i, w in enumerate(ids) if i >= len(self._start))

    def _vector(self, context, units: list):
        """(log P(u | context) for every unit, log P(EOS | context)); context = ids into `units`."""
        if self._units is None or self._units[0] is not units:
            ids = np.array(self._ids(units), dtype=np.int64)
            self._units = (units, ids.tolist(), np.maximum(ids, 0), ids < 0)
            self._vectors.clear()
        key = tuple(context[-(self.order - 1):]) if self.order > 1 else ()
        hit = self._vectors.get(key)
        if hit is None:
            unit_ids = self._units[1]
            dist = self._distribution(self._start + [unit_ids[u] for u in key])
            vector = np.log(np.maximum(dist[self._units[2]], FLOOR))
            vector[self._units[3]] = LOG_FLOOR
            if len(self._vectors) >= self._limit:
                self._vectors.clear()
            hit = self._vectors[key] = (vector, math.log(max(float(dist[_EOS]), FLOOR)))
        return hit

    def log_prob_vector(self, context, units: list) -> np.ndarray:
        """(len(units),) log P(unit | context): `context` is the hypothesis so far as indices into
        `units` (the tokenizer's unit strings). Units the LM never saw (blank, <unk>) get the floor."""
        return self._vector(context, units)[0]

    def end_log_prob(self, context, units: list) -> float:
        """log P(sentence end | context), context as in `log_prob_vector`."""
        return self._vector(context, units)[1]

    def num_ngrams(self) -> int:
        return sum(len(w) for w in self.words)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Arrays as tensors, so a checkpoint loads with torch.load(weights_only=True)."""
        tensors = lambda arrays: [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]  # noqa: E731
        return {"kind": KIND, "order": self.order, "vocab": self.vocab,
                "discounts": [list(map(float, d)) for d in self.discounts] if self.discounts else None,
                "keys": tensors(self.keys[1:]), "offsets": tensors(self.offsets), "words": tensors(self.words),
                "probs": tensors(self.probs), "gammas": tensors(self.gammas)}

    @classmethod
    def from_state_dict(cls, state: dict):
        kind = state.get("kind")
        if kind == KIND:
            arrays = lambda name: [t.numpy() for t in state[name]]  # noqa: E731
            return cls(state["order"], state["vocab"], [np.zeros(0, np.int64)] + arrays("keys"),
                       arrays("offsets"), arrays("words"), arrays("probs"), arrays("gammas"), state.get("discounts"))
        if kind != "char_ngram_kn":
            raise ValueError(f"unknown language model kind {kind!r}")
        # Checkpoints before issue 13: counts[n][context string][char] (context padded with BOS),
        # as nested dicts or as one zlib string of "context US char US count" records joined by RS.
        counts = state.get("counts")
        if counts is None:
            counts = [{} for _ in range(state["order"])]
            text = zlib.decompress(state["counts_blob"]).decode("utf-8")
            for record in text.split("\x1e") if text else []:
                ctx, c, n = record.split("\x1f")
                counts[len(ctx)].setdefault(ctx, {})[c] = int(n)
        return cls(state["order"], *_legacy_tables(state["order"], counts, state["discount"]))


# ---------------------------------------------------------------------- counting
def _encode(texts: list):
    """Texts -> (vocab, token stream, per-token weight or None for all 1).

    The stream is [BOS u u .. EOS BOS u .. EOS ...] over distinct texts, as int32 vocab ids; each
    token weighs as many times as its text occurs. Mask tokens become private-use characters
    so that the whole corpus is one string, split into code points by numpy."""
    counts = Counter(texts)
    big = "\n".join(counts)
    if BOS in big or EOS in big:  # never in normalised text; they would cut a transcript in two
        counts = Counter({t.replace(BOS, "").replace(EOS, ""): n for t, n in counts.items()})
    present = set(np.flatnonzero(np.bincount(np.frombuffer(big.encode("utf-32-le"), np.uint32))).tolist())
    masks, code = {}, 0xF0000
    for token in sorted({m.group(0) for m in MASK_PATTERN.finditer(big)}):
        while code in present:
            code += 1
        masks[token], code = chr(code), code + 1
    big = BOS + (EOS + BOS).join(counts) + EOS
    if masks:
        big = MASK_PATTERN.sub(lambda m: masks[m.group(0)], big)
    cps = np.frombuffer(big.encode("utf-32-le"), np.uint32)
    codes = np.flatnonzero(np.bincount(cps)).tolist()
    unit_of = {ord(c): t for t, c in masks.items()}
    units = sorted(unit_of.get(c, chr(c)) for c in codes if c not in (ord(BOS), ord(EOS)))
    vocab = [BOS, EOS] + units
    index = {u: i for i, u in enumerate(vocab)}
    table = np.zeros(max(codes) + 1, np.int32)
    for c in codes:
        table[c] = index[unit_of.get(c, chr(c))]
    tok = table[cps]
    del cps
    if len(counts) == len(texts):
        return vocab, tok, None  # no text repeats: every token weighs 1
    starts = np.flatnonzero(tok == _BOS)
    weights = np.repeat(np.fromiter(counts.values(), np.int32, len(counts)), np.diff(np.append(starts, len(tok))))
    return vocab, tok, weights


def _group(keys: np.ndarray, weights):
    """Equal int64 keys (>= 0; overwritten) -> (sorted distinct keys, group of each key (int32),
    summed weight per group (int32; weights None: 1 each), one member per group). One in-place sort
    of `key << bits | index` instead of np.unique(return_inverse=True), ~4x slower on 30 M keys."""
    n = len(keys)
    if n == 0:
        return keys[:0], np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64)
    bits = max((n - 1).bit_length(), 1)
    if int(keys.max()).bit_length() + bits <= 63:
        keys <<= bits
        keys |= np.arange(n, dtype=np.int64)
        keys.sort()
        order = keys & ((1 << bits) - 1)
        keys >>= bits
    else:  # keys too large to pack: slower, same result
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
    new = np.empty(n, bool)
    new[0] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    group = np.empty(n, np.int32)
    group[order] = np.cumsum(new, dtype=np.int32) - 1
    del new
    counts = np.diff(np.append(starts, n)) if weights is None else np.add.reduceat(weights[order], starts)
    return keys[starts], group, counts.astype(np.int32), order[starts]


HIST = 1 << 16  # counts above this are alike for pruning


def _orders(tok, weights, order: int, B: int):
    """Yields, for n = 1 .. order: (entries of order n, its nodes, raw counts of order n+1 or None).

    Order n's entries are its distinct n-grams: {ctx: id of the context's node at level n-1,
    word, raw: count, bos_first: starts with BOS (n > 1), adjusted: the count Kneser-Ney smooths}. The
    adjusted count is the raw count at the highest order and for n-grams that start with BOS, and
    otherwise the continuation count: how many distinct words precede the n-gram. The nodes of
    level n are the same n-grams as (sorted keys, raw counts), the key of one being `id of its
    suffix of n-1 words * B + its first word`; they are the contexts of order n+1."""
    P = len(tok)
    starts = np.flatnonzero(tok == _BOS)
    spos = np.arange(P, dtype=np.int32)
    spos -= np.repeat(starts, np.diff(np.append(starts, P))).astype(np.int32)
    del starts
    node = tok  # id of the n-gram ending at each position (level 1: the word)
    raw = np.bincount(tok, weights, minlength=B).astype(np.int32)
    cur = {"ctx": np.zeros(B - 1, np.int32), "word": np.arange(1, B, dtype=np.int32), "raw": raw[1:]}
    nodes = (np.arange(B, dtype=np.int64), raw)  # level 1: every word
    for n in range(1, order + 1):
        nxt = cont = None
        if n < order:  # level n+1, and with it the continuation counts of level n
            idx = np.flatnonzero(spos >= n)  # positions where an (n+1)-gram ends
            keys = node[idx].astype(np.int64)
            keys *= B
            keys += tok[idx - n]
            ukeys, group, nraw, rep = _group(keys, None if weights is None else weights[idx])
            del keys
            rep = idx[rep]
            cont = np.bincount(ukeys // B, minlength=len(nodes[0]))
            nxt = {"ctx": node[rep - 1], "word": tok[rep], "raw": nraw, "bos_first": ukeys % B == _BOS}
            node = np.empty(P, np.int32)  # only positions in idx are read again
            node[idx] = group
            del idx, group, rep
        if cont is None:
            cur["adjusted"] = cur["raw"]
        elif n == 1:
            cur["adjusted"] = cont[cur["word"]].astype(np.int32)
        else:
            cur["adjusted"] = np.where(cur["bos_first"], cur["raw"], cont).astype(np.int32)
        yield cur, nodes, (nxt["raw"] if nxt else None)
        if nxt:
            cur, nodes = nxt, (ukeys, nraw)


def _count(tok, weights, order: int, B: int, max_ngrams: int, discount) -> dict:
    """Counts of every order -> Kneser-Ney probabilities -> pruning -> lookup arrays.

    Counts are dropped as soon as each order is done with, keeping only n-grams that no pruning
    within `max_ngrams` could remove, so that memory stays near the size of one order."""
    floors = [1, 1]  # floors[n]: no threshold of order n can be lower (unigrams: never pruned)
    entries, contexts, hists, n_nodes = [], [None], [], [1]
    for n, (cur, nodes, next_raw) in enumerate(_orders(tok, weights, order, B), start=1):
        if next_raw is not None:
            floors.append(max(floors[-1], _lowest_threshold(next_raw, max_ngrams)))
        adjusted = cur["adjusted"]
        D = _discounts(adjusted, discount)
        total = np.bincount(cur["ctx"], adjusted, minlength=n_nodes[-1])
        p = (adjusted - D[np.minimum(adjusted, 3)]) / total[cur["ctx"]]
        keep = cur["raw"] >= floors[n]
        entries.append({"ctx": cur["ctx"][keep], "word": cur["word"][keep].astype(np.int32),
                        "p": p[keep].astype(np.float32), "raw": cur["raw"][keep], "D": D[1:].tolist()})
        hists.append(np.cumsum(np.bincount(np.minimum(cur["raw"], HIST), minlength=HIST + 1)[::-1])[::-1])
        if n < order:  # level-n nodes that can be the context of a kept (n+1)-gram
            can = nodes[1] >= floors[n + 1]
            contexts.append((np.flatnonzero(can), nodes[0][can]))
            n_nodes.append(len(nodes[0]))
        del cur, nodes, adjusted, total, p, keep
    return _assemble(order, B, entries, contexts, _thresholds(hists, max_ngrams))


def count_ngrams(texts, order: int) -> list:
    """[{n-gram as a tuple of units: (raw count, adjusted count)} for n = 1 .. order], BOS and EOS
    as in the model: what `train` smooths, before pruning (for tests and inspection)."""
    vocab, tok, weights = _encode(list(texts))
    B, out, names = len(vocab), [], [{0: ()}]  # names[m]: node id at level m -> its m units
    for n, (cur, nodes, _) in enumerate(_orders(tok, weights, order, B), start=1):
        parent, first = (nodes[0] // B).tolist(), (nodes[0] % B).tolist()
        names.append({i: (vocab[f],) + names[n - 1][p] for i, (p, f) in enumerate(zip(parent, first))})
        out.append({names[n - 1][c] + (vocab[w],): (int(r), int(a)) for c, w, r, a in
                    zip(cur["ctx"].tolist(), cur["word"].tolist(), cur["raw"].tolist(), cur["adjusted"].tolist())})
    return out


def _lowest_threshold(raw: np.ndarray, max_ngrams: int) -> int:
    """The lowest count threshold that leaves at most max_ngrams of these n-grams."""
    if len(raw) <= max_ngrams:
        return 1
    return int(np.partition(raw, len(raw) - max_ngrams - 1)[len(raw) - max_ngrams - 1]) + 1


def _discounts(adjusted: np.ndarray, fixed) -> np.ndarray:
    """[0, D1, D2, D3+] for counts 1, 2, >= 3: Chen & Goodman's estimates from counts of counts,
    or KenLM's fallback (0.5, 1, 1.5) where those are undefined (small corpora)."""
    if fixed is not None:
        return np.array([0.0, fixed, fixed, fixed])
    n = np.bincount(np.minimum(adjusted, 5), minlength=6)[1:5].astype(float)
    if (n > 0).all():
        y = n[0] / (n[0] + 2 * n[1])
        d = np.array([1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]])
        if (d > 0).all() and (d < [1, 2, 3]).all():
            return np.concatenate([[0.0], d])
    return np.array([0.0, 0.5, 1.0, 1.5])


def _thresholds(hists: list, max_ngrams: int) -> list:
    """Count thresholds per order (unigrams always 1), raised highest order first and kept
    non-decreasing with the order until at most `max_ngrams` n-grams remain."""
    t = [1] * len(hists)
    total = lambda: sum(int(h[min(k, HIST)]) for h, k in zip(hists, t))  # noqa: E731
    while len(t) > 1 and total() > max_ngrams and t[1] < HIST:
        lagging = [i for i in range(1, len(t)) if t[i] < t[-1]]
        t[max(lagging) if lagging else -1] += 1
    return t


def _assemble(order: int, B: int, entries: list, contexts: list, thresholds: list) -> dict:
    """Pruned entries -> lookup arrays. Contexts are numbered afresh among those kept (a kept
    context's shorter contexts are kept too, so that the lookup walk reaches it).

    entries[n-1]: order n's {ctx (full id of a level n-1 node), word, p, raw}; contexts[m]: the
    level-m nodes that may be contexts, as (full ids, keys in the full numbering)."""
    kept = [{k: e[k][e["raw"] >= t] for k in ("ctx", "word", "p")} for e, t in zip(entries, thresholds)]
    needed, needed_keys, suffixes = [np.zeros(1, np.int64)] + [None] * (order - 1), [None] * order, None
    for m in range(order - 1, 0, -1):  # contexts of kept n-grams, and their suffixes
        ids = np.unique(kept[m]["ctx"]) if suffixes is None else np.union1d(kept[m]["ctx"], suffixes)
        full_ids, full_keys = contexts[m]
        pos = np.minimum(np.searchsorted(full_ids, ids), max(len(full_ids) - 1, 0))
        if len(ids) and (full_ids[pos] != ids).any():
            raise AssertionError(f"a context of {m} units was pruned but an n-gram after it kept")
        needed[m], needed_keys[m] = ids, full_keys[pos]
        suffixes = needed_keys[m] // B
    word_dtype = np.int16 if B < 2 ** 15 else np.int32
    keys, offsets, words, probs, gammas = [np.zeros(0, np.int64)], [], [], [], []
    for m in range(order):  # contexts of m units, predicting order m+1
        if m:
            parents = needed_keys[m] // B
            parents = np.searchsorted(needed[m - 1], parents) if m > 1 else parents
            keys.append((parents * B + needed_keys[m] % B).astype(np.int64))  # still sorted
        e, n_nodes = kept[m], len(needed[m])
        ctx = np.searchsorted(needed[m], e["ctx"]) if m else np.zeros(len(e["word"]), np.int64)
        sort = np.lexsort((e["word"], ctx))
        ctx, w, p = ctx[sort], e["word"][sort], e["p"][sort]
        counts = np.bincount(ctx, minlength=n_nodes)
        offsets.append(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32 if len(ctx) < 2 ** 31 else np.int64))
        mass = np.bincount(ctx, p.astype(np.float64), minlength=n_nodes)
        gammas.append(np.clip(1.0 - mass, 0.0, 1.0).astype(np.float32))
        words.append(w.astype(word_dtype))
        probs.append(p.astype(np.float32))
    return {"keys": keys, "offsets": offsets, "words": words, "probs": probs, "gammas": gammas,
            "discounts": [e["D"] for e in entries]}


def _legacy_tables(order: int, counts: list, discount: float) -> tuple:
    """A model saved before issue 13 (character contexts padded with BOS, one fixed discount,
    already pruned) -> (vocab, lookup arrays) with the same probabilities."""
    chars = sorted({c for table in counts for nxt in table.values() for c in nxt} - {BOS, EOS})
    vocab = [BOS, EOS] + chars
    index = {c: i for i, c in enumerate(vocab)}
    B = len(vocab)
    # contexts of every length, with their suffixes (the old model backed off through them too)
    levels = [dict() for _ in range(order)]  # level m: context string -> key in the full numbering
    names = [set() for _ in range(order)]
    for n in range(1, order):
        for ctx in counts[n]:
            for j in range(len(ctx)):
                names[len(ctx) - j].add(ctx[j:])
    ids = [{"": 0}]
    for m in range(1, order):
        keyed = sorted((ids[m - 1][c[1:]] * B + index[c[0]], c) for c in names[m])
        ids.append({c: i for i, (_, c) in enumerate(keyed)})
        levels[m] = np.array([k for k, _ in keyed], np.int64)
    entries = []
    for n in range(order):
        ctx, word, p = [], [], []
        for c, nxt in counts[n].items():
            total = sum(nxt.values())
            for w, k in nxt.items():
                ctx.append(ids[n][c])
                word.append(index[w])
                p.append(max(k - discount, 0.0) / total)
        entries.append({"ctx": np.array(ctx, np.int64), "word": np.array(word, np.int32),
                        "p": np.array(p, np.float32), "raw": np.ones(len(ctx), np.int64),
                        "D": [discount] * 3})
    contexts = [None] + [(np.arange(len(levels[m]), dtype=np.int64), levels[m]) for m in range(1, order)]
    tables = _assemble(order, B, entries, contexts, [1] * order)
    return vocab, tables["keys"], tables["offsets"], tables["words"], tables["probs"], tables["gammas"], \
        tables["discounts"]
