"""Sessions on disk.

A session is a folder HOME/sessions/local/<dataset>/<N>/ holding:

    session.json    what the CLI knows: kind, dataset, entry, args, status ...
    runtime.json    what the entry process reported (bound, saving, failure, result)
    log.txt         stdout and stderr of the entry process
    reports.jsonl   one line per nsml.report call; summary.json the latest summary
    code/           the uploaded snapshot, never run in (fork and submit copy it)
    work/           a copy of code/ the entry file runs in
    checkpoints/    see checkpoints.py

The implicit session of direct runs is local/<dataset>/direct.
"""
import os
import shutil
import time

from . import storage
from .environment import USER
from .errors import NSMLError

STATUSES = ('preparing', 'running', 'done', 'failed', 'stopped', 'direct')
LOCK_FILE = '.lock'


def sessions_root():
    return os.path.join(storage.home(), 'sessions')


class Session:
    def __init__(self, name):
        self.name = name
        self.dir = os.path.join(sessions_root(), *name.split('/'))

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @property
    def dataset(self):
        return self.name.split('/')[1]

    @property
    def number(self):
        return self.name.split('/')[2]

    def meta(self):
        return storage.read_json(self.path('session.json'), {})

    def lock(self):
        """The lock of this session's state files (session.json, runtime.json, summary.json)."""
        return storage.locked(self.path(LOCK_FILE))

    def update(self, **fields):
        """Change some fields of session.json without losing a concurrent change to others
        (a memo written while the session ends keeps the final status)."""
        return storage.update_json(self.path('session.json'), self.path(LOCK_FILE), lambda meta: meta.update(fields))

    def runtime(self):
        return storage.read_json(self.path('runtime.json'), {})

    def exists(self):
        return os.path.isfile(self.path('session.json'))

    def __repr__(self):
        return 'Session(%r)' % self.name


def create(dataset_name, **meta):
    """Make local/<dataset>/<N> with N one more than the highest so far."""
    parent = os.path.join(sessions_root(), USER, dataset_name)
    os.makedirs(parent, exist_ok=True)
    with storage.locked(storage.lock_path('sessions-' + dataset_name)):
        numbers = [int(n) for n in os.listdir(parent) if n.isdigit()]
        number = max(numbers, default=0) + 1
        os.mkdir(os.path.join(parent, str(number)))  # fails loudly rather than share a number
    session = Session('%s/%s/%d' % (USER, dataset_name, number))
    meta.update(name=session.name, dataset=dataset_name, created=time.time(), status='preparing')
    storage.write_json(session.path('session.json'), meta)
    return session


def all_sessions():
    """Every session, newest first (direct sessions after numbered ones)."""
    root = os.path.join(sessions_root(), USER)
    found = []
    if os.path.isdir(root):
        for dataset in sorted(os.listdir(root)):
            folder = os.path.join(root, dataset)
            if not os.path.isdir(folder):
                continue
            for number in os.listdir(folder):
                session = Session('%s/%s/%s' % (USER, dataset, number))
                if session.exists():
                    found.append(session)
    found.sort(key=lambda s: (s.number.isdigit(), s.meta().get('created', 0)), reverse=True)
    return found


def resolve(name):
    """A session from a full (local/ds/3), short (ds/3) or bare (3) name."""
    parts = [p for p in str(name).strip().split('/') if p]
    if any(p in ('.', '..') or '\\' in p or '\0' in p for p in parts):
        raise NSMLError("invalid session name '%s': no '.' or '..' parts" % name)
    if len(parts) == 3:
        if parts[0] != USER:
            raise NSMLError("no session '%s': local sessions are named %s/<dataset>/<N>" % (name, USER))
        candidates = [Session('/'.join(parts))]
    elif len(parts) == 2:
        candidates = [Session('%s/%s/%s' % (USER, parts[0], parts[1]))]
    elif len(parts) == 1:
        candidates = [s for s in all_sessions() if s.number == parts[0]]
        if len(candidates) > 1:
            raise NSMLError("session '%s' is ambiguous: %s" % (name, ', '.join(s.name for s in candidates)))
    else:
        candidates = []
    candidates = [s for s in candidates if s.exists()]
    if not candidates:
        raise NSMLError("no session '%s' (nsml ps -a lists them)" % name)
    return candidates[0]


def remove(session):
    shutil.rmtree(session.dir)
