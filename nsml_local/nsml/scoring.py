"""Scores of both competitions and the label files they read.

CER = sum of Levenshtein(hyp, ref) / sum of len(ref), spaces removed from
both sides (2019 evaluation and the 2022 baseline metric). The 2019
leaderboard showed CRR = (1 - CER) * 100, not clipped: a CER above 1 gives a
negative CRR.
"""
import csv
import io
import os

from .errors import NSMLError

# A transcript over csv's default 128 KB cell limit is still a transcript: score it, as the kit
# reads it (modules/text.py raises the same process-wide limit, so the result must not depend on
# whether the kit was imported in this process).
csv.field_size_limit(2**31 - 1)


def _distance(a, b):
    import Levenshtein  # python-Levenshtein; imported late to keep `import nsml` light
    return Levenshtein.distance(a, b)


def cer(pairs):
    """pairs: [(hypothesis, reference), ...] -> CER as a float."""
    errors = 0
    length = 0
    for hyp, ref in pairs:
        hyp = hyp.replace(' ', '')
        ref = ref.replace(' ', '')
        errors += _distance(hyp, ref)
        length += len(ref)
    if length == 0:
        raise NSMLError('cannot score: the references of the scored items are all empty')
    return errors / length


def crr(cer_value):
    return (1.0 - cer_value) * 100.0


# What label and list files come in: UTF-8 (a BOM or not; utf-8-sig reads both) or
# cp949, the Korean Windows encoding many competition files were saved in.
TEXT_ENCODINGS = ('utf-8-sig', 'cp949')


def read_text(path):
    """(text, encoding) of a label or list file, whichever of TEXT_ENCODINGS decodes it."""
    with open(path, 'rb') as f:
        data = f.read()
    for encoding in TEXT_ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise NSMLError('%s is neither UTF-8 nor cp949 text; save it as UTF-8' % path)


def read_labels(path):
    """test_label as {filename: text}.

    With a header naming `filename` and `text`, those two columns are read and any
    others (speaker, duration ...) ignored. Without one, the first column is the
    file name and the rest of the line its text (the local 2019 format). The
    encoding is detected (read_text); a row that does not parse is named with its line.
    """
    if not os.path.isfile(path):
        raise NSMLError('label file %s does not exist' % path)
    text, _ = read_text(path)
    rows = csv.reader(io.StringIO(text, newline=''))
    labels = {}
    try:
        header = [c.strip().lower() for c in next(rows, [])]
        if 'filename' in header:
            name_at = header.index('filename')
            text_at = header.index('text') if 'text' in header else None
        else:
            name_at, text_at = 0, None
            rows = csv.reader(io.StringIO(text, newline=''))  # the first line is data
        for row in rows:
            if not row or not ''.join(row).strip():
                continue
            if len(row) <= max(name_at, text_at or 1):
                raise NSMLError('label file %s, line %d: %r has no text column'
                                % (path, rows.line_num, ','.join(row)[:80]))
            labels[row[name_at]] = row[text_at] if text_at is not None else ','.join(row[1:])
    except csv.Error as error:  # a row the csv module cannot parse
        raise NSMLError('label file %s, line %d: %s' % (path, rows.line_num, error)) from None
    return labels


def label_for(labels, filename):
    """The reference of a test file; 2019 labels may name it with or without .wav."""
    names = [filename]
    try:  # a file named in cp949 bytes is listed with surrogates; its label file spells it in Hangul
        names.append(os.fsencode(filename).decode('cp949'))
    except UnicodeDecodeError:
        pass
    for name in names:
        for key in (name, os.path.splitext(name)[0]):
            if key in labels:
                return labels[key]
    return None
