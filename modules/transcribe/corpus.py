"""Reading a speech dataset: the 2019 and 2022 competition layouts, speakers, usable utterances.

Bad input never stops a run: every file that cannot be used is named in one
warning and left out, and a summary says how many were.
"""
import os
import re
import warnings
from dataclasses import dataclass
from typing import Optional

from ..audio import usable_durations
from ..text import TextConfig, normalize_text, read_csv_table, read_label_columns, read_text_file, safe_join


@dataclass(slots=True)  # no per-object __dict__: 72 instead of 112 bytes each (24 MB less at 600,000)
class Utterance:
    path: str
    text: str
    duration: float
    speaker: Optional[str] = None


# ---------------------------------------------------------------------------
# The 2019 layout: WAV files, data_list.csv, labels as character ids + label map
# ---------------------------------------------------------------------------
LABEL_MAP_SPECIALS = ("<s>", "</s>", "<pad>")
CODE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # beside main.py


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
    """(audio file name, text, where) triples, `where` the label's file (and line): `train/train_label`
    (`name,<ids>` lines) when present, else the `.label` files named in `data_list.csv`; names
    resolved to the WAV files of `data_list.csv`."""
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
            rows.append((listing[stem][0] if stem in listing else name if "." in name else name + ".wav", text, where))
    return rows


# ---------------------------------------------------------------------------
# Speakers: label column, --speaker_pattern, or train/train_meta.csv
# ---------------------------------------------------------------------------
def read_speakers(dataset_path: str, names: list, column: Optional[list] = None,
                  speaker_pattern: Optional[str] = None) -> dict:
    """file name -> speaker id, from the first source that has them (see module docs/data.md):
    `speaker_pattern` over the names, the label file's speaker `column`, train/train_meta.csv."""
    if speaker_pattern:
        pattern = re.compile(speaker_pattern)
        speakers = {}
        for name in names:
            m = pattern.search(name)
            if m:
                speakers[name] = m.group(1) if m.groups() else m.group(0)
        return speakers
    if column is not None:
        return {name: s.strip() for name, s in zip(names, column) if s.strip()}
    meta_path = os.path.join(dataset_path, "train", "train_meta.csv")
    if os.path.isfile(meta_path):
        header, rows = read_csv_table(meta_path, required=())
        lower = [h.lower() for h in header]
        if "filename" in lower and "speaker" in lower:
            fi, si = lower.index("filename"), lower.index("speaker")
            by_name = {row[fi].strip(): row[si].strip() for _, row in rows}
            by_stem = {os.path.splitext(k)[0]: v for k, v in by_name.items()}
            return {n: by_name.get(n, by_stem.get(os.path.splitext(n)[0]))
                    for n in names if n in by_name or os.path.splitext(n)[0] in by_stem}
    return {}


def resolve_paths(data_dir: str, names: list) -> list:
    """`safe_join(data_dir, name)` of every name (None for a name that leaves the folder), without
    resolving each path: a plain file name that is not a symbolic link joins the resolved folder
    as it is; the rest (sub-folders, '..', links) go through safe_join."""
    prefix = os.path.join(os.path.realpath(data_dir), "")
    with os.scandir(prefix) as entries:
        links = {e.name for e in entries if e.is_symlink()}
    separators = {"/", os.sep, os.altsep or "/"}
    return [prefix + name if name not in ("", ".", "..") and name not in links
            and not any(sep in name for sep in separators) else safe_join(prefix, name) for name in names]


def unlabelled_files(data_dir: str, labelled: set) -> list:
    """Names of the audio files in `data_dir` (not label or list files) whose path is not in `labelled`."""
    prefix = os.path.join(os.path.realpath(data_dir), "")
    not_audio = (".csv", ".label", ".txt", ".labels")
    with os.scandir(prefix) as entries:
        return [e.name for e in entries if not e.name.endswith(not_audio) and prefix + e.name not in labelled]


