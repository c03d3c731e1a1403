"""Each dataset's leaderboard: HOME/boards/<dataset>.jsonl, one line per submit.

A line: {"time", "session" (the submit session), "model_session" (the session
whose checkpoint was scored), "checkpoint", "protocol", "cer", "crr" (2019
only), "items", "total_items", "test" (true for `submit -t`), "seconds"}.
The board keeps each model session's best score, like NSML keeps a team's
best; `submit -t` lines are stored but not ranked. CER: lower is better;
CRR = (1 - CER) * 100 ranks the same way, higher is better. A dataset whose
evaluation.py names another metric stores "metric" (its name), "score" and
"higher_is_better" instead, with "cer" and "crr" null. "dataset_id" says which
test set was scored (datasets.identity); a board ranks only its current one.
"""
import os

from . import storage


def _path(dataset):
    return os.path.join(storage.home(), 'boards', dataset + '.jsonl')


def append(dataset, entry):
    with storage.locked(storage.lock_path('board-' + dataset)):
        storage.append_jsonl(_path(dataset), entry)


def entries(dataset, identity=None):
    """The board's lines; with `identity` (datasets.identity) only those scored on that test set.
    Lines from before identities were recorded have none and are kept."""
    found = storage.read_jsonl(_path(dataset))
    if identity is None:
        return found
    return [e for e in found if e.get('dataset_id') in (None, identity)]


def datasets_with_boards():
    folder = os.path.join(storage.home(), 'boards')
    if not os.path.isdir(folder):
        return []
    return sorted(n[:-len('.jsonl')] for n in os.listdir(folder) if n.endswith('.jsonl'))


def metric(entry):
    """(name, value, higher_is_better) of an entry: its named metric, or CER."""
    if entry.get('metric'):
        return entry['metric'], entry['score'], bool(entry.get('higher_is_better'))
    return 'CER', entry['cer'], False


def _badness(entry):
    _, value, higher_is_better = metric(entry)
    return -value if higher_is_better else value


def ranking(dataset, include_tests=False, identity=None):
    """Best entry per model session, best first (lowest CER, or the best of the named metric)."""
    best = {}
    for entry in entries(dataset, identity):
        if entry.get('test') and not include_tests:
            continue
        key = entry.get('model_session')
        if key not in best or _badness(entry) < _badness(best[key]):
            best[key] = entry
    return sorted(best.values(), key=lambda e: (_badness(e), e.get('time', 0)))
