"""The n-gram language model (modules/transcribe/lm.py): counts, Kneser-Ney probabilities, mask units,
pruning, checkpoints old and new."""
import io
import math
import random
import zlib
from collections import defaultdict

import numpy as np
import pytest
import torch

from modules.checkpoint import load_file, save_file
from modules.transcribe.normalize import split_units
from modules.transcribe.lm import BOS, EOS, LOG_FLOOR, CharNgramLM, count_ngrams


def random_texts(seed, n=60, alphabet="가나다라 ", masks=("&name&", "&tel-num&")):
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        units = [rng.choice(list(alphabet) + list(masks)) if rng.random() < 0.9 else rng.choice(masks)
                 for _ in range(rng.randint(0, 9))]
        texts.append("".join(units))
    return texts + texts[:7]  # some texts twice: duplicates are counted with their multiplicity


def brute_force_counts(texts, order):
    """[{n-gram tuple: (raw, adjusted)}]: raw counts, and Kneser-Ney's adjusted counts (raw at the
    highest order and for n-grams starting with BOS, else the number of distinct left neighbours)."""
    raw = [defaultdict(int) for _ in range(order + 1)]
    for text in texts:
        seq = [BOS] + split_units(text) + [EOS]
        for i in range(1, len(seq)):
            for n in range(1, min(order + 1, i + 2)):
                raw[n][tuple(seq[i - n + 1:i + 1])] += 1
    left = [defaultdict(set) for _ in range(order + 1)]
    for n in range(2, order + 1):
        for gram in raw[n]:
            left[n - 1][gram[1:]].add(gram[0])
    return [{g: (k, k if n == order or g[0] == BOS else len(left[n][g])) for g, k in raw[n].items()}
            for n in range(1, order + 1)]


@pytest.mark.parametrize("seed,order", [(0, 1), (1, 2), (2, 3), (3, 5)])
def test_counts_equal_a_brute_force_count(seed, order):
    texts = random_texts(seed)
    assert count_ngrams(texts, order) == brute_force_counts(texts, order)


def reference_kn(texts, order, discounts):
    """log P(w | context) by the textbook recursion over brute-force counts (interpolated
    modified Kneser-Ney, discounts given per order), down to uniform over the vocabulary."""
    counts = brute_force_counts(texts, order)
    vocab = sorted({g[-1] for g in counts[0]})
    tables = [defaultdict(dict) for _ in range(order)]
    for n, table in enumerate(counts):
        for g, (_, a) in table.items():
            tables[n][g[:-1]][g[-1]] = a

    def prob(w, ctx):
        ctx = tuple(ctx[-(order - 1):]) if order > 1 else ()
        lower = prob(w, ctx[1:]) if ctx else 1.0 / len(vocab)
        table = tables[len(ctx)].get(ctx)
        if not table:
            return lower
        d = [0.0] + list(discounts[len(ctx)])
        total = sum(table.values())
        gamma = sum(d[min(a, 3)] for a in table.values()) / total
        a = table.get(w, 0)
        return (max(a - d[min(a, 3)], 0.0) if a else 0.0) / total + gamma * lower

    return prob


def test_probabilities_are_kneser_ney_of_the_counts():
    texts = random_texts(4, n=200, alphabet="가나다라마바 ")
    lm = CharNgramLM.train(texts, order=4)
    assert lm.discounts[2] != [0.5, 1.0, 1.5]  # estimated from counts of counts, not the fallback
    prob = reference_kn(texts, 4, lm.discounts)
    rng = random.Random(0)
    for _ in range(200):
        context = [BOS] + split_units(rng.choice(texts))[: rng.randint(0, 6)]
        w = rng.choice(lm.vocab[1:])
        got = lm._distribution([lm.index[u] for u in context])[lm.index[w]]
        assert math.isclose(got, prob(w, tuple(context)), rel_tol=1e-5)


def test_distributions_sum_to_one_and_prefer_seen_text():
    texts = ["안녕하세요 반갑습니다", "오늘 날씨가 좋네요", "안녕히 가세요"] * 3
    lm = CharNgramLM.train(texts, order=4)
    assert lm.score("안녕하세요") > lm.score("요세하녕안") + 5
    assert lm.score("오늘 날씨가 좋네요") > lm.score("오늘 가씨날 좋네요")
    for context in ["", "안녕", "날씨가 ", "없는문맥"]:
        dist = lm._distribution([0] + [lm.index.get(c, -1) for c in context])
        assert math.isclose(dist.sum(), 1.0, rel_tol=1e-6) and (dist[1:] > 0).all() and dist[0] == 0


