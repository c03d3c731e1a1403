"""Checkpoints of a session, saved atomically.

Layout inside a session folder:

    checkpoints/<name>  -> .store/<name>.<pid>.<random>   (a relative symlink)
    checkpoints/.store/<name>.<pid>.<random>/model/       what the save fn wrote
    checkpoints/.store/<name>.<pid>.<random>/info.json    modified, elapsed, summary, size

A save writes a fresh store folder, then swaps the symlink with os.replace,
which is atomic: a process killed at any point leaves either the old
checkpoint or the new one, never half of one. Store folders no symlink points
to (left by killed saves) are swept on later saves, when the session ends and
when a direct run starts (see sweep).
"""
import os
import shutil
import tempfile
import time

from . import storage
from .errors import NSMLError

STORE = '.store'


def checkpoint_name(checkpoint):
    """str(checkpoint); None means the current time, like NSML."""
    return valid_name(time.strftime('%Y%m%d-%H%M%S') if checkpoint is None else checkpoint)


def valid_name(name):
    """A checkpoint name that stays one entry of its session's checkpoints/ folder.

    Checked by every command that takes a name (save, load, model rm/pull, fork,
    submit): 'best/../../../2/checkpoints/1' once deleted another session's
    checkpoint, and an absolute name would join to a path outside HOME.
    """
    name = str(name)
    if not name or name.startswith('.') or '/' in name or '\\' in name or '\0' in name:
        raise NSMLError('invalid checkpoint name %r: it must be a plain file name (no path separators, '
                        'no leading dot)' % name)
    return name


def _root(session_dir):
    return os.path.join(session_dir, 'checkpoints')


def save(session_dir, name, write, info):
    """Call write(model_dir) in a fresh folder, then publish it as `name`."""
    root = _root(session_dir)
    store = os.path.join(root, STORE)
    os.makedirs(store, exist_ok=True)
    target = tempfile.mkdtemp(prefix='%s.%d.' % (name, os.getpid()), dir=store)
    model_dir = os.path.join(target, 'model')
    os.mkdir(model_dir)
    try:
        write(model_dir)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    info = dict(info, name=name, modified=time.time(), size=storage.dir_size(model_dir))
    storage.write_json(os.path.join(target, 'info.json'), info)
    link = os.path.join(root, name)
    previous = os.path.realpath(link) if os.path.islink(link) else None
    tmp_link = os.path.join(root, '.link-%s-%d' % (name, os.getpid()))
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(os.path.join(STORE, os.path.basename(target)), tmp_link)
    os.replace(tmp_link, link)  # the atomic step
    if previous and previous != os.path.realpath(link):
        shutil.rmtree(previous, ignore_errors=True)
    sweep(session_dir)
    return info


def _writer_pid(entry):
    """The pid in '<name>.<pid>.<random>' (a store) or '.link-<name>-<pid>' (a link being swapped)."""
    try:
        if entry.startswith('.link-'):
            return int(entry.rsplit('-', 1)[1])
        return int(entry.rsplit('.', 2)[-2])
    except (IndexError, ValueError):
        return None


def sweep(session_dir):
    """Remove what saves of dead processes left: store folders no checkpoint points to
    (a model's worth each) and half-swapped links. Run after each save, when a
    session ends and when a direct run starts."""
    root = _root(session_dir)
    store = os.path.join(root, STORE)
    if not os.path.isdir(store):
        return
    used = {os.path.realpath(os.path.join(root, n)) for n in os.listdir(root) if not n.startswith('.')}
    leftovers = [os.path.join(store, e) for e in os.listdir(store)
                 if os.path.realpath(os.path.join(store, e)) not in used]
    leftovers += [os.path.join(root, e) for e in os.listdir(root) if e.startswith('.link-')]
    for path in leftovers:
        pid = _writer_pid(os.path.basename(path))
        if pid != os.getpid() and not storage.pid_alive(pid):
            if os.path.islink(path) or not os.path.isdir(path):
                os.unlink(path)
            else:
                shutil.rmtree(path, ignore_errors=True)


def listing(session_dir):
    """[info, ...] of the session's checkpoints, oldest first."""
    root = _root(session_dir)
    found = []
    if os.path.isdir(root):
        for name in os.listdir(root):
            path = os.path.join(root, name)
            if name.startswith('.') or not os.path.isdir(path):
                continue
            info = storage.read_json(os.path.join(path, 'info.json'), {})
            info.setdefault('name', name)
            info.setdefault('modified', os.path.getmtime(path))
            found.append(info)
    found.sort(key=lambda i: i['modified'])
    return found


def names(session_dir):
    return [i['name'] for i in listing(session_dir)]


def latest(session_dir):
    found = listing(session_dir)
    return found[-1]['name'] if found else None


def locate(session_dir, session_name, name):
    """The model folder of checkpoint `name`, or an error saying what exists."""
    name = valid_name(name)
    path = os.path.join(_root(session_dir), name, 'model')
    store = os.path.realpath(os.path.join(_root(session_dir), STORE))
    # The name is one path component; the link it names must also point into this session's store.
    if os.path.isdir(path) and os.path.realpath(path).startswith(store + os.sep):
        return os.path.realpath(path)
    existing = names(session_dir)
    raise NSMLError("session %s has no checkpoint '%s'; it has: %s"
                    % (session_name, name, ', '.join(existing) if existing else 'none'))


def remove(session_dir, session_name, name):
    model = locate(session_dir, session_name, name)
    link = os.path.join(_root(session_dir), valid_name(name))
    os.unlink(link)
    shutil.rmtree(os.path.dirname(model), ignore_errors=True)


def pull(session_dir, session_name, name, destination):
    model = locate(session_dir, session_name, name)
    shutil.copytree(model, destination)
    return destination
