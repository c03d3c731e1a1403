"""CTC prefix beam search, with and without the n-gram language model (tests/test_lm.py tests the LM)."""
import random

import pytest
import torch
import torch.nn.functional as F

from modules.metrics import cer
from modules.transcribe.decoding import (
    DecoderConfig,
    ctc_greedy_decode,
    ctc_prefix_beam_search,
)
from modules.transcribe.lm import LOG_FLOOR, CharNgramLM
from modules.transcribe.tokenizers import CharTokenizer, JamoTokenizer


def sequence_log_prob(log_probs, length, ids):
    """log P(ids | frames) summed over all CTC alignments (minus the CTC loss)."""
    return -F.ctc_loss(log_probs[:, None], torch.tensor([ids], dtype=torch.long), torch.tensor([length]),
                       torch.tensor([len(ids)]), reduction="sum").item()


def test_beam_of_one_equals_greedy_on_confident_frames():
    g = torch.Generator().manual_seed(0)
    # Each frame puts >= 90% on one unit (blank or not), as a trained model does.
    best = torch.randint(0, 6, (5, 40), generator=g)
    probs = torch.full((5, 40, 6), 0.1 / 5).scatter_(2, best[..., None], 0.9)
    lengths = torch.tensor([40, 33, 25, 12, 1])
    config = DecoderConfig(decoder="beam", beam_width=1, token_top_k=6, blank_skip=1.0)
    assert ctc_prefix_beam_search(probs.log(), lengths, config) == ctc_greedy_decode(probs.log(), lengths)


def test_beam_finds_a_more_probable_transcript_than_the_best_path():
    # Every frame: blank 0.6, 'a' 0.4. Best path: all blanks -> "" (0.6^3 = 0.216);
    # but "a" sums many alignments (a--, -a-, --a, aa-, ...) = 0.784.
    probs = torch.tensor([[0.6, 0.4, 0.0]] * 3).clamp(min=1e-8)
    log_probs = probs.log()[None]
    greedy = ctc_greedy_decode(log_probs, torch.tensor([3]))[0]
    beam = ctc_prefix_beam_search(log_probs, torch.tensor([3]), DecoderConfig(decoder="beam", beam_width=4))[0]
    assert greedy == [] and beam == [1]
    assert sequence_log_prob(log_probs[0], 3, beam) > sequence_log_prob(log_probs[0], 3, greedy)


def test_beam_search_never_scores_below_greedy_on_random_output():
    g = torch.Generator().manual_seed(3)
    log_probs = (torch.randn(6, 30, 8, generator=g) * 2).log_softmax(-1)
    lengths = torch.tensor([30, 28, 20, 15, 9, 4])
    greedy = ctc_greedy_decode(log_probs, lengths)
    beam = ctc_prefix_beam_search(log_probs, lengths, DecoderConfig(decoder="beam", beam_width=16, token_top_k=8))
    for b in range(6):
        n = int(lengths[b])
        assert sequence_log_prob(log_probs[b], n, beam[b]) >= sequence_log_prob(log_probs[b], n, greedy[b]) - 1e-4


def test_language_model_steers_an_ambiguous_frame():
    # Units: blank, '가', '나'. The acoustics say "가가" or "가나" almost equally;
    # the language model only ever saw "가나".
    units = ["<blank>", "가", "나"]
    probs = torch.tensor([[0.01, 0.98, 0.01], [0.98, 0.01, 0.01], [0.02, 0.50, 0.48]])
    lm = CharNgramLM.train(["가나"] * 20 + ["나가나"], order=3)
    plain = DecoderConfig(decoder="beam", beam_width=4, lm_weight=0.0)
    fused = DecoderConfig(decoder="beam", beam_width=4, lm_weight=1.0, lm_bonus=0.0)
    lengths = torch.tensor([3])
    assert ctc_prefix_beam_search(probs.log()[None], lengths, plain)[0] == [1, 1]
    assert ctc_prefix_beam_search(probs.log()[None], lengths, fused, lm=lm, units=units)[0] == [1, 2]


# A corpus whose labels carry 2022 masks: names spoken, labelled &name&.
MASKED_TRAIN = ["&name&한테 전화 걸어 줘", "&name&에게 문자 보내 줘", "&name& 씨 집으로 가 줘", "엄마한테 전화 걸어 줘",
                "아빠에게 문자 보내 줘", "집으로 가 줘", "음악 틀어 줘", "창문 열어 줘", "&name&한테 음악 틀어 달라고 해"]