def test_a_mask_is_one_unit_with_a_learned_probability():
    texts = ["&name&한테 전화 걸어 줘", "&name&에게 문자 보내 줘", "엄마한테 전화 걸어 줘", "집으로 가 줘"] * 5
    lm = CharNgramLM.train(texts, order=5)
    assert "&name&" in lm.vocab and "&" not in lm.vocab  # one unit, not six characters
    units = ["<blank>", "<unk>", "&name&", "&tel-num&"] + sorted(set("".join(texts)) - set("&name"))
    start = lm.log_prob_vector((), units)
    assert start[units.index("&name&")] > math.log(0.2)       # half the sentences start with it
    assert start[units.index("&tel-num&")] == LOG_FLOOR      # never seen: the floor
    assert start[0] == start[1] == LOG_FLOOR                  # blank and <unk> are no LM units
    after = lm.log_prob_vector((units.index("&name&"),), units)  # the context holds the mask as one unit
    assert after[units.index("한")] > math.log(0.3) and after[units.index("에")] > math.log(0.3)
    assert lm.score("&name&한테 전화 걸어 줘") > lm.score("엄마한테 전화 걸어 줘") - 1
    assert lm.end_log_prob(tuple(units.index(u) for u in split_units("집으로 가 줘")), units) > math.log(0.5)


def test_pruning_keeps_the_size_bound_and_a_normalised_model():
    texts = random_texts(5, n=400, alphabet="가나다라마바사아자 ", masks=("&name&",))
    full = CharNgramLM.train(texts, order=6)
    budget = full.num_ngrams() // 3
    small = CharNgramLM.train(texts, order=6, max_ngrams=budget)
    assert small.num_ngrams() <= budget < full.num_ngrams()
    assert len(small.words[0]) == len(full.words[0])  # unigrams are never pruned
    assert state_bytes(small) < state_bytes(full)
    rng = random.Random(1)
    for _ in range(100):
        context = [0] + [small.index[u] for u in split_units(rng.choice(texts))[: rng.randint(0, 8)]]
        assert math.isclose(small._distribution(context).sum(), 1.0, rel_tol=1e-5)
    common = max(set(texts), key=texts.count)
    assert small.score(common) > small.score(common[::-1]) or common == common[::-1]


def state_bytes(lm):
    buffer = io.BytesIO()
    torch.save(lm.state_dict(), buffer)
    return buffer.tell()


def test_round_trip_through_a_weights_only_checkpoint(tmp_path):
    lm = CharNgramLM.train(["가나다라", "가나", "다라마", "&name&가"], order=3)
    path = str(tmp_path / "model.pt")
    save_file({"lm": lm.state_dict()}, path)
    loaded = CharNgramLM.from_state_dict(load_file(path)["lm"])  # torch.load(weights_only=True)
    for text in ["가나다", "라마", "마가", "&name&가나"]:
        assert loaded.score(text) == lm.score(text)
    assert loaded.vocab == lm.vocab and loaded.discounts == lm.discounts


def legacy_counts(texts, order):
    """The counts as models before issue 13 saved them: contexts padded with order-1 BOS,
    highest order raw, lower orders continuation counts (as their train() built them)."""
    highest, grams = defaultdict(lambda: defaultdict(int)), set()
    for text in texts:
        seq = BOS * (order - 1) + text + EOS
        for i in range(order - 1, len(seq)):
            highest[seq[i - order + 1:i]][seq[i]] += 1
            for n in range(1, order):
                grams.add(seq[i - n:i + 1])
    counts = [defaultdict(lambda: defaultdict(int)) for _ in range(order)]
    counts[order - 1] = highest
    for gram in grams:
        suffix = gram[1:]
        counts[len(suffix) - 1][suffix[:-1]][suffix[-1]] += 1
    return [{c: dict(nxt) for c, nxt in table.items()} for table in counts]


