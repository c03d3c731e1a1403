"""Unit tests of the kit's building blocks: features, text units, CER, decoding, splits, batching, checkpoints."""
import os
import threading

import numpy as np
import pytest
import torch

from modules.audio import AudioError, load_audio
from modules.checkpoint import load_file, save_file
from modules.features import FeatureConfig, LogMelFilterbank, SpecAugmentConfig, spec_augment
from modules.metrics import cer
from modules.samplers import DurationBatchSampler
from modules.transcribe.normalize import TextConfig, normalize_text
from modules.transcribe.corpus import Utterance
from modules.transcribe.decoding import ctc_greedy_decode
from modules.transcribe.models import build_model
from modules.transcribe.split import split_by_sentence
from modules.transcribe.tokenizers import CharTokenizer, tokenizer_from_state


def test_logmel_shapes_and_normalisation():
    fb = LogMelFilterbank(FeatureConfig())
    waves = torch.randn(3, 16000)
    lengths = torch.tensor([16000, 8000, 4000])
    feats, frames = fb(waves, lengths)
    assert feats.shape == (3, 101, 80)
    assert frames.tolist() == [99, 49, 24]  # frames whose 512-sample window ends inside the signal
    # padded frames are zero; real frames are mean 0 / std 1 per mel bin
    assert feats[2, 24:].abs().sum() == 0
    real = feats[1, :49]
    assert torch.allclose(real.mean(0), torch.zeros(80), atol=1e-4)
    assert torch.allclose(real.std(0, unbiased=False), torch.ones(80), atol=1e-2)


def test_features_of_a_file_do_not_depend_on_batch_padding():
    fb = LogMelFilterbank(FeatureConfig())
    wave = torch.randn(12000)
    alone, _ = fb(wave[None], torch.tensor([12000]))
    padded = torch.cat([wave, torch.zeros(4000)])
    batched, _ = fb(torch.stack([padded, torch.randn(16000)]), torch.tensor([12000, 16000]))
    assert torch.allclose(alone[0], batched[0, : alone.size(1)], atol=1e-4)


def test_spec_augment_masks_only_within_length_and_keeps_input():
    feats = torch.ones(2, 100, 80)
    lengths = torch.tensor([100, 50])
    out = spec_augment(feats, lengths, SpecAugmentConfig(time_masks=2, time_width=0.2, freq_masks=2, freq_width=10),
                       generator=torch.Generator().manual_seed(0))
    assert feats.eq(1).all()  # the input batch is not modified in place
    assert out.eq(0).any() and out.eq(1).any()


def test_char_tokenizer_round_trip_and_state():
    texts = ["조수석 문 다시 한번 열어 줘", "이동 경로 갓길로 설정"]
    tok = CharTokenizer.build(texts)
    for t in texts:
        assert tok.decode(tok.encode(t)) == t
    restored = tokenizer_from_state(tok.state_dict())
    assert restored.units == tok.units
    with pytest.warns(UserWarning, match="not in the vocabulary"):
        ids = tok.encode("뷁")
    assert ids == [tok.index["<unk>"]]


def test_normalize_text_whitespace_and_no_spaces():
    assert normalize_text("  에어컨   켜 줘\n") == "에어컨 켜 줘"
    assert normalize_text("에어컨 켜 줘", TextConfig(keep_spaces=False)) == "에어컨켜줘"


@pytest.mark.parametrize("hyps,refs,expected", [
    (["안녕하세요"], ["안녕하세요"], 0.0),
    (["안녕 하세요"], ["안녕하세 요"], 0.0),          # spaces removed from both sides
    (["안녕하세"], ["안녕하세요"], 1 / 5),
    (["", "가나"], ["가나다", "가나"], 3 / 5),       # corpus level: Σ edits / Σ reference length
    (["가나다라마"], ["가"], 4.0),                   # not clipped at 1
])
def test_cer_on_known_pairs(hyps, refs, expected):
    assert cer(hyps, refs) == pytest.approx(expected)


def test_greedy_decode_merges_repeats_and_drops_blanks():
    # frames: a a _ a b b _ _ (blank=0, a=1, b=2) over length 8; second utterance only 3 frames valid
    path = [1, 1, 0, 1, 2, 2, 0, 0]
    log_probs = torch.full((2, 8, 3), -10.0)
    for t, k in enumerate(path):
        log_probs[0, t, k] = 0.0
        log_probs[1, t, k] = 0.0
    assert ctc_greedy_decode(log_probs, torch.tensor([8, 3])) == [[1, 1, 2], [1]]


def _utts(texts):
    return [Utterance(f"/x/{i}", t, 1.0 + i % 3) for i, t in enumerate(texts)]


def test_split_never_shares_a_sentence_and_is_reproducible():
    texts = [f"문장 {i % 37}" for i in range(300)] + ["문장 1"]  # repeated sentences; one with extra spaces
    utts = _utts(texts)
    train, valid = split_by_sentence(utts, 0.2, seed=3)
    assert len(train) + len(valid) == len(utts)
    assert not {u.text.replace(" ", "") for u in train} & {u.text.replace(" ", "") for u in valid}
    assert 0.15 < len(valid) / len(utts) < 0.3
    again = split_by_sentence(utts, 0.2, seed=3)
    assert [u.path for u in again[1]] == [u.path for u in valid]
    other = split_by_sentence(utts, 0.2, seed=4)
    assert [u.path for u in other[1]] != [u.path for u in valid]


def test_duration_batches_respect_budget_and_cover_everything():
    rng = np.random.default_rng(0)
    durations = rng.uniform(0.5, 12.0, size=500)
    sampler = DurationBatchSampler(durations, batch_seconds=60.0, shuffle=True, seed=0)
    seen = sorted(i for b in sampler for i in b)
    assert seen == list(range(500))
    for b in sampler:
        assert len(b) == 1 or max(durations[i] for i in b) * len(b) <= 60.0
    assert sampler.padding_fraction(durations) < 0.1
    first = [tuple(b) for b in sampler]
    sampler.set_epoch(1)
    assert [tuple(b) for b in sampler] != first  # reshuffled between epochs


def test_checkpoint_round_trip_is_weights_only_and_atomic(tmp_path):
    path = str(tmp_path / "model.pt")
    save_file({"w": torch.arange(3.0), "meta": {"units": ["a", "b"]}}, path)
    assert load_file(path)["meta"]["units"] == ["a", "b"]

    with pytest.raises(Exception):
        save_file({"bad": threading.Lock()}, path)  # save fails midway
    assert torch.equal(load_file(path)["w"], torch.arange(3.0))  # previous file intact
    assert [f for f in os.listdir(tmp_path) if f != "model.pt"] == []  # no temp file left behind


def test_deepspeech2_output_lengths_match_forward():
    model = build_model("deepspeech2", n_mels=80, vocab_size=10, rnn_hidden=32, rnn_layers=1)
    feats = torch.randn(2, 97, 80)
    lengths = torch.tensor([97, 40])
    log_probs, out_lengths = model(feats, lengths)
    assert log_probs.shape[:2] == (2, out_lengths.max())
    assert out_lengths.tolist() == model.output_lengths(lengths).tolist()
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, log_probs.size(1)), atol=1e-4)


def test_load_audio_rejects_empty_and_reads_pcm(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(str(empty))
    pcm = tmp_path / "idx_0"
    (np.array([0, 16384, -32768], dtype="<i2")).tofile(pcm)
    assert load_audio(str(pcm)).tolist() == [0.0, 0.5, -1.0]
