"""Datasets: the local registry, the two layouts and how a dataset is scored.

`nsml dataset push NAME PATH` records NAME -> PATH in HOME/datasets.json (the
data is not copied). `-d` accepts such a name or a path to a dataset folder.
A folder is named after its base name, unless that name already belongs to
another folder: then a short hash of its real path is appended, so two
folders called `t1-cmd` never share sessions or a leaderboard. Board entries
also carry identity(): the real path and the references' content, so a board
ranks only scores on the test set it has now.

Which infer protocol a dataset uses:
  owner    the dataset ships data_loader.py (with feed_infer) and
           evaluation.py at its root or under test/: they are used as is;
  2019     test/test_data/test_list.csv exists: infer(wav_path) -> str;
  2022     otherwise: infer(test_data_dir) -> [{'filename', 'text'}, ...].
"""
import hashlib
import os

from . import storage
from .environment import USER, safe_name
from .errors import NSMLError
from .scoring import read_text  # UTF-8 or cp949, as for the label files

PROTOCOLS = ('owner', '2019', '2022')


def _registry_path():
    return os.path.join(storage.home(), 'datasets.json')


def registry():
    return storage.read_json(_registry_path(), {})


def push(name, path):
    if not os.path.isdir(path):
        raise NSMLError("dataset path '%s' does not exist or is not a folder" % path)
    if safe_name(name) != name:
        raise NSMLError("dataset name '%s' may only use letters, digits, '.', '_' and '-'" % name)
    path = os.path.abspath(path)
    storage.update_json(_registry_path(), storage.lock_path('datasets'), lambda entries: entries.update({name: path}))
    return path


def identity(root):
    """What a score was measured on: the dataset's real path and the bytes of its test_label."""
    digest = hashlib.sha256(os.path.realpath(root).encode('utf-8', 'surrogateescape') + b'\0')
    try:
        with open(label_path(root), 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    except OSError:
        pass  # no references here (an owner dataset keeps them elsewhere): the path alone
    return digest.hexdigest()[:16]


def _session_metas(name):
    folder = os.path.join(storage.home(), 'sessions', USER, name)
    if not os.path.isdir(folder):
        return []
    return [storage.read_json(os.path.join(folder, number, 'session.json'), {}) for number in os.listdir(folder)]


def paths_named(name):
    """Real paths of the dataset folders that the registry or sessions know as `name`."""
    found = {os.path.realpath(m['dataset_path']) for m in _session_metas(name) if m.get('dataset_path')}
    if registry().get(name):
        found.add(os.path.realpath(registry()[name]))
    return found


def current_path(name):
    """The folder `name` stands for now: the registered one, else the newest session's."""
    if registry().get(name):
        return registry()[name]
    metas = sorted((m for m in _session_metas(name) if m.get('dataset_path')), key=lambda m: m.get('created', 0))
    return metas[-1]['dataset_path'] if metas else None


def resolve(argument):
    """(name, absolute path) of a `-d` argument: a registered name or a folder."""
    entries = registry()
    if argument in entries and os.sep not in argument:
        path = entries[argument]
        if not os.path.isdir(path):
            raise NSMLError("dataset '%s' is registered at %s, which does not exist" % (argument, path))
        return argument, path
    if os.path.isdir(argument):
        path = os.path.abspath(argument)
        name = safe_name(os.path.basename(os.path.normpath(path)))
        if paths_named(name) - {os.path.realpath(path)}:  # that name is another folder's
            name = '%s-%s' % (name, hashlib.sha256(os.path.realpath(path).encode('utf-8', 'surrogateescape'))
                              .hexdigest()[:6])
        return name, path
    if os.sep in argument or argument.startswith('.'):
        raise NSMLError("dataset path '%s' does not exist" % argument)
    raise NSMLError("dataset '%s' is neither a registered dataset (nsml dataset ls) nor an existing folder"
                    % argument)


def test_data_dir(root):
    return os.path.join(root, 'test', 'test_data')


def label_path(root):
    return os.path.join(root, 'test', 'test_label')


def owner_scripts(root):
    """The folder holding the dataset owner's data_loader.py + evaluation.py, or None."""
    for folder in (root, os.path.join(root, 'test')):
        if (os.path.isfile(os.path.join(folder, 'data_loader.py'))
                and os.path.isfile(os.path.join(folder, 'evaluation.py'))):
            return folder
    return None


def protocol(root):
    if owner_scripts(root):
        return 'owner'
    if os.path.isfile(os.path.join(test_data_dir(root), 'test_list.csv')):
        return '2019'
    return '2022'


def read_test_list(path):
    return [line.strip().split(',')[0] for line in read_text(path)[0].splitlines() if line.strip()]


def test_items(root):
    """The file names making up the test set, in feeding order."""
    folder = test_data_dir(root)
    if not os.path.isdir(folder):
        raise NSMLError('dataset %s has no test set: %s does not exist' % (root, folder))
    listed = os.path.join(folder, 'test_list.csv')
    if os.path.isfile(listed):
        return read_test_list(listed)
    return sorted(n for n in os.listdir(folder)
                  if not n.startswith('.') and os.path.isfile(os.path.join(folder, n)))


def describe(root):
    """A short line for `nsml dataset ls`."""
    if not os.path.isdir(root):
        return 'missing'
    parts = [protocol(root)]
    train = os.path.join(root, 'train', 'train_data')
    if os.path.isdir(train):
        parts.append('train %d files' % len([n for n in os.listdir(train) if not n.startswith('.')]))
    try:
        parts.append('test %d items' % len(test_items(root)))
    except NSMLError:
        parts.append('no test set')
    return ', '.join(parts)
