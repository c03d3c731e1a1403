"""Classification data: labels from a CSV or from class-named folders, fixed-length clips.

Two layouts, both under DATASET_PATH/train:
  train_data/<file> + train_label   CSV `filename,label` (one class per clip), or
                                    `filename,<class 1>,<class 2>,...` (a probability per class);
  audio/<label>/*.wav               Speech Commands: one folder per word; `_background_noise_`
                                    holds long recordings cut into `silence` clips.
With a class list (`--classes`), any other label becomes `unknown`; `silence` and
`unknown` are then classes too. Bad files are named in a warning and left out.
"""
import math
import os
import random
import warnings
from dataclasses import dataclass
from typing import Optional

import torch

from ..audio import AudioError, load_audio, usable_duration
from ..text import read_csv_table, safe_join

SILENCE, UNKNOWN = "silence", "unknown"
BACKGROUND_DIR = "_background_noise_"
SINGLE, DISTRIBUTION = "single", "distribution"  # label kinds: a class per clip, or probabilities


@dataclass
class Clip:
    path: str
    target: object          # class index (single) or list of probabilities (distribution)
    duration: float         # seconds of audio this clip may be cut from
    offset: float = 0.0     # start in the file (a piece of a long background recording)
    group: str = ""         # recordings of one speaker: kept on one side of the validation split


@dataclass
class ClipSet:
    clips: list
    classes: list
    kind: str               # SINGLE or DISTRIBUTION


def speaker_group(filename: str) -> str:
    """Speech Commands names files `<speaker>_nohash_<n>.wav`; other names are their own group."""
    base = os.path.basename(filename)
    return base.split("_nohash_")[0] if "_nohash_" in base else base


def map_label(label: str, classes: Optional[list]) -> str:
    return label if classes is None or label in classes or label == SILENCE else UNKNOWN


def with_extra_classes(classes: list) -> list:
    """A keyword list plus `silence` and `unknown`, as Speech Commands scores them."""
    return list(classes) + [c for c in (SILENCE, UNKNOWN) if c not in classes]


def read_label_table(path: str):
    """(kind, class names, rows) of a label CSV with a header.

    `filename,label` -> SINGLE, rows of (filename, label); `filename,a,b,...` -> DISTRIBUTION,
    rows of (filename, probabilities), each row renormalised to sum to 1.
    """
    header, table = read_csv_table(path, required=("filename",))
    if not header:
        raise ValueError(f"{path}: empty label file")
    lower = [h.lower() for h in header]
    fi = lower.index("filename")
    rows = []
    if "label" in lower:
        li = lower.index("label")
        for line_no, row in table:
            if not row[li].strip():
                warnings.warn(f"{path}:{line_no}: malformed row {row!r}; skipped")
                continue
            rows.append((row[fi].strip(), row[li].strip()))
        return SINGLE, sorted({label for _, label in rows}), rows
    columns = [i for i in range(len(header)) if i != fi]
    if not columns:
        raise ValueError(f"{path}: no label column and no class columns")
    for line_no, row in table:
        try:
            probs = [float(row[i]) for i in columns]
        except (IndexError, ValueError):
            probs = None
        if probs is None or min(probs) < 0 or not all(map(math.isfinite, probs)) or sum(probs) <= 0:
            warnings.warn(f"{path}:{line_no}: malformed probability row {row!r}; skipped")
            continue
        total = sum(probs)
        rows.append((row[fi].strip(), [p / total for p in probs]))
    return DISTRIBUTION, [header[i] for i in columns], rows


def _usable(path: str) -> Optional[float]:
    """Duration in seconds, or None (with a warning naming the file) when it cannot be used."""
    duration, problem = usable_duration(path)
    if problem:
        warnings.warn(f"{path}: {problem}; skipped")
    return duration


def read_csv_set(dataset_path: str, classes: Optional[list] = None) -> ClipSet:
    data_dir = os.path.join(dataset_path, "train", "train_data")
    label_path = os.path.join(dataset_path, "train", "train_label")
    kind, found, rows = read_label_table(label_path)
    if kind == SINGLE:
        names = with_extra_classes(classes) if classes else found
        index = {c: i for i, c in enumerate(names)}
        rows = [(f, index[map_label(label, classes)]) for f, label in rows]
    else:
        names = found
    clips = []
    for name, target in rows:
        path = safe_join(data_dir, name)
        if path is None or not os.path.isfile(path):
            warnings.warn(f"{label_path}: no audio file for {name!r} in {data_dir}; skipped")
            continue
        duration = _usable(path)
        if duration is not None:
            clips.append(Clip(path, target, duration, group=speaker_group(name)))
    return ClipSet(clips, names, kind)


