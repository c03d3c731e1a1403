"""Validation on a capped, fixed sample (--valid_max_utterances): each epoch and the final decode score
the same files; a corpus smaller than the cap is scored whole, as before."""
import torch

from data_corpora import one_torch_thread, tone_audio  # noqa: F401 (autouse fixture)
from modules.features import FeatureConfig
from modules.transcribe.normalize import TextConfig
from modules.transcribe.corpus import Utterance
from modules.transcribe.recognizer import SpeechRecognizer
from modules.transcribe.split import capped_sample
from modules.transcribe.tokenizers import build_tokenizer
from modules.transcribe.trainer import NO_AUGMENTATION, SpeechTrainer, TrainConfig

TEXTS = ["가나다", "라마바", "사아자"]


def test_capped_sample_is_fixed_in_order_and_whole_below_the_cap():
    items = list(range(100))
    sample = capped_sample(items, 10, seed=3)
    assert len(sample) == 10 and sample == sorted(sample) and sample == capped_sample(items, 10, seed=3)
    assert capped_sample(items, 10, seed=4) != sample
    assert capped_sample(items, 0) == items and capped_sample(items, 100) == items and capped_sample(items, 500) == items


def trainer_with(tmp_path, n_valid, **config):
    utts = []
    for i in range(3 + n_valid):
        path = str(tmp_path / f"u{i}")
        (tone_audio(i, seconds=0.6) * 32767).astype("<i2").tofile(path)
        utts.append(Utterance(path, TEXTS[i % 3], 0.6))
    rec = SpeechRecognizer.create("deepspeech2", build_tokenizer("char", TEXTS), FeatureConfig(n_mels=40),
                                  TextConfig(), torch.device("cpu"), rnn_hidden=16, rnn_layers=1, conv_channels=4)
    return SpeechTrainer(rec, TrainConfig(**{**NO_AUGMENTATION, "specaugment": False, "num_workers": 0, **config}), utts[:3], utts[3:])


def test_each_validation_scores_the_capped_sample(tmp_path, monkeypatch):
    trainer = trainer_with(tmp_path, n_valid=7, valid_max_utterances=4)
    assert len(trainer.valid_utts) == 7, "the split itself (saved in checkpoints) is whole"
    assert len(trainer.scored_valid_utts) == 4
    scored = []
    decode = trainer.recognizer.decode
    monkeypatch.setattr(trainer.recognizer, "decode", lambda log_probs, *a, **k: scored.append(len(log_probs))
                        or decode(log_probs, *a, **k))
    trainer.evaluate()
    trainer.evaluate()
    assert sum(scored) == 2 * 4


def test_the_default_cap_leaves_a_small_validation_set_whole(tmp_path):
    trainer = trainer_with(tmp_path, n_valid=5)
    assert trainer.config.valid_max_utterances >= 1000
    assert trainer.scored_valid_utts == trainer.valid_utts
