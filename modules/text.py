"""Label files: decoding them, the one CSV label reader, file names inside a dataset.

Competition labels arrive as CSV files in UTF-8 or CP949. Every task reads its label files
through `read_csv_table`; what a transcript's text means (KsponSpeech tags, masks) is the
transcription task's business (modules/transcribe/normalize.py).
"""
import csv
import io
import os
import warnings
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


def iter_csv_table(path: str, required=("filename",)):
    """(header, rows) of a CSV label file with a header row, with `rows` an iterator of
    (line number, cells): the rows of `read_csv_table` one at a time, so a label file of
    600,000 rows is never held as one list of lists."""
    reader = csv.reader(io.StringIO(read_text_file(path)))
    first = next(reader, None)
    if first is None:
        return [], iter(())
    header = [h.strip() for h in first]
    lower = [h.lower() for h in header]
    missing = [r for r in required if r not in lower]
    if missing:
        raise ValueError(f"{path}: expected a header with {', '.join(map(repr, required))}, got {first}")

    def rows():
        width = len(header)
        for line_no, row in enumerate(reader, start=2):
            if len(row) == width and row[0].strip():  # the usual row, checked cheaply
                yield line_no, row
            elif not any(cell.strip() for cell in row):
                continue
            elif len(row) < width:
                warnings.warn(f"{path}:{line_no}: malformed row {row!r}; skipped")
            else:
                yield line_no, row[:width]

    return header, rows()


def read_csv_table(path: str, required=("filename",)):
    """(header, rows) of a CSV label file with a header row; rows are (line number, cells).

    Header names are stripped (case kept); `required` columns are matched case-insensitively
    and must be present. Blank rows are skipped; rows shorter than the header are named in a
    warning and skipped; each kept row has as many cells as the header.
    """
    header, rows = iter_csv_table(path, required)
    return header, list(rows)


def read_label_columns(path: str) -> dict:
    """A `filename,text[,speaker,...]` CSV as columns: lower-case column name -> list of cells
    (at least 'filename', stripped, and 'text'); one list per column instead of a dict per row."""
    header, rows = iter_csv_table(path, required=("filename", "text"))
    wanted = {h.lower(): i for i, h in enumerate(header)}  # a repeated name: its last column
    columns = {k: [] for k in wanted}
    appends = [(columns[k].append, i) for k, i in wanted.items()]
    for _, row in rows:
        for append, i in appends:
            append(row[i])
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