def read_folder_set(audio_dir: str, classes: Optional[list] = None, clip_seconds: float = 1.0) -> ClipSet:
    """Speech Commands layout: `audio/<label>/*.wav`; background recordings -> `silence` pieces."""
    folders = sorted(d for d in os.listdir(audio_dir) if os.path.isdir(os.path.join(audio_dir, d)))
    words = [d for d in folders if d != BACKGROUND_DIR]
    names = with_extra_classes(classes) if classes else words + ([SILENCE] if BACKGROUND_DIR in folders else [])
    index = {c: i for i, c in enumerate(names)}
    clips = []
    for folder in folders:
        files = sorted(f for f in os.listdir(os.path.join(audio_dir, folder)) if not f.startswith("."))
        for f in files:
            path = os.path.join(audio_dir, folder, f)
            duration = _usable(path)
            if duration is None:
                continue
            if folder == BACKGROUND_DIR:
                # One `silence` clip per clip-length piece; the pieces of one recording share a group.
                for k in range(int(duration // clip_seconds)):
                    clips.append(Clip(path, index[SILENCE], clip_seconds, offset=k * clip_seconds,
                                      group=f"{BACKGROUND_DIR}/{f}"))
            else:
                clips.append(Clip(path, index[map_label(folder, classes)], duration, group=speaker_group(f)))
    return ClipSet(clips, names, SINGLE)


def read_classification_set(dataset_path: str, classes: Optional[list] = None, clip_seconds: float = 1.0) -> ClipSet:
    audio_dir = os.path.join(dataset_path, "train", "audio")
    if os.path.isdir(audio_dir):
        clip_set = read_folder_set(audio_dir, classes, clip_seconds)
    elif os.path.isfile(os.path.join(dataset_path, "train", "train_label")):
        clip_set = read_csv_set(dataset_path, classes)
    else:
        raise FileNotFoundError(f"dataset {dataset_path!r} has neither train/audio/<label>/ folders "
                                "nor train/train_label")
    if not clip_set.clips:
        raise ValueError(f"dataset {dataset_path!r}: no usable training clip")
    return clip_set


def split_by_group(clips: list, valid_fraction: float = 0.2, seed: int = 0):
    """Seeded train/validation split in which no speaker (group) is on both sides."""
    groups = sorted({c.group for c in clips})
    random.Random(seed).shuffle(groups)
    valid_groups = set(groups[: round(valid_fraction * len(groups))])
    return [c for c in clips if c.group not in valid_groups], [c for c in clips if c.group in valid_groups]


def fix_length(wave: torch.Tensor, length: int, random_crop: bool, generator=None) -> torch.Tensor:
    """Pad with silence at the end, or crop to `length` samples: at random (training) or the centre."""
    if len(wave) <= length:
        return torch.nn.functional.pad(wave, (0, length - len(wave)))
    extra = len(wave) - length
    start = int(torch.randint(extra + 1, (1,), generator=generator)) if random_crop else extra // 2
    return wave[start:start + length]


def crops_per_clip(clip: Clip, clip_seconds: float, max_crops: int = 8) -> int:
    """How many random crops a training epoch draws from a clip: one per clip length it holds."""
    return max(1, min(max_crops, int(clip.duration // clip_seconds)))


class ClipDataset(torch.utils.data.Dataset):
    """(index, fixed-length waveform, target); an unreadable file comes back as None.

    Training: a clip longer than the length appears `crops_per_clip` times, each a new
    random crop (the Speech Commands notebooks' `chop_audio`). Validation: one centre crop.
    """

    def __init__(self, clips: list, clip_seconds: float, train: bool, sample_rate: int = 16000):
        self.clips, self.train, self.sample_rate = clips, train, sample_rate
        self.length = int(round(clip_seconds * sample_rate))
        self.entries = [i for i, c in enumerate(clips)
                        for _ in range(crops_per_clip(c, clip_seconds) if train else 1)]

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, k):
        i = self.entries[k]
        clip = self.clips[i]
        try:
            wave = torch.from_numpy(load_audio(clip.path, self.sample_rate))
        except AudioError as e:
            warnings.warn(f"{e}; skipped")
            return None
        if clip.offset:  # a fixed piece of a long recording
            start = int(clip.offset * self.sample_rate)
            wave = wave[start:start + self.length]
        target = torch.tensor(clip.target, dtype=torch.float32 if isinstance(clip.target, list) else torch.long)
        return i, fix_length(wave, self.length, random_crop=self.train), target


def collate_clips(items):
    items = [it for it in items if it is not None]
    if not items:
        return None
    indices, waves, targets = zip(*items)
    return {"indices": list(indices), "waves": torch.stack(waves), "targets": torch.stack(targets)}
