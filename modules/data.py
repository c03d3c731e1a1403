"""Datasets: reading a competition layout, the train/validation split, batching by duration.

Bad input never stops a run: every file that cannot be used is named in one
warning and left out, and a summary says how many were.
"""
import csv
import io
import os
import random
import re
import warnings
from dataclasses import dataclass, replace
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
    return [(r["filename"], r["text"]) for r in read_label_records(path)]


def read_label_records(path: str) -> list:
    """Rows of a `filename,text[,speaker,...]` CSV with a header, as dicts with at least
    'filename' and 'text' (and 'speaker' when the file has that column)."""
    rows = list(csv.reader(io.StringIO(read_text_file(path))))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    if "filename" not in header or "text" not in header:
        raise ValueError(f"{path}: expected a header with 'filename' and 'text', got {rows[0]}")
    records = []
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) < len(header):
            warnings.warn(f"{path}:{line_no}: malformed row {row!r}; skipped")
            continue
        record = dict(zip(header, row))
        record["filename"] = record["filename"].strip()
        records.append(record)
    return records


def safe_join(folder: str, name: str) -> Optional[str]:
    """`folder/name`, or None when `name` would leave `folder` (absolute path, '..')."""
    folder = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(folder, name))
    return path if os.path.commonpath([folder, path]) == folder and path != folder else None


# ---------------------------------------------------------------------------
# The 2019 layout: WAV files, data_list.csv, labels as character ids + label map
# ---------------------------------------------------------------------------
LABEL_MAP_SPECIALS = ("<s>", "</s>", "<pad>")
CODE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def detect_layout(dataset_path: str) -> str:
    """'2019' when the training folder has the 2019 `data_list.csv`, else '2022'."""
    return "2019" if os.path.isfile(os.path.join(dataset_path, "train", "train_data", "data_list.csv")) else "2022"


def find_label_map(dataset_path: str, path: Optional[str] = None) -> str:
    """The 2019 id->character file: `path` if given, else the first `*.labels` file (hackathon.labels
    first) beside the dataset (DATASET_PATH, DATASET_PATH/train) or in the code folder."""
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"label map {path!r} does not exist")
        return path
    folders = [dataset_path, os.path.join(dataset_path, "train"), CODE_DIR]
    for folder in folders:
        if os.path.isdir(folder):
            names = sorted(f for f in os.listdir(folder) if f.endswith(".labels"))
            names.sort(key=lambda f: f != "hackathon.labels")
            if names:
                return os.path.join(folder, names[0])
    raise FileNotFoundError(f"2019-layout dataset {dataset_path!r} needs a label map (`#id<TAB>char<TAB>freq` "
                            f"lines, e.g. hackathon.labels); none in {folders}; pass --label_map")


