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


# The csv module refuses a cell over 128 KB (`_csv.Error: field larger than field limit`, naming
# neither file nor line). The reader's limit is raised so that such a row is read whole, and the row
# is then skipped with a warning naming file and line: no transcript is that long, but an unclosed
# quote that swallows the rest of the file is.
MAX_CELL_CHARS = 128 * 1024
csv.field_size_limit(2**31 - 1)  # the largest the C reader accepts on every platform


def iter_csv_table(path: str, required=("filename",)):
    """(header, rows) of a CSV label file with a header row, with `rows` an iterator of
    (line number, cells): the rows of `read_csv_table` one at a time, so a label file of
    600,000 rows is never held as one list of lists.

    A row with more cells than the header (an unquoted comma in a transcript) keeps its text
    whole when the last column is 'text': the extra cells are joined back into it with their
    commas, and a warning names file and line; with another last column it cannot be told
    which cell the comma split, so the row is skipped with a warning. A row whose quoted cell
    spans lines (a quote left open) and a row that is not CSV are skipped, naming file and lines.
    A file with no header row (0 bytes) is an error naming the file when columns are `required`."""
    # newline=None: lone CR line ends (old Mac tools) read as line ends, not as a csv.Error mid-file
    reader = csv.reader(io.StringIO(read_text_file(path), newline=None))
    try:
        first = next(reader, None)
    except csv.Error as e:
        raise ValueError(f"{path}:{reader.line_num}: header row is not CSV ({e})") from e
    if first is None:
        if required:
            raise ValueError(f"{path}: empty label file (no header row; expected {', '.join(required)})")
        return [], iter(())
    header = [h.strip() for h in first]
    lower = [h.lower() for h in header]
    missing = [r for r in required if r not in lower]
    if missing:
        raise ValueError(f"{path}: expected a header with {', '.join(map(repr, required))}, got {first}")

    def rows():
        width = len(header)
        text_last = lower[-1] == "text"
        end = reader.line_num  # the physical line the previous row ended on (quoted cells may span lines)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:  # the reader starts afresh on the next line
                warnings.warn(f"{path}:{reader.line_num}: not a CSV row ({e}); skipped")
                end = reader.line_num
                continue
            line_no, end = end + 1, reader.line_num
            if end == line_no and len(row) == width and row[0].strip() and len(row[-1]) <= MAX_CELL_CHARS:
                yield line_no, row  # the usual row, checked cheaply
            elif not any(cell.strip() for cell in row):
                continue
            elif max(map(len, row)) > MAX_CELL_CHARS:
                warnings.warn(f"{path}:{line_no}: a cell of {max(map(len, row))} characters (over "
                              f"{MAX_CELL_CHARS}; an unclosed quote?); row skipped")
            elif end > line_no:  # a transcript is one line; a quote left open swallows the rows after it
                warnings.warn(f"{path}:{line_no}-{end}: one quoted cell spans lines {line_no} to {end} "
                              "(an unclosed quote?); row skipped")
            elif len(row) < width:
                warnings.warn(f"{path}:{line_no}: malformed row {row!r}; skipped")
            elif len(row) == width:
                yield line_no, row
            elif text_last:
                warnings.warn(f"{path}:{line_no}: {len(row)} cells for {width} columns (an unquoted comma in "
                              "the transcript?); the extra cells are kept in the text with their commas")
                yield line_no, row[:width - 1] + [",".join(row[width - 1:])]
            else:
                warnings.warn(f"{path}:{line_no}: {len(row)} cells for {width} columns {header}; "
                              "cannot tell which cell holds the comma; row skipped")

    return header, rows()


def read_csv_table(path: str, required=("filename",)):
    """(header, rows) of a CSV label file with a header row; rows are (line number, cells).

    Header names are stripped (case kept); `required` columns are matched case-insensitively
    and must be present. Blank rows are skipped; rows shorter than the header are named in a
    warning and skipped, longer ones as `iter_csv_table` says; each kept row has as many cells
    as the header.
    """
    header, rows = iter_csv_table(path, required)
    return header, list(rows)


def read_label_columns(path: str, line_numbers: list = None) -> dict:
    """A `filename,text[,speaker,...]` CSV as columns: lower-case column name -> list of cells
    (at least 'filename', stripped, and 'text'); one list per column instead of a dict per row.
    `line_numbers`, if given, receives each row's line number in the file."""
    header, rows = iter_csv_table(path, required=("filename", "text"))
    wanted = {h.lower(): i for i, h in enumerate(header)}  # a repeated name: its last column
    columns = {k: [] for k in wanted}
    appends = [(columns[k].append, i) for k, i in wanted.items()]
    for line_no, row in rows:
        for append, i in appends:
            append(row[i])
        if line_numbers is not None:
            line_numbers.append(line_no)
    columns["filename"] = [name.strip() for name in columns["filename"]]
    return columns


def read_label_records(path: str) -> list:
    """Rows of a `filename,text[,speaker,...]` CSV as dicts keyed by lower-case column name
    (at least 'filename' and 'text'); file names stripped."""
    columns = read_label_columns(path)
    return [dict(zip(columns, row)) for row in zip(*columns.values())]


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


# Words of Hangul syllables, Latin letters and digits separated by single spaces: such a
# transcript (most of them) has no annotation, punctuation or stray space, and is NFC already.
_PLAIN = re.compile(r"[0-9A-Za-z\uac00-\ud7a3]+(?: [0-9A-Za-z\uac00-\ud7a3]+)*")


def normalize_text(text: str, config: TextConfig = TextConfig()) -> str:
    if config.dual not in ("spelling", "pronunciation"):
        raise ValueError(f"dual must be 'spelling' or 'pronunciation', not {config.dual!r}")
    if _PLAIN.fullmatch(text):  # nothing to normalise: one regex match instead of the passes below
        return text if config.keep_spaces else text.replace(" ", "")
    return _normalize(text, config)


def _normalize(text: str, config: TextConfig) -> str:
    side = 1 if config.dual == "spelling" else 2
    text = unicodedata.normalize("NFC", text)
    if "(" in text:
        text = _DUAL.sub(lambda m: m.group(side), text)
    # odd indices are mask tokens, left exactly as they are
    pieces = MASK_PATTERN.split(text) if "&" in text else [text]
    for i in range(0, len(pieces), 2):
        p = pieces[i]
        if config.remove_noise_tags:
            if "/" in p:
                p = _FILLER.sub("", _NOISE.sub(" ", p))
            p = p.replace("+", "").replace("*", "")  # Kspon repetition / unclear-word marks
        if config.punctuation == "remove":
            p = "".join(" " if unicodedata.category(c).startswith("P") else c for c in p)
        pieces[i] = p
    text = " ".join("".join(pieces).split())  # runs of whitespace -> one space, none at the ends
    if not config.keep_spaces:
        text = text.replace(" ", "")
    return text


def split_units(text: str) -> list:
    """Characters of `text`, with each mask token as one unit."""
    units = []
    for i, piece in enumerate(MASK_PATTERN.split(text)):
        units.extend([piece] if i % 2 else list(piece))
    return units
