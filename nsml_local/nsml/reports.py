"""Scalars recorded with nsml.report, one JSON line per call.

Each line is {"step": ..., "summary": bool, "walltime": time.time(),
"values": {name: value}}. The values of the latest summary=True report are
also kept in summary.json: `nsml ps` and `nsml model ls` show them.
"""
import json
import os

from . import storage


def check_value(key, value):
    """Accept exactly what json.dumps accepts; say how to fix anything else.

    NSML rejects tensors with TypeError. We are as strict as the standard
    json module: Python numbers, strings, bools, None, and lists/dicts of them
    pass (numpy.float64 too, being a float subclass); numpy.float32,
    numpy.int64, arrays and torch tensors raise TypeError, so code that
    passes here also passes there. Use float(x) or x.item().
    """
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise TypeError('nsml.report: %s=%r is a %s, which is not JSON-serialisable; '
                        'pass a plain Python number (float(x) or x.item())'
                        % (key, _short(value), type(value).__name__)) from None


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


def append(session_dir, step, summary, values, walltime):
    record = {'step': step, 'summary': bool(summary), 'walltime': walltime, 'values': values}
    storage.append_jsonl(os.path.join(session_dir, 'reports.jsonl'), record)
    if summary:
        latest = dict(values)
        if step is not None:
            latest['step'] = step
        with storage.locked(os.path.join(session_dir, '.lock')):
            storage.write_json(os.path.join(session_dir, 'summary.json'), latest)


def read(session_dir):
    return storage.read_jsonl(os.path.join(session_dir, 'reports.jsonl'))


def latest_summary(session_dir):
    return storage.read_json(os.path.join(session_dir, 'summary.json'), {})


def format_summary(summary, limit=6):
    """'epoch=3 train_loss=0.1235' for tables."""
    first = [k for k in ('epoch', 'step') if k in summary]
    keys = first + sorted(k for k in summary if k not in first)
    parts = []
    for key in keys[:limit]:
        value = summary[key]
        if isinstance(value, float):
            value = '%.4g' % value
        parts.append('%s=%s' % (key, value))
    return ' '.join(parts)