def read_label_map(path: str) -> dict:
    """id -> character; pad (id 0 '_'), '<s>' and '</s>' map to '' so that decoding drops them."""
    id_to_char = {}
    for line_no, line in enumerate(read_text_file(path).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        try:
            idx = int(fields[0])
        except ValueError:
            warnings.warn(f"{path}:{line_no}: not an `id<TAB>char<TAB>freq` row: {line!r}; skipped")
            continue
        char = fields[1] if len(fields) > 1 else ""
        char = char if char.strip() else " "  # the space character's row (as the 2019 baseline reads it)
        id_to_char[idx] = "" if char in LABEL_MAP_SPECIALS or (idx == 0 and char == "_") else char
    return id_to_char


def decode_label_ids(ids: str, id_to_char: dict, where: str) -> Optional[str]:
    chars = []
    for token in ids.split():
        if not token.lstrip("-").isdigit() or int(token) not in id_to_char:
            warnings.warn(f"{where}: label id {token!r} is not in the label map; row skipped")
            return None
        chars.append(id_to_char[int(token)])
    return "".join(chars)


def read_label_rows_2019(dataset_path: str, label_map: Optional[str] = None) -> list:
    """(audio file name, text) pairs: `train/train_label` (`name,<ids>` lines) when present, else the
    `.label` files named in `data_list.csv`; names resolved to the WAV files of `data_list.csv`."""
    data_dir = os.path.join(dataset_path, "train", "train_data")
    map_path = find_label_map(dataset_path, label_map)
    id_to_char = read_label_map(map_path)
    print(f"[data] 2019 layout; label map {map_path} ({len(id_to_char)} ids)", flush=True)
    listing = {}  # stem -> (wav name, label file name)
    list_path = os.path.join(data_dir, "data_list.csv")
    for line in read_text_file(list_path).splitlines():
        fields = [f.strip() for f in line.split(",")]
        if not fields[0]:
            continue
        label_file = fields[1] if len(fields) > 1 else os.path.splitext(fields[0])[0] + ".label"
        listing[os.path.splitext(fields[0])[0]] = (fields[0], label_file)

    label_path = os.path.join(dataset_path, "train", "train_label")
    raw_rows = []  # (stem or file name, ids, where)
    if os.path.isfile(label_path):  # the source of truth when present
        for line_no, line in enumerate(read_text_file(label_path).splitlines(), start=1):
            if not line.strip():
                continue
            name, _, ids = line.partition(",")
            raw_rows.append((name.strip(), ids, f"{label_path}:{line_no}"))
    else:
        for stem, (_, label_file) in listing.items():
            path = safe_join(data_dir, label_file)
            if path is None or not os.path.isfile(path):
                warnings.warn(f"{list_path}: label file {label_file!r} of {stem} is missing; skipped")
                continue
            raw_rows.append((stem, read_text_file(path), path))
    rows = []
    for name, ids, where in raw_rows:
        text = decode_label_ids(ids, id_to_char, where)
        if text is not None:
            stem = os.path.splitext(name)[0]
            rows.append((listing[stem][0] if stem in listing else name if "." in name else name + ".wav", text))
    return rows


# ---------------------------------------------------------------------------
# Speakers: label column, --speaker_pattern, or train/train_meta.csv
# ---------------------------------------------------------------------------
def read_speakers(dataset_path: str, records: list, speaker_pattern: Optional[str] = None) -> dict:
    """file name -> speaker id, from the first source that has them (see module docs/data.md)."""
    if speaker_pattern:
        pattern = re.compile(speaker_pattern)
        speakers = {}
        for r in records:
            m = pattern.search(r["filename"])
            if m:
                speakers[r["filename"]] = m.group(1) if m.groups() else m.group(0)
        return speakers
    if any("speaker" in r for r in records):
        return {r["filename"]: r["speaker"].strip() for r in records if r.get("speaker", "").strip()}
    meta_path = os.path.join(dataset_path, "train", "train_meta.csv")
    if os.path.isfile(meta_path):
        rows = list(csv.reader(io.StringIO(read_text_file(meta_path))))
        header = [h.strip().lower() for h in rows[0]] if rows else []
        if "filename" in header and "speaker" in header:
            fi, si = header.index("filename"), header.index("speaker")
            by_name = {row[fi].strip(): row[si].strip() for row in rows[1:] if len(row) > max(fi, si)}
            by_stem = {os.path.splitext(k)[0]: v for k, v in by_name.items()}
            return {r["filename"]: by_name.get(r["filename"], by_stem.get(os.path.splitext(r["filename"])[0]))
                    for r in records if r["filename"] in by_name or os.path.splitext(r["filename"])[0] in by_stem}
    return {}


def read_training_set(dataset_path: str, text_config: TextConfig = TextConfig(), label_map: Optional[str] = None,
                      speaker_pattern: Optional[str] = None) -> list:
    """Utterances of `DATASET_PATH/train`, 2019 or 2022 layout (detected, see `detect_layout`)."""
    data_dir = os.path.join(dataset_path, "train", "train_data")
    label_path = os.path.join(dataset_path, "train", "train_label")
    layout = detect_layout(dataset_path)
    for p in (data_dir,) if layout == "2019" else (data_dir, label_path):
        if not os.path.exists(p):
            raise FileNotFoundError(f"dataset {dataset_path!r} has no {os.path.relpath(p, dataset_path)}")
    if layout == "2019":
        records = [{"filename": n, "text": t} for n, t in read_label_rows_2019(dataset_path, label_map)]
    else:
        records = read_label_records(label_path)
    speakers = read_speakers(dataset_path, records, speaker_pattern)

    utterances, skipped, labelled = [], 0, set()
    for record in records:
        name = record["filename"]
        path = safe_join(data_dir, name)
        if path is None:
            warnings.warn(f"{label_path}: file name {name!r} points outside {data_dir}; skipped")
            skipped += 1
            continue
        labelled.add(path)
        text = normalize_text(record["text"], text_config)
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
        utterances.append(Utterance(path, text, duration, speakers.get(name)))

    not_audio = (".csv", ".label", ".txt", ".labels")
    unlabelled = [f for f in sorted(os.listdir(data_dir)) if not f.endswith(not_audio)
                  and os.path.join(os.path.realpath(data_dir), f) not in labelled]
    if unlabelled:
        warnings.warn(f"{data_dir}: {len(unlabelled)} audio files have no label row (e.g. {unlabelled[0]}); ignored")
    if skipped:
        print(f"[data] {skipped} labelled utterances skipped, {len(utterances)} usable", flush=True)
    if not utterances:
        raise ValueError(f"dataset {dataset_path!r}: no usable training utterance")
    return utterances


# ---------------------------------------------------------------------------
# Train/validation split
# ---------------------------------------------------------------------------
def _sentence(u: Utterance) -> str:
    return u.text.replace(" ", "")


def split_by_sentence(utterances: list, valid_fraction: float = 0.2, seed: int = 0):
    """Seeded train/validation split in which no sentence, and no speaker (when known), is on both sides.

    Whole sentences are held out, so validation CER measures recognition of unseen
    sentences (and voices) as the test set does, not recall of memorised ones.
    Utterances are grouped into connected components of "same sentence or same
    speaker" and whole components go to validation until it holds `valid_fraction`.
    When speakers read overlapping sentences the components merge into one; then
    validation takes whole speakers and training drops its utterances of validation
    sentences (a warning says how many), which keeps both sides disjoint. If that
    would drop more than half of the training side (speakers x sentences fully
    crossed), the split is by sentence only, with a warning.
    """
    if not utterances:
        return [], []
    parent = list(range(len(utterances)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = {}
    for i, u in enumerate(utterances):
        for key in (("sentence", _sentence(u)), ("speaker", u.speaker)):
            if key[1] is None:
                continue
            j = first.setdefault(key, i)
            parent[find(i)] = find(j)
    groups = {}
    for i in range(len(utterances)):
        groups.setdefault(find(i), []).append(i)
    components = sorted(groups.values(), key=lambda g: g[0])
    random.Random(seed).shuffle(components)
    target = valid_fraction * len(utterances)
    valid_idx = set()
    for group in components:
        if len(valid_idx) >= target:
            break
        if len(valid_idx) + len(group) <= 1.5 * target + 1:  # a giant component would swallow validation
            valid_idx.update(group)
    if target and len(valid_idx) < 0.5 * target and any(u.speaker is not None for u in utterances):
        train, valid = _split_by_speaker(utterances, valid_fraction, seed)
        if len(train) >= 0.5 * (len(utterances) - len(valid)):
            return train, valid
        # speakers and sentences fully crossed: keeping both apart would leave too little to train on
        warnings.warn("split: speakers read the same sentences; splitting by sentence only, "
                      "so validation speakers are also heard in training")
        anonymous = [replace(u, speaker=None) for u in utterances]
        original = {id(a): u for a, u in zip(anonymous, utterances)}
        train, valid = split_by_sentence(anonymous, valid_fraction, seed)
        return [original[id(a)] for a in train], [original[id(a)] for a in valid]
    train = [u for i, u in enumerate(utterances) if i not in valid_idx]
    valid = [u for i, u in enumerate(utterances) if i in valid_idx]
    return train, valid


def _split_by_speaker(utterances, valid_fraction, seed):
    speakers = sorted({u.speaker for u in utterances if u.speaker is not None})
    random.Random(seed).shuffle(speakers)
    target, chosen, held = valid_fraction * len(utterances), set(), 0
    counts = {}
    for u in utterances:
        counts[u.speaker] = counts.get(u.speaker, 0) + 1
    for s in speakers:
        if held >= target:
            break
        chosen.add(s)
        held += counts[s]
    valid = [u for u in utterances if u.speaker in chosen]
    valid_sentences = {_sentence(u) for u in valid}
    rest = [u for u in utterances if u.speaker not in chosen]
    train = [u for u in rest if _sentence(u) not in valid_sentences]
    if len(train) < len(rest):
        warnings.warn(f"split: speakers read overlapping sentences; {len(rest) - len(train)} training utterances "
                      "of validation sentences left out so that no sentence or speaker is on both sides")
    return train, valid


def split_by_names(utterances: list, valid_names: list):
    """The split a checkpoint recorded (validation file names), so a forked session keeps it."""
    names = set(valid_names)
    train = [u for u in utterances if os.path.basename(u.path) not in names]
    valid = [u for u in utterances if os.path.basename(u.path) in names]
    return train, valid


class SpeechDataset(torch.utils.data.Dataset):
    """(index, waveform, unit ids) triples, or (index, features, unit ids) with a FeatureCache;
    an item whose audio fails to load comes back as None."""

    def __init__(self, utterances: list, tokenizer, trim_db: float = 0.0, cache=None):
        self.utterances, self.trim_db, self.cache = utterances, trim_db, cache
        self.targets = [torch.tensor(tokenizer.encode(u.text), dtype=torch.long) for u in utterances]

    def __len__(self):
        return len(self.utterances)

    def __getitem__(self, i):
        path = self.utterances[i].path
        try:
            if self.cache is not None:
                return i, self.cache.features(path), self.targets[i]
            return i, torch.from_numpy(load_audio(path, trim_db=self.trim_db)), self.targets[i]
        except AudioError as e:
            warnings.warn(f"{e}; skipped")
            return None


def collate(items):
    """Pad (index, waveform or features, ids) items into a batch, dropping items that failed to load.
    Waveforms give 'waves'/'wave_lengths'; (T, n_mels) features give 'feats'/'feat_lengths'."""
    items = [it for it in items if it is not None]
    if not items:
        return None
    indices, signals, targets = zip(*items)
    lengths = torch.tensor([len(x) for x in signals])
    padded = torch.zeros((len(signals), int(lengths.max())) + tuple(signals[0].shape[1:]))
    for i, x in enumerate(signals):
        padded[i, : len(x)] = x
    batch = {
        "indices": list(indices),
        "targets": torch.cat(targets),
        "target_lengths": torch.tensor([len(t) for t in targets]),
    }
    if signals[0].dim() == 2:
        batch.update(feats=padded, feat_lengths=lengths)
    else:
        batch.update(waves=padded, wave_lengths=lengths)
    return batch


class DurationBatchSampler(torch.utils.data.Sampler):
    """Batches of similar duration whose padded length stays within `batch_seconds`.

    Sorting by duration keeps padding small; the budget bounds peak memory whatever
    the length mix. When shuffling, every epoch (`set_epoch`) sorts by duration times
    a random factor within +-`jitter` (3%: ~3% padding vs ~1.5% unjittered), so
    neighbours of similar length land in different batches from epoch to epoch, then
    shuffles the batch order. With `sortagrad` the first epoch goes from shortest to
    longest, unjittered.
    """

    def __init__(self, durations, batch_seconds: float, shuffle: bool = True, seed: int = 0,
                 sortagrad: bool = False, max_batch_size: int = 256, jitter: float = 0.03):
        self.durations = np.asarray(durations, dtype=np.float64)
        self.batch_seconds, self.max_batch_size, self.jitter = batch_seconds, max_batch_size, jitter
        self.shuffle, self.seed, self.sortagrad = shuffle, seed, sortagrad
        self.set_epoch(0)

    def _make_batches(self, rng):
        keys = self.durations
        if rng is not None and self.jitter:
            keys = keys * rng.uniform(1 - self.jitter, 1 + self.jitter, size=len(keys))
        batches, batch, longest = [], [], 0.0
        for i in np.argsort(keys, kind="stable"):
            d = float(self.durations[i])
            if batch and (max(longest, d) * (len(batch) + 1) > self.batch_seconds
                          or len(batch) >= self.max_batch_size):
                batches.append(batch)
                batch, longest = [], 0.0
            batch.append(int(i))
            longest = max(longest, d)
        if batch:
            batches.append(batch)
        return batches

    def set_epoch(self, epoch: int):
        self.epoch = epoch
        if not self.shuffle or (self.sortagrad and epoch == 0):
            self.batches = self._make_batches(None)  # shortest first
            return
        rng = np.random.default_rng([self.seed, epoch])
        self.batches = self._make_batches(rng)
        rng.shuffle(self.batches)

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)

    def padding_fraction(self, durations=None) -> float:
        """Share of the padded batch audio that is padding, for this epoch's batches."""
        d = self.durations if durations is None else np.asarray(durations)
        padded = sum(max(d[i] for i in b) * len(b) for b in self.batches)
        return 1.0 - float(np.sum(d)) / padded if padded else 0.0


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
