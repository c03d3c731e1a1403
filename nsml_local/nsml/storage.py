"""Where local state lives and small helpers to read and write it safely.

Everything nsml_local remembers (sessions, checkpoints, reports, datasets,
leaderboards) sits under one folder: $NSML_LOCAL_HOME, default ~/.nsml_local.
Writers replace whole files atomically (write a temp file, then rename), so a
process killed half-way never leaves a torn JSON file behind.
"""
import json
import os
import tempfile

HOME_ENV = 'NSML_LOCAL_HOME'
DEFAULT_HOME = '~/.nsml_local'


def home():
    """The state folder, read from the environment on every call."""
    return os.path.abspath(os.path.expanduser(os.environ.get(HOME_ENV) or DEFAULT_HOME))


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
