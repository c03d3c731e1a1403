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
