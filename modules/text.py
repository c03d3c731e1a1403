"""Label text: decoding label files, the one CSV label reader, transcript normalisation.

Competition labels arrive as CSV files in UTF-8 or CP949 and carry annotation that
is not speech: KsponSpeech noise tags (`o/ n/ u/ b/ l/`), dual transcriptions
`(철자)/(발음)`, and in 2022 masked personal data (`&name&`, `&tel-num&`, ...).
Every task reads its label files through `read_csv_table`, and `normalize_text`
resolves the annotation the same way for training labels and validation references;
the output units built from the result live in `modules/transcribe/tokenizers.py`.
"""
import csv
import io
import os
import re
import unicodedata
import warnings
from dataclasses import dataclass
from typing import Optional


# ---------------------------------------------------------------------------
# Label files
# ---------------------------------------------------------------------------
def read_text_file(path: str) -> str:
    """Decode a label file: UTF-8 (with or without BOM), else CP949 (older Korean Windows tools)."""
    with open(path, "rb") as f:
        raw = f.read()
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


def read_csv_table(path: str, required=("filename",)):
    """(header, rows) of a CSV label file with a header row; rows are (line number, cells).

    Header names are stripped (case kept); `required` columns are matched case-insensitively
    and must be present. Blank rows are skipped; rows shorter than the header are named in a
    warning and skipped; each kept row has as many cells as the header.
    """
    table = list(csv.reader(io.StringIO(read_text_file(path))))
    if not table:
        return [], []
    header = [h.strip() for h in table[0]]
    lower = [h.lower() for h in header]
    missing = [r for r in required if r not in lower]
    if missing:
        raise ValueError(f"{path}: expected a header with {', '.join(map(repr, required))}, got {table[0]}")
    rows = []
    for line_no, row in enumerate(table[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            warnings.warn(f"{path}:{line_no}: malformed row {row!r}; skipped")
            continue
        rows.append((line_no, row[: len(header)]))
    return header, rows


def read_label_records(path: str) -> list:
    """Rows of a `filename,text[,speaker,...]` CSV as dicts keyed by lower-case column name
    (at least 'filename' and 'text'); file names stripped."""
    header, rows = read_csv_table(path, required=("filename", "text"))
    keys = [h.lower() for h in header]
    records = [dict(zip(keys, row)) for _, row in rows]
    for r in records:
        r["filename"] = r["filename"].strip()
    return records


def safe_join(folder: str, name: str) -> Optional[str]:
    """`folder/name`, or None when `name` would leave `folder` (absolute path, '..')."""
    folder = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(folder, name))
    return path if os.path.commonpath([folder, path]) == folder and path != folder else None


# ---------------------------------------------------------------------------
# Transcript normalisation
# ---------------------------------------------------------------------------
# 2022 masked personal data: each is spoken as something, so the model predicts it
# as one unit (one token whatever the unit type) and it is never split or stripped.
MASK_TOKENS = ("&name&", "&address&", "&tel-num&", "&card-num&", "&company-name&",
               "&social-security-num&", "&party-name&")
MASK_PATTERN = re.compile("(" + "|".join(re.escape(t) for t in MASK_TOKENS) + ")")

_DUAL = re.compile(r"\(([^()]*)\)\s*/\s*\(([^()]*)\)")    # (철자)/(발음)
_NOISE = re.compile(r"(?<![0-9A-Za-z])[onubl]/")           # o/ n/ u/ b/ l/ (KsponSpeech)
_FILLER = re.compile(r"(?<=[가-힣])/")                      # 어/ 음/: a filler word keeps its word, loses the mark


@dataclass
class TextConfig:
    keep_spaces: bool = True            # False: train without spaces (the 2019 scorer ignores them)
    remove_noise_tags: bool = True      # drop o/ n/ u/ b/ l/ and the filler mark of `어/`
    dual: str = "spelling"              # (철자)/(발음): keep the "spelling" or the "pronunciation" side
    punctuation: str = "keep"           # "keep" or "remove" (Unicode P* characters; masks are kept)


def normalize_text(text: str, config: TextConfig = TextConfig()) -> str:
    if config.dual not in ("spelling", "pronunciation"):
        raise ValueError(f"dual must be 'spelling' or 'pronunciation', not {config.dual!r}")
    side = 1 if config.dual == "spelling" else 2
    text = unicodedata.normalize("NFC", text)
    text = _DUAL.sub(lambda m: m.group(side), text)
    pieces = MASK_PATTERN.split(text)  # odd indices are mask tokens, left exactly as they are
    for i in range(0, len(pieces), 2):
        p = pieces[i]
        if config.remove_noise_tags:
            p = _FILLER.sub("", _NOISE.sub(" ", p))
            p = p.replace("+", "").replace("*", "")  # Kspon repetition / unclear-word marks
        if config.punctuation == "remove":
            p = "".join(" " if unicodedata.category(c).startswith("P") else c for c in p)
        pieces[i] = p
    text = re.sub(r"\s+", " ", "".join(pieces)).strip()
    if not config.keep_spaces:
        text = text.replace(" ", "")
    return text


def split_units(text: str) -> list:
    """Characters of `text`, with each mask token as one unit."""
    units = []
    for i, piece in enumerate(MASK_PATTERN.split(text)):
        units.extend([piece] if i % 2 else list(piece))
    return units