def legacy_log_prob(counts, order, char, context, discount=0.75):
    """The old model's probability (its _distribution, one context at a time)."""
    vocab = sorted({c for nxt in counts[0].values() for c in nxt})
    context = (BOS * (order - 1) + context)[len(context):]  # the last order-1 characters, padded

    def prob(ctx):
        lower = prob(ctx[1:]) if ctx else 1.0 / len(vocab)
        table = counts[len(ctx)].get(ctx)
        if not table:
            return lower
        total = sum(table.values())
        return max(table.get(char, 0) - discount, 0.0) / total + lower * discount * len(table) / total

    return math.log(prob(context))


def test_checkpoints_from_before_issue_16_still_load():
    texts = ["가나다라", "가나", "다라마", "나가나다"] * 2 + ["마바"]
    order = 3
    counts = legacy_counts(texts, order)
    counts[2] = {c: {w: k for w, k in nxt.items() if k > 1} for c, nxt in counts[2].items()}  # pruned, as it did
    counts[2] = {c: nxt for c, nxt in counts[2].items() if nxt}
    records = [f"{c}\x1f{w}\x1f{k}" for table in counts for c, nxt in table.items() for w, k in nxt.items()]
    blob = zlib.compress("\x1e".join(records).encode("utf-8"), 1)
    states = [{"kind": "char_ngram_kn", "order": order, "discount": 0.75, "counts": counts},   # nested dicts
              {"kind": "char_ngram_kn", "order": order, "discount": 0.75, "counts_blob": blob}]  # one zlib string
    for state in states:
        lm = CharNgramLM.from_state_dict(state)
        for text in ["가나다", "라마", "마가", "바바바", "가"]:
            for i in range(len(text) + 1):
                char = text[i] if i < len(text) else EOS
                assert math.isclose(lm.log_prob(char, text[:i]), legacy_log_prob(counts, order, char, text[:i]),
                                    rel_tol=1e-5)
    with pytest.raises(ValueError, match="unknown language model kind"):
        CharNgramLM.from_state_dict({"kind": "word_lstm"})


def test_the_decoder_cache_stays_within_its_bound_and_gives_the_same_vectors():
    texts = ["가나다라마바사", "아자차카타파하", "가나다 아자차", "마바사 카타파", "&name&가"] * 3
    lm = CharNgramLM.train(texts, order=4)
    lm._limit = 5  # a long decode: the caches are cleared whenever they fill
    units = ["<blank>", "<unk>"] + lm.vocab[2:] + ["&tel-num&"]
    vectors = {}
    for i in range(200):
        context = tuple(units.index(u) for u in split_units(texts[i % len(texts)])[: i % 7])
        vectors[context] = lm.log_prob_vector(context, units).copy()
        assert len(lm._cache) <= 5 and len(lm._vectors) <= 5
    fresh = CharNgramLM.from_state_dict(lm.state_dict())
    for context, vector in vectors.items():
        assert np.allclose(fresh.log_prob_vector(context, units), vector, rtol=1e-6)
        assert vector[-1] == vector[1] == LOG_FLOOR  # a unit never seen, and <unk>, floor


def test_every_text_is_counted_unless_a_sample_is_asked_for():
    texts = [f"{a}{b}" for a in "가나다라마" for b in "바사아자차"]
    starts = lambda lm: count_starts(lm)  # noqa: E731
    assert starts(CharNgramLM.train(texts, order=2)) == 5  # every first character follows BOS
    sample = CharNgramLM.train(texts, order=2, max_texts=3)
    assert starts(sample) <= 3
    assert CharNgramLM.train(texts, order=2, max_texts=3).score("가바") == sample.score("가바")


def count_starts(lm):
    """How many distinct units follow BOS in the model."""
    k = int(np.searchsorted(lm.keys[1], 0))  # BOS's node among the contexts of one unit
    return lm.offsets[1][k + 1] - lm.offsets[1][k]


def test_odd_text_neither_crashes_nor_leaks_into_other_units():
    lm = CharNgramLM.train(["", "가\x02나", "\U000F0000&name&", "a\nb"], order=3)
    assert BOS not in lm.vocab[1:] and "&name&" in lm.vocab and "\U000F0000" in lm.vocab
    assert lm.score("가나") > LOG_FLOOR * 3
