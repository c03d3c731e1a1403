"""Each dataset's leaderboard: HOME/boards/<dataset>.jsonl, one line per submit.

A line: {"time", "session" (the submit session), "model_session" (the session
whose checkpoint was scored), "checkpoint", "protocol", "cer", "crr" (2019
only), "items", "total_items", "test" (true for `submit -t`), "seconds"}.
The board keeps each model session's best score, like NSML keeps a team's
best; `submit -t` lines are stored but not ranked. CER: lower is better;
CRR = (1 - CER) * 100 ranks the same way, higher is better.
"""
import os

from . import storage


def _path(dataset):
    return os.path.join(storage.home(), 'boards', dataset + '.jsonl')


def append(dataset, entry):
    storage.append_jsonl(_path(dataset), entry)


def entries(dataset):
    return storage.read_jsonl(_path(dataset))


def datasets_with_boards():
    folder = os.path.join(storage.home(), 'boards')
    if not os.path.isdir(folder):
        return []
    return sorted(n[:-len('.jsonl')] for n in os.listdir(folder) if n.endswith('.jsonl'))


def ranking(dataset, include_tests=False):
    """Best entry per model session, best first (lowest CER)."""
    best = {}
    for entry in entries(dataset):
        if entry.get('test') and not include_tests:
            continue
        key = entry.get('model_session')
        if key not in best or entry['cer'] < best[key]['cer']:
            best[key] = entry
    return sorted(best.values(), key=lambda e: (e['cer'], e.get('time', 0)))
