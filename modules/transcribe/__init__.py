"""The transcription task: Korean speech -> text, scored by CER (the NSML speech tracks).

    options.py     its command-line options and presets      recipe.py      train a recognizer from the plan
    auto.py        --recipe auto: choices by device and data plan.py        options -> the run's one plan
    corpus.py      2019/2022 dataset layouts                 split.py       the train/validation split
    dataset.py     utterances as tensors                     tokenizers.py  output units (jamo, char, spm)
    models/        acoustic models, one file each            recognizer.py  features -> model -> text
    trainer.py     the speech part of the training loop      decoding.py    greedy, beam search
    lm.py          the n-gram LM                             fusion.py      LM weights chosen on validation
    inference.py   batched transcription of a folder         feature_cache.py  optional on-disk features
    normalize.py   KsponSpeech tags, dual transcriptions, masks
"""
import os

from ..options import from_args
from .inference import transcribe_files, transcribe_folder
from .options import Options, add_arguments, parse_options
from .recipe import train
from .recognizer import SpeechRecognizer

NAME = "transcribe"


def options_from_args(args) -> Options:
    return from_args(Options, args)


def load(state: dict, device):
    recognizer = SpeechRecognizer.from_state_dict(state["recognizer"], device)
    print(f"[load] {recognizer.model_name}, {len(recognizer.tokenizer)} units", flush=True)
    return recognizer


def infer(recognizer: SpeechRecognizer, path: str):
    """A folder gives `[{'filename', 'text'}, ...]` sorted by filename (2022 protocol); a single
    file gives its transcript (2019 per-file protocol)."""
    if os.path.isdir(path):
        return transcribe_folder(recognizer, path)
    return transcribe_files(recognizer, [path], progress=False)[0]


__all__ = ["NAME", "Options", "add_arguments", "options_from_args", "parse_options", "train", "load", "infer"]
