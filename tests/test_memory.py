"""Heap trimming (modules/memory.py): freed heap memory goes back to the system above the mark,
and the trainer trims as it trains."""

import numpy as np
import pytest
import torch
from data_corpora import one_torch_thread, tone_audio  # noqa: F401 (autouse fixture)

from modules.features import FeatureConfig
from modules.memory import HeapTrimmer, resident_mib
from modules.transcribe.normalize import TextConfig
from modules.transcribe.corpus import Utterance
from modules.transcribe.recognizer import SpeechRecognizer
from modules.transcribe.tokenizers import build_tokenizer
from modules.transcribe.trainer import NO_AUGMENTATION, SpeechTrainer, TrainConfig

glibc = pytest.mark.skipif(not HeapTrimmer(1).active, reason="needs glibc's malloc_trim")


@glibc
def test_trimming_returns_freed_heap_holes_to_the_system():
    HeapTrimmer(limit_mib=1)()  # start from a trimmed heap, whatever earlier tests left in it
    before = resident_mib()
    blocks = [np.ones(8192) for _ in range(3000)]  # 64 KiB each: heap memory, below the mmap threshold
    pin = np.ones(8192)  # allocated last, it keeps the heap's top in use, so free() alone cannot shrink it
    del blocks
    held = resident_mib()
    assert held - before > 100, "the freed blocks should still be resident before a trim"
    trim = HeapTrimmer(limit_mib=held / 2)
    assert trim() and trim.trims == 1
    assert resident_mib() < held - 100
    assert pin.sum() == 8192


def test_no_trim_below_the_mark_or_when_disabled():
    assert not HeapTrimmer(limit_mib=0)()
    below = HeapTrimmer(limit_mib=resident_mib() + 10_000)
    assert not below() and below.trims == 0


@glibc
def test_trainer_trims_when_the_process_passes_the_mark(tmp_path):
    utts = []
    for i, text in enumerate(["가나", "다라"]):
        path = str(tmp_path / f"u{i}")
        (tone_audio(i, seconds=1.0) * 32767).astype("<i2").tofile(path)
        utts.append(Utterance(path, text, 1.0))
    rec = SpeechRecognizer.create("deepspeech2", build_tokenizer("char", ["가나", "다라"]), FeatureConfig(),
                                  TextConfig(), torch.device("cpu"), rnn_hidden=16, rnn_layers=1)
    trainer = SpeechTrainer(rec, TrainConfig(**NO_AUGMENTATION, epochs=1, heap_limit_mib=1.0, specaugment=False), utts, utts)
    trainer.fit()  # every process is above 1 MiB: each step and validation batch trims
    assert trainer.trim_heap.trims >= 2
    never = SpeechTrainer(rec, TrainConfig(**NO_AUGMENTATION, epochs=1, heap_limit_mib=0.0, specaugment=False), utts, utts)
    never.fit()
    assert never.trim_heap.trims == 0
