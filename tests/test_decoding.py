"""CTC prefix beam search and the character n-gram language model."""
import math

import torch
import torch.nn.functional as F

from modules.checkpoint import load_file, save_file
from modules.transcribe.decoding import DecoderConfig, ctc_greedy_decode, ctc_prefix_beam_search
from modules.transcribe.lm import CharNgramLM


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


def test_lm_prefers_seen_text_and_is_normalised():
    texts = ["안녕하세요 반갑습니다", "오늘 날씨가 좋네요", "안녕히 가세요"] * 3
    lm = CharNgramLM.train(texts, order=4)
    assert lm.score("안녕하세요") > lm.score("요세하녕안") + 5
    assert lm.score("오늘 날씨가 좋네요") > lm.score("오늘 가씨날 좋네요")
    for context in ["", "안녕", "날씨가 ", "없는문맥"]:
        dist = lm._distribution("\x02" * 3 + context)
        assert math.isclose(dist.sum(), 1.0, rel_tol=1e-9) and (dist > 0).all()


def test_lm_round_trips_through_a_weights_only_checkpoint(tmp_path):
    lm = CharNgramLM.train(["가나다라", "가나", "다라마"], order=3)
    path = str(tmp_path / "model.pt")
    save_file({"lm": lm.state_dict()}, path)
    loaded = CharNgramLM.from_state_dict(load_file(path)["lm"])  # torch.load(weights_only=True)
    for text in ["가나다", "라마", "마가"]:
        assert loaded.score(text) == lm.score(text)
    assert loaded.counts == lm.counts and isinstance(lm.state_dict()["counts_blob"], bytes)
    # checkpoints from before the compact format (counts as nested dicts) still load
    legacy = {"kind": "char_ngram_kn", "order": lm.order, "discount": lm.discount, "counts": lm.counts}
    assert CharNgramLM.from_state_dict(legacy).score("가나다") == lm.score("가나다")


def test_lm_pruning_bounds_size_and_stays_normalised():
    texts = ["가나다라마바사", "아자차카타파하", "가나다 아자차", "마바사 카타파"] * 2 + ["하파타카차자아"]
    full = CharNgramLM.train(texts, order=4)
    small = CharNgramLM.train(texts, order=4, max_ngrams=60)
    size = lambda lm: sum(len(nxt) for table in lm.counts for nxt in table.values())  # noqa: E731
    assert size(small) < size(full)
    assert math.isclose(small._distribution("\x02\x02가").sum(), 1.0, rel_tol=1e-9)
    assert small.score("가나다라") > small.score("라다나가")


def test_lm_cache_stays_within_its_bound_and_gives_the_same_scores():
    texts = ["가나다라마바사", "아자차카타파하", "가나다 아자차", "마바사 카타파"] * 3
    lm = CharNgramLM.train(texts, order=4)
    lm._cache_limit = 5  # a long decode: the cache is cleared whenever it fills
    units = ["<blank>", "<unk>"] + lm.vocab + ["&name&"]
    vectors = {}
    for i in range(200):
        context = texts[i % len(texts)][: i % 7]
        vectors[context] = lm.log_prob_vector(context, units)
        assert len(lm._cache) <= 5
    fresh = CharNgramLM(lm.order, lm.counts, lm.discount)
    for context, vector in vectors.items():
        assert (fresh.log_prob_vector(context, units) == vector).all()
        assert vector[-1] == vector[1] == math.log(1e-10)  # multi-char and unknown units floor


def test_lm_counts_a_seeded_sample_of_at_most_max_texts():
    texts = [f"{a}{b}" for a in "가나다라마" for b in "바사아자차"]
    lm = CharNgramLM.train(texts, order=2, max_texts=5)
    starts = sum(lm.counts[1].get("\x02", {}).values())  # one sentence start per counted text
    assert starts == 5
    again = CharNgramLM.train(texts, order=2, max_texts=5)
    assert again.counts == lm.counts
