"""LM fusion weights chosen on validation data (modules/transcribe/fusion.py) and saved with 'best' (main.py)."""
from types import SimpleNamespace

import torch
from data_corpora import one_torch_thread, tone_audio  # noqa: F401 (autouse fixture)

from modules.transcribe.corpus import Utterance
from modules.transcribe.decoding import DecoderConfig
from modules.transcribe.fusion import FusionGrid, tune_lm_fusion
from modules.transcribe.tokenizers import CharTokenizer


class ScriptedRecognizer:
    """Decodes every utterance right only under one (lm_weight, lm_bonus); counts model runs."""

    def __init__(self, texts, right=(0.8, 1.0)):
        self.texts, self.right, self.forwards = texts, right, 0
        self.tokenizer = CharTokenizer.build(texts)
        self.feature_config = SimpleNamespace(trim_db=0.0)
        self.model = torch.nn.Identity()
        self.decoder_config = DecoderConfig(decoder="beam", lm_weight=0.3, lm_bonus=0.5)

    def forward(self, waves, lengths):
        self.forwards += 1
        return waves, lengths  # the "log-probs" carry the waves, whose first sample names the text

    def decode(self, log_probs, lengths, decoder):
        ids = [int(round(float(w[0]) * 100)) for w in log_probs]
        right = (decoder.lm_weight, decoder.lm_bonus) == self.right
        return [self.texts[i] if right else self.texts[i][:-1] for i in ids]


def utterances(tmp_path, texts):
    utts = []
    for i, text in enumerate(texts):
        wave = tone_audio(i, seconds=1.0)
        wave[0] = i / 100  # the scripted recognizer reads this back
        path = str(tmp_path / f"u{i}")
        (wave * 32767).astype("<i2").tofile(path)
        utts.append(Utterance(path, text, 1.0))
    return utts


def test_the_grid_point_that_decodes_validation_best_wins(tmp_path):
    texts = ["가나다", "라마바사", "아자차"]
    rec = ScriptedRecognizer(texts)
    results = tune_lm_fusion(rec, utterances(tmp_path, texts))
    assert results[0] == (0.0, 0.8, 1.0)
    assert len(results) == len(FusionGrid.weights) * len(FusionGrid.bonuses) + 1  # + the given (0.3, 0.5)
    assert all(r[0] > 0 for r in results[1:])
    assert rec.forwards == 1  # the acoustic model ran once for all grid points
    assert (rec.decoder_config.lm_weight, rec.decoder_config.lm_bonus) == (0.3, 0.5)  # left as it was


def test_a_tie_keeps_the_given_weights_and_large_sets_are_sampled(tmp_path):
    texts = ["가나", "다라", "마바", "사아"]
    rec = ScriptedRecognizer(texts, right=(9.0, 9.0))  # no grid point is right: every point ties
    results = tune_lm_fusion(rec, utterances(tmp_path, texts), FusionGrid(max_utterances=2))
    assert results[0][1:] == (0.3, 0.5)
    assert all(r[0] == results[0][0] for r in results)


class GradedRecognizer(ScriptedRecognizer):
    """Drops more characters the farther (lm_weight, lm_bonus) is from the right point."""

    def decode(self, log_probs, lengths, decoder):
        ids = [int(round(float(w[0]) * 100)) for w in log_probs]
        distance = 2 * abs(decoder.lm_weight - self.right[0]) + abs(decoder.lm_bonus - self.right[1])
        return [self.texts[i][:len(self.texts[i]) - min(len(self.texts[i]), round(2 * distance))] for i in ids]


def test_the_grid_grows_past_an_upper_edge_the_best_point_lies_on(tmp_path):
    texts = ["가나다라마바사아자차카타파하" * 2, "하가나다라마바사아자차카타파" * 2]
    utts = utterances(tmp_path, texts)
    top_w, top_b = max(FusionGrid.weights), max(FusionGrid.bonuses)
    beyond = (round(top_w * 1.5, 3), round(top_b * 1.5, 3))
    rec = GradedRecognizer(texts, right=beyond)  # best inside the grid: its corner; best of all: beyond it
    results = tune_lm_fusion(rec, utts)
    assert results[0][0] == 0.0 and results[0][1:] == beyond
    assert rec.forwards == 1
    results = tune_lm_fusion(GradedRecognizer(texts, right=beyond), utts, FusionGrid(extensions=0))
    assert results[0][1:] == (top_w, top_b) and results[0][0] > 0
    assert len(results) == len(FusionGrid.weights) * len(FusionGrid.bonuses) + 1  # + the given (0.3, 0.5)


class OneUtteranceRecognizer(ScriptedRecognizer):
    """Only the first utterance depends on the weights: `right` gets its last character right."""

    def decode(self, log_probs, lengths, decoder):
        ids = [int(round(float(w[0]) * 100)) for w in log_probs]
        right = (decoder.lm_weight, decoder.lm_bonus) == self.right
        return [self.texts[i][:-1] if i == 0 and not right else self.texts[i] for i in ids]


def test_a_gain_within_noise_keeps_the_given_weights(tmp_path):
    texts = ["가나다", "라마바", "사아자", "차카타", "파하가", "나다라", "마바사", "아자차", "카타파", "하가나"]
    utts = utterances(tmp_path, texts)
    results = tune_lm_fusion(OneUtteranceRecognizer(texts, right=(0.8, 1.0)), utts)
    # one character of ten utterances: the lowest CER, but a difference of one standard error
    assert results[0][1:] == (0.3, 0.5) and results[1][1:] == (0.8, 1.0) and results[1][0] < results[0][0]
    # without the noise rule, the lowest CER wins
    results = tune_lm_fusion(OneUtteranceRecognizer(texts, right=(0.8, 1.0)), utts, FusionGrid(min_gain_se=0.0))
    assert results[0][1:] == (0.8, 1.0)
