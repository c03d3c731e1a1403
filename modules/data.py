"""Datasets: reading a competition layout, the train/validation split, batching by duration.

Bad input never stops a run: every file that cannot be used is named in one
warning and left out, and a summary says how many were.
"""
import csv
import io
import os
import random
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .audio import AudioError, audio_duration, load_audio
from .text import TextConfig, normalize_text


@dataclass
class Utterance:
    path: str
    text: str
    duration: float
    speaker: Optional[str] = None


def read_text_file(path: str) -> str:
    """Decode a label file: UTF-8 (with or without BOM), else CP949 (older Korean Windows tools)."""
    raw = open(path, "rb").read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp949")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: neither UTF-8 nor CP949 ({e})") from e
    warnings.warn(f"{path}: not UTF-8; read as CP949")
    return text


def read_label_csv(path: str) -> list:
    """Rows of a `filename,text` CSV with a header, as (filename, text) pairs."""
    rows = list(csv.reader(io.StringIO(read_text_file(path))))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    if "filename" not in header or "text" not in header:
        raise ValueError(f"{path}: expected a header with 'filename' and 'text', got {rows[0]}")
    fi, ti = header.index("filename"), header.index("text")
    pairs = []
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) <= max(fi, ti):
            warnings.warn(f"{path}:{line_no}: malformed row {row!r}; skipped")
            continue
        pairs.append((row[fi].strip(), row[ti]))
    return pairs


def safe_join(folder: str, name: str) -> Optional[str]:
    """`folder/name`, or None when `name` would leave `folder` (absolute path, '..')."""
    folder = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(folder, name))
    return path if os.path.commonpath([folder, path]) == folder and path != folder else None


def read_training_set(dataset_path: str, text_config: TextConfig = TextConfig()) -> list:
    """Utterances of `DATASET_PATH/train` (2022 layout: headerless PCM + `filename,text` CSV)."""
    data_dir = os.path.join(dataset_path, "train", "train_data")
    label_path = os.path.join(dataset_path, "train", "train_label")
    for p in (data_dir, label_path):
        if not os.path.exists(p):
            raise FileNotFoundError(f"dataset {dataset_path!r} has no {os.path.relpath(p, dataset_path)}")

    utterances, skipped, labelled = [], 0, set()
    for name, raw_text in read_label_csv(label_path):
        path = safe_join(data_dir, name)
        if path is None:
            warnings.warn(f"{label_path}: file name {name!r} points outside {data_dir}; skipped")
            skipped += 1
            continue
        labelled.add(path)
        text = normalize_text(raw_text, text_config)
        reason = None
        if not os.path.isfile(path):
            reason = "label row without audio file"
        elif not text:
            reason = "empty transcript"
        else:
            try:
                duration = audio_duration(path)
                if duration <= 0:
                    reason = "empty audio"
            except AudioError as e:
                reason = str(e)
        if reason:
            warnings.warn(f"{path}: {reason}; skipped")
            skipped += 1
            continue
        utterances.append(Utterance(path, text, duration))

    unlabelled = [f for f in os.listdir(data_dir) if os.path.join(os.path.realpath(data_dir), f) not in labelled]
    if unlabelled:
        warnings.warn(f"{data_dir}: {len(unlabelled)} audio files have no label row (e.g. {unlabelled[0]}); ignored")
    if skipped:
        print(f"[data] {skipped} labelled utterances skipped, {len(utterances)} usable", flush=True)
    if not utterances:
        raise ValueError(f"dataset {dataset_path!r}: no usable training utterance")
    return utterances


