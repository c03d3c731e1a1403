"""Each output unit (char, jamo, spm) trains and decodes to ordinary Korean text (NFC syllables);
both competition layouts train and submit through main.py given only the dataset path."""
import os
import unicodedata

import pytest
import torch
from data_corpora import make_2019, make_2022, one_torch_thread, run_main, tone_audio  # noqa: F401 (autouse fixture)

from modules.features import FeatureConfig
from modules.transcribe.normalize import TextConfig
from modules.transcribe.corpus import Utterance
from modules.transcribe.recognizer import SpeechRecognizer
from modules.transcribe.tokenizers import build_tokenizer
from modules.transcribe.trainer import NO_AUGMENTATION, SpeechTrainer, TrainConfig

OVERFIT = ["안녕 하세요", "감사 합니다", "&name& 입니다"]


def is_ordinary_korean(text: str) -> bool:
    """NFC, and every character a Hangul syllable, a space or part of a mask token (no loose jamo)."""
    plain = text
    for mask in ("&name&",):
        plain = plain.replace(mask, "")
    return text == unicodedata.normalize("NFC", text) and all("가" <= c <= "힣" or c == " " for c in plain)


@pytest.mark.parametrize("unit", ["char", "jamo", "spm"])
def test_tiny_overfit_decodes_korean_text(tmp_path, unit):
    torch.manual_seed(0)
    utts = []
    for i, text in enumerate(OVERFIT):
        path = str(tmp_path / f"u{i}")
        (tone_audio(i, seconds=2.0) * 32767).astype("<i2").tofile(path)
        utts.append(Utterance(path, text, 2.0))
    tokenizer = build_tokenizer(unit, OVERFIT, vocab_size=30)
    recognizer = SpeechRecognizer.create("deepspeech2", tokenizer, FeatureConfig(), TextConfig(),
                                         torch.device("cpu"), rnn_hidden=96, rnn_layers=2, time_stride=4)
    config = TrainConfig(**NO_AUGMENTATION, epochs=100, lr=4e-3, specaugment=False, warmup_fraction=0.02)
    trainer = SpeechTrainer(recognizer, config, utts, utts)
    trainer.fit()
    hyps = trainer.evaluate()["val_examples"]
    assert sorted(h for h, _ in hyps) == sorted(OVERFIT), hyps
    assert all(is_ordinary_korean(h) for h, _ in hyps)


@pytest.mark.parametrize("layout", ["2019", "2022"])
def test_layout_trains_and_submits_with_only_the_dataset_path(tmp_path, monkeypatch, layout):
    make = make_2019 if layout == "2019" else make_2022
    root = make(tmp_path / "ds")
    nsml = run_main(monkeypatch, root, tmp_path / "ckpt",
                    ["--dataset_path", root, "--epochs", "1", "--rnn_hidden", "32", "--rnn_layers", "1"])
    assert "best" in nsml.saved
    import main

    kit = main.Kit(None, torch.device("cpu"))  # a fresh process at submit time: only the checkpoint
    main.bind_model(kit)
    nsml.load("best")
    test_dir = tmp_path / "test_data"
    test_dir.mkdir()
    for i in range(3):
        (tone_audio(i) * 32767).astype("<i2").tofile(test_dir / f"test_{i}")
    records = nsml.bound["infer"](str(test_dir))
    assert [r["filename"] for r in records] == ["test_0", "test_1", "test_2"]
    assert all(isinstance(r["text"], str) for r in records)
    assert isinstance(nsml.bound["infer"](os.path.join(test_dir, "test_1")), str)