MASKED_TEST = ["&name&한테 문자 보내 줘", "&name&에게 전화 걸어 줘", "엄마한테 문자 보내 줘", "&name& 씨 창문 열어 줘",
               "아빠한테 전화 걸어 줘", "&name&에게 음악 틀어 줘"]


def acoustic_log_probs(tokenizer, texts, seed=0):
    """What a fair acoustic model outputs: each unit peaks on one frame (blank between), at 0.45-0.6,
    against a random other unit at 0.2-0.35, which wins one time in five (greedy's errors).
    Masks are recognised, at 0.5 against a syllable at 0.35."""
    rng = random.Random(seed)
    V = len(tokenizer)
    outputs = []
    for text in texts:
        frames = []
        for u in tokenizer.encode(text):
            other = rng.choice([i for i in range(2, V) if i != u and len(tokenizer.units[i]) == 1])
            mask = len(tokenizer.units[u]) > 1
            top, second = (0.5, 0.35) if mask else (rng.uniform(0.45, 0.6), rng.uniform(0.2, 0.35))
            p = torch.full((V,), (1 - top - second) / (V - 2))
            p[u], p[other] = (second, top) if not mask and rng.random() < 0.2 else (top, second)
            blank = torch.full((V,), 0.02 / (V - 1))
            blank[0] = 0.98
            frames += [p, blank]
        outputs.append(torch.stack(frames).log())
    lengths = torch.tensor([len(o) for o in outputs])
    return torch.nn.utils.rnn.pad_sequence(outputs, batch_first=True), lengths


class FlooredMasks:
    """The LM as it was before issue 13: every multi-character unit at the floor."""

    def __init__(self, lm):
        self.lm = lm

    def log_prob_vector(self, context, units):
        vector = self.lm.log_prob_vector(context, units).copy()
        vector[[i for i, u in enumerate(units) if len(u) > 1]] = LOG_FLOOR
        return vector

    def end_log_prob(self, context, units):
        return self.lm.end_log_prob(context, units)


@pytest.mark.parametrize("tokenizer_class,order", [(CharTokenizer, 5), (JamoTokenizer, 10)])
def test_beam_with_the_lm_emits_masks_where_greedy_does(tokenizer_class, order):
    tokenizer = tokenizer_class.build(MASKED_TRAIN + MASKED_TEST)
    lm = CharNgramLM.train(["".join(tokenizer.split(t)) for t in MASKED_TRAIN * 3], order=order)
    assert "&name&" in lm.vocab
    log_probs, lengths = acoustic_log_probs(tokenizer, MASKED_TEST)
    units = tokenizer.units
    fused = DecoderConfig(decoder="beam")  # the default weights (0.8 / 2.0)
    decode = lambda ids: [tokenizer.decode(i) for i in ids]  # noqa: E731
    greedy = decode(ctc_greedy_decode(log_probs, lengths))
    plain = decode(ctc_prefix_beam_search(log_probs, lengths, DecoderConfig(decoder="beam", lm_weight=0.0)))
    with_lm = decode(ctc_prefix_beam_search(log_probs, lengths, fused, lm=lm, units=units))
    floored = decode(ctc_prefix_beam_search(log_probs, lengths, fused, lm=FlooredMasks(lm), units=units))
    masked = [i for i, t in enumerate(MASKED_TEST) if "&name&" in t]
    assert all(greedy[i].count("&name&") == MASKED_TEST[i].count("&name&") for i in masked)
    assert [h.count("&name&") for h in with_lm] == [h.count("&name&") for h in greedy]
    pick = lambda hyps: [hyps[i] for i in masked]  # noqa: E731
    refs = pick(MASKED_TEST)
    assert cer(pick(with_lm), refs) <= cer(pick(plain), refs) and cer(pick(with_lm), refs) <= cer(pick(greedy), refs)
    assert cer(with_lm, MASKED_TEST) < cer(greedy, MASKED_TEST)  # and the LM still helps overall
    # the test can fail: the old LM, which floored masks, dropped them
    assert sum(h.count("&name&") for h in floored) < sum(h.count("&name&") for h in greedy)
