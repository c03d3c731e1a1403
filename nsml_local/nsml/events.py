"""TensorBoard event files of a session's reports, when tensorboardX (or tensorboard with torch) is installed.

Each `nsml.report` also becomes scalars in an event file in the session folder, so

    tensorboard --logdir ~/.nsml_local/sessions

shows every session as a run named like the session (local/t1-cmd/3), live while it trains.
Without a writer library nothing is written and nothing is said: the export is optional,
`reports.jsonl` stays the record and `nsml plot` draws from it.
"""
import atexit
import math

_writers = {}  # session folder -> its writer (None: no library), one per process


def _writer_class():
    try:
        from tensorboardX import SummaryWriter
        return SummaryWriter
    except ImportError:
        pass
    try:
        import tensorboard  # noqa: F401  torch's writer needs it; torch alone is not enough
        from torch.utils.tensorboard import SummaryWriter
        return SummaryWriter
    except ImportError:
        return None


def write(session_dir, step, values, walltime):
    """Add the numeric `values` of one report as scalars at `step` (else the report's number)."""
    if session_dir not in _writers:
        cls = _writer_class()
        # The writers queue events for a thread; flush_secs bounds how late TensorBoard sees them.
        _writers[session_dir] = [cls(session_dir, flush_secs=10), 0] if cls else None
        if cls and len(_writers) == 1:
            atexit.register(close_all)  # what is still queued at exit gets written
    entry = _writers[session_dir]
    if entry is None:
        return
    writer, reported = entry
    entry[1] += 1
    x = int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else reported
    for key, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            writer.add_scalar(key, value, global_step=x, walltime=walltime)


def close_all():
    """Write out and close every writer of this process."""
    for entry in _writers.values():
        if entry is not None:
            entry[0].close()
    _writers.clear()