def read_training_set(dataset_path: str, text_config: TextConfig = TextConfig(), label_map: Optional[str] = None,
                      speaker_pattern: Optional[str] = None, max_seconds: Optional[float] = None) -> list:
    """Utterances of `DATASET_PATH/train`, 2019 or 2022 layout (detected, see `detect_layout`).

    A file labelled twice keeps its first label row: the later rows are dropped (named in a warning
    with both lines when their transcripts differ), so one recording can never be in both the
    training and the validation split. Utterances longer than `max_seconds` are skipped, each
    named, with a count: one 10-minute file makes an epoch's loss jump a hundredfold.

    In stages over whole columns (names, texts, paths, durations), each one pass: 600,000 label
    rows take seconds, not minutes (bench/scale.py)."""
    data_dir = os.path.join(dataset_path, "train", "train_data")
    label_path = os.path.join(dataset_path, "train", "train_label")
    layout = detect_layout(dataset_path)
    for p in (data_dir,) if layout == "2019" else (data_dir, label_path):
        if not os.path.exists(p):
            raise FileNotFoundError(f"dataset {dataset_path!r} has no {os.path.relpath(p, dataset_path)}")
    if layout == "2019":
        triples = read_label_rows_2019(dataset_path, label_map)
        columns = {"filename": [n for n, _, _ in triples], "text": [t for _, t, _ in triples]}
        wheres = [w for _, _, w in triples]
    else:
        line_numbers = []
        columns = read_label_columns(label_path, line_numbers)
        wheres = line_numbers  # formatted as `label_path:line` only for the few rows a warning names
    names, texts = columns["filename"], columns["text"]
    speakers = read_speakers(dataset_path, names, columns.get("speaker"), speaker_pattern)
    del columns

    paths = resolve_paths(data_dir, names)
    inside = [p for p in paths if p is not None]
    durations, reasons = usable_durations(inside)
    durations = durations.tolist()
    texts = normalize_texts(texts, text_config)
    utterances, skipped, labelled, k = [], 0, set(inside), -1
    first_row = {}  # path -> (where, text) of its first label row
    duplicates, too_long = 0, []
    for name, path, text, where in zip(names, paths, texts, wheres):
        if path is None:
            warnings.warn(f"{label_path}: file name {name!r} points outside {data_dir}; skipped")
            skipped += 1
            continue
        k += 1  # index into inside/durations
        if path in first_row:
            duplicates += 1
            first_where, first_text = first_row[path]
            if text != first_text:
                warnings.warn(f"{path}: labelled twice with different transcripts: {_where(label_path, first_where)} "
                              f"{first_text!r} (kept) and {_where(label_path, where)} {text!r} (dropped)")
            continue
        first_row[path] = (where, text)
        reason = reasons.get(k) or ("empty transcript" if not text else None)
        if reason:
            warnings.warn(f"{path}: {reason}; skipped")
            skipped += 1
            continue
        if max_seconds and durations[k] > max_seconds:
            warnings.warn(f"{path}: {durations[k]:.1f} s is longer than the maximum duration {max_seconds:g} s; "
                          "skipped in training")
            too_long.append(name)
            continue
        utterances.append(Utterance(path, text, durations[k], speakers.get(name)))

    unlabelled = unlabelled_files(data_dir, labelled)
    if unlabelled:
        warnings.warn(f"{data_dir}: {len(unlabelled)} audio files have no label row (e.g. {min(unlabelled)}); ignored")
    if duplicates:
        print(f"[data] {duplicates} label rows name a file labelled before; the first row of each is kept", flush=True)
    if too_long:
        shown = ", ".join(too_long[:10]) + (f", ... ({len(too_long) - 10} more)" if len(too_long) > 10 else "")
        print(f"[data] {len(too_long)} utterances longer than --max_duration {max_seconds:g} s skipped in training "
              f"(inference still transcribes such files): {shown}", flush=True)
    if skipped:
        print(f"[data] {skipped} labelled utterances skipped, {len(utterances)} usable", flush=True)
    if not utterances:
        raise ValueError(f"dataset {dataset_path!r}: no usable training utterance")
    return utterances


def _where(label_path: str, where) -> str:
    """A label row's place: `label_path:line` for the 2022 layout (a line number), else as given."""
    return f"{label_path}:{where}" if isinstance(where, int) else str(where)


def normalize_texts(texts: list, config: TextConfig) -> list:
    """normalize_text of every transcript (a stage of its own, so bench/scale.py can time it)."""
    return [normalize_text(t, config) for t in texts]