def split_by_sentence(utterances: list, valid_fraction: float = 0.2, seed: int = 0):
    """Seeded train/validation split in which no sentence appears on both sides.

    Whole sentences are held out, so validation CER measures recognition of unseen
    sentences as the test set does, not recall of memorised ones.
    """
    sentences = sorted({u.text.replace(" ", "") for u in utterances})
    random.Random(seed).shuffle(sentences)
    target = valid_fraction * len(utterances)
    counts = {}
    for u in utterances:
        key = u.text.replace(" ", "")
        counts[key] = counts.get(key, 0) + 1
    valid_sentences, held = set(), 0
    for s in sentences:
        if held >= target:
            break
        valid_sentences.add(s)
        held += counts[s]
    train = [u for u in utterances if u.text.replace(" ", "") not in valid_sentences]
    valid = [u for u in utterances if u.text.replace(" ", "") in valid_sentences]
    return train, valid


class SpeechDataset(torch.utils.data.Dataset):
    """(index, waveform, unit ids) triples; an item whose audio fails to load comes back as None."""

    def __init__(self, utterances: list, tokenizer):
        self.utterances = utterances
        self.targets = [torch.tensor(tokenizer.encode(u.text), dtype=torch.long) for u in utterances]

    def __len__(self):
        return len(self.utterances)

    def __getitem__(self, i):
        try:
            wave = torch.from_numpy(load_audio(self.utterances[i].path))
        except AudioError as e:
            warnings.warn(f"{e}; skipped")
            return None
        return i, wave, self.targets[i]


def collate(items):
    """Pad (index, waveform, ids) items into a batch, dropping items that failed to load."""
    items = [it for it in items if it is not None]
    if not items:
        return None
    indices, waves, targets = zip(*items)
    wave_lengths = torch.tensor([len(w) for w in waves])
    padded = torch.zeros(len(waves), int(wave_lengths.max()))
    for i, w in enumerate(waves):
        padded[i, : len(w)] = w
    return {
        "indices": list(indices),
        "waves": padded,
        "wave_lengths": wave_lengths,
        "targets": torch.cat(targets),
        "target_lengths": torch.tensor([len(t) for t in targets]),
    }


class DurationBatchSampler(torch.utils.data.Sampler):
    """Batches of similar duration whose padded length stays within `batch_seconds`.

    Sorting by duration keeps padding small; the budget bounds peak memory whatever
    the length mix. Batch order is reshuffled every epoch (`set_epoch`); with
    `sortagrad` the first epoch goes from shortest to longest.
    """

    def __init__(self, durations, batch_seconds: float, shuffle: bool = True, seed: int = 0,
                 sortagrad: bool = False, max_batch_size: int = 256):
        order = np.argsort(durations, kind="stable")
        self.batches, batch, longest = [], [], 0.0
        for i in order:
            d = float(durations[i])
            if batch and (max(longest, d) * (len(batch) + 1) > batch_seconds or len(batch) >= max_batch_size):
                self.batches.append(batch)
                batch, longest = [], 0.0
            batch.append(int(i))
            longest = max(longest, d)
        if batch:
            self.batches.append(batch)
        self.shuffle, self.seed, self.sortagrad, self.epoch = shuffle, seed, sortagrad, 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        order = list(range(len(self.batches)))
        if self.shuffle and not (self.sortagrad and self.epoch == 0):
            random.Random(self.seed + self.epoch).shuffle(order)
        return iter([self.batches[i] for i in order])

    def padding_fraction(self, durations) -> float:
        padded = sum(max(durations[i] for i in b) * len(b) for b in self.batches)
        return 1.0 - float(np.sum(durations)) / padded if padded else 0.0


class BatchByCountSampler(torch.utils.data.Sampler):
    """Batches of `batch_size` utterances in a random order, whatever their durations.

    The 2022 baseline's batching (`--preset baseline2022`): padding grows with the
    length spread of each batch, which DurationBatchSampler avoids. Reshuffled every
    epoch (`set_epoch`); the last batch may be smaller.
    """

    def __init__(self, n_items: int, batch_size: int, shuffle: bool = True, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n_items, self.batch_size, self.shuffle, self.seed, self.epoch = n_items, batch_size, shuffle, seed, 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return (self.n_items + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        order = list(range(self.n_items))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(order)
        return iter([order[i:i + self.batch_size] for i in range(0, self.n_items, self.batch_size)])
