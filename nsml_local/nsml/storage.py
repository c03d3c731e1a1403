"""Where local state lives and small helpers to read and write it safely.

Everything nsml_local remembers (sessions, checkpoints, reports, datasets,
leaderboards) sits under one folder: $NSML_LOCAL_HOME, default ~/.nsml_local.
Writers replace whole files atomically (write a temp file, then rename), so a
process killed half-way never leaves a torn JSON file behind. Every
read-modify-write of shared state (the dataset registry, a session's
session.json/runtime.json/summary.json, a leaderboard, the session counter)
runs under locked(): without it two commands that read the same old file both
write it back and one change is lost (16 concurrent `dataset push` kept 7).
"""
import contextlib
import fcntl
import json
import os
import tempfile
import threading

HOME_ENV = 'NSML_LOCAL_HOME'
DEFAULT_HOME = '~/.nsml_local'


def home():
    """The state folder, read from the environment on every call."""
    return os.path.abspath(os.path.expanduser(os.environ.get(HOME_ENV) or DEFAULT_HOME))


def lock_path(name):
    """HOME/locks/<name>.lock: for state that is not inside one session folder."""
    return os.path.join(home(), 'locks', name + '.lock')


# flock() locks belong to an open file; a second open() of the same lock file by
# the same thread would wait for itself. Each thread counts the locks it holds.
_held = threading.local()


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive fcntl.flock on the file `path` (created if missing).

    Re-entrant within a thread; other threads and processes wait. The kernel
    drops the lock when its holder dies, so a killed command never wedges others.
    """
    counts = _held.__dict__.setdefault('counts', {})
    key = os.path.abspath(path)
    if counts.get(key):
        counts[key] += 1
        try:
            yield
        finally:
            counts[key] -= 1
        return
    os.makedirs(os.path.dirname(key), exist_ok=True)
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        counts[key] = 1
        try:
            yield
        finally:
            counts[key] = 0
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def update_json(path, lock, change, default=None):
    """Read JSON `path`, apply change(obj) (which edits it in place or returns a new one), write it
    back, all under the lock file `lock`; return what was written."""
    with locked(lock):
        obj = read_json(path, {} if default is None else default)
        changed = change(obj)
        obj = obj if changed is None else changed
        write_json(path, obj)
        return obj


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(obj, f, ensure_ascii=False, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path, default=None):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except ValueError:
        return default


def append_jsonl(path, obj):
    """Append one JSON line; a single small write with O_APPEND stays whole."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    line = json.dumps(obj, ensure_ascii=False) + '\n'
    with open(path, 'a', encoding='utf-8') as f:
        f.write(line)


def read_jsonl(path):
    records = []
    try:
        with open(path, encoding='utf-8') as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue  # a line torn by a kill mid-write is skipped
    except FileNotFoundError:
        pass
    return records


def dir_size(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def human_size(n):
    for unit in ('B', 'KB', 'MB', 'GB'):
        if n < 1024 or unit == 'GB':
            return '%d %s' % (n, unit) if unit == 'B' else '%.1f %s' % (n, unit)
        n /= 1024.0


def process_start(pid):
    """The start time of process `pid` in clock ticks since boot (/proc/PID/stat field 22),
    or None where unknown. A pid with another start time is another process reusing the number."""
    try:
        with open('/proc/%d/stat' % int(pid)) as f:
            return int(f.read().rsplit(') ', 1)[1].split()[19])
    except (OSError, ValueError, IndexError, TypeError):
        return None


def same_process_alive(pid, start=None):
    """Is `pid` alive and, when its start time was recorded, still the process that recorded it?"""
    if not pid_alive(pid):
        return False
    return start is None or process_start(pid) in (None, start)


def pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open('/proc/%d/stat' % int(pid)) as f:
            return f.read().split(') ')[-1][:1] != 'Z'
    except OSError:
        return True
