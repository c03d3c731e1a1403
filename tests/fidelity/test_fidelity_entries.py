"""Participants' own NSML entries through nsml_local: run, model ls, submit -t,
submit, fork, as on NSML (issue 21, item 13). See README.md in this folder.

Skipped unless NSML_FIDELITY_ENTRIES names a folder: one entry folder (it holds
the entry file), or a folder of them. Nothing here needs the network; the
entries' code is never part of this repository.
"""
import json
import os
import re
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'fixtures'))
import nsml_testkit as kit  # noqa: E402

ENTRIES_ENV = 'NSML_FIDELITY_ENTRIES'
CONFIG_FILE = 'nsml_fidelity.json'
DEFAULTS = {
    'entry': 'main.py',     # the file `nsml run -e` starts
    'layout': None,         # '2019' or '2022'; None: 2019 when the folder has hackathon.labels
    'dataset': None,        # a dataset folder to use; None: a tiny synthetic one in that layout
    'owner_scripts': None,  # a folder (relative to the entry) with the owner's data_loader.py + evaluation.py
    'run_args': '',
    'fork_args': None,      # None: the run's arguments
    'checkpoint': None,     # None: the latest
    'env': {},              # e.g. {"NSML_LOCAL_AS_NSML": "1"}
    'timeout': 1800,        # seconds for each command
}
SCORE_LINE = re.compile(r'^[A-Z_]+: -?[0-9.]+(e[-+]?[0-9]+)?$')


def entry_folders():
    root = os.environ.get(ENTRIES_ENV)
    if not root:
        return []
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise ValueError('%s=%s is not a folder' % (ENTRIES_ENV, root))
    if is_entry(root):
        return [root]
    return sorted(os.path.join(root, n) for n in os.listdir(root) if is_entry(os.path.join(root, n)))


def is_entry(folder):
    return os.path.isfile(os.path.join(folder, CONFIG_FILE)) or os.path.isfile(os.path.join(folder, 'main.py'))


def config_of(folder):
    config = dict(DEFAULTS)
    path = os.path.join(folder, CONFIG_FILE)
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            config.update(json.load(f))
    if config['layout'] is None:
        config['layout'] = '2019' if os.path.isfile(os.path.join(folder, 'hackathon.labels')) else '2022'
    return config


def read_label_map(path):
    """The 2019 label file '#id<TAB>char<TAB>freq' as {char: id}."""
    ids = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            parts = line.rstrip('\n').split('\t')
            if len(parts) >= 2 and parts[0].isdigit():
                ids[parts[1]] = int(parts[0])
    return ids


def make_2019_for(folder, root):
    """A tiny 2019 dataset whose label ids come from the entry's own hackathon.labels,
    and whose test_label is as in the 2019 data: headerless 'stem,text' lines."""
    ids = read_label_map(os.path.join(folder, 'hackathon.labels'))
    train = os.path.join(root, 'train', 'train_data')
    test = os.path.join(root, 'test', 'test_data')
    os.makedirs(train)
    os.makedirs(test)
    with open(os.path.join(train, 'data_list.csv'), 'w') as listing, \
            open(os.path.join(root, 'train', 'train_label'), 'w') as combined:
        for i, text in enumerate(kit.TRAIN_TEXTS):
            name = 'wav_%03d' % i
            kit.write_wav(os.path.join(train, name + '.wav'), kit._noise(kit.length_of(i) * 4, i))
            label = ' '.join(str(ids[c]) for c in text if c in ids)
            with open(os.path.join(train, name + '.label'), 'w') as f:
                f.write(label + '\n')
            listing.write('%s.wav,%s.label\n' % (name, name))
            combined.write('%s,%s\n' % (name, label))
    with open(os.path.join(test, 'test_list.csv'), 'w') as listing, \
            open(os.path.join(root, 'test', 'test_label'), 'w', encoding='utf-8') as labels:
        for j, (i, offset, text) in enumerate(kit.TEST_ITEMS):
            kit.write_wav(os.path.join(test, 'test_%03d.wav' % j), kit._noise(kit.length_of(i) * 4 + offset, 100 + j))
            listing.write('test_%03d.wav\n' % j)
            labels.write('test_%03d,%s\n' % (j, text))
    return root


def dataset_for(folder, config, tmp):
    if config['dataset']:
        return os.path.abspath(os.path.join(folder, config['dataset']))
    name = 'sr-hack-2019-dataset' if config['layout'] == '2019' else 't1-cmd'
    root = os.path.join(tmp, name)
    if config['layout'] == '2019':
        make_2019_for(folder, root)
    else:
        kit.make_2022(root)
    if config['owner_scripts']:
        for script in ('data_loader.py', 'evaluation.py'):
            shutil.copy(os.path.join(folder, config['owner_scripts'], script), root)
    return root


def succeeds(result, what):
    assert result.returncode == 0, '%s failed:\n%r' % (what, result)
    return result


@pytest.mark.skipif(not os.environ.get(ENTRIES_ENV), reason='set %s to a participant entry folder' % ENTRIES_ENV)
@pytest.mark.parametrize('folder', entry_folders(), ids=os.path.basename)
def test_entry_runs_lists_submits_and_forks(folder, tmp_path):
    config = config_of(folder)
    home = tmp_path / 'home'
    env = dict(config['env'])
    if 'PYTHONPATH' in env:  # added to the path `python -m nsml` needs, not instead of it
        env['PYTHONPATH'] = os.pathsep.join([env['PYTHONPATH'], kit.NSML_LOCAL, os.environ.get('PYTHONPATH', '')])
    timeout = config['timeout']
    data = dataset_for(folder, config, str(tmp_path))

    run = succeeds(kit.nsml(home, 'run', '-d', data, '-e', config['entry'], '-a', config['run_args'],
                            cwd=folder, timeout=timeout, **env), 'nsml run')
    session = run.stdout.splitlines()[0].split()[1]

    listed = succeeds(kit.nsml(home, 'model', 'ls', '-j', session, **env), 'nsml model ls')
    names = [c['name'] for c in json.loads(listed.stdout)]
    assert names, 'the run saved no checkpoint:\n%r' % run
    checkpoint = str(config['checkpoint'] or names[-1])
    assert checkpoint in names, 'checkpoint %s is not among %s' % (checkpoint, names)

    for flags in (['-t'], []):
        submit = succeeds(kit.nsml(home, 'submit', *flags, session, checkpoint, timeout=timeout, **env),
                          'nsml submit %s' % ' '.join(flags))
        assert SCORE_LINE.match(submit.last_stdout_line), submit

    fork_args = config['run_args'] if config['fork_args'] is None else config['fork_args']
    fork = succeeds(kit.nsml(home, 'fork', '-c', checkpoint, '-a', fork_args, session, timeout=timeout, **env),
                    'nsml fork')
    assert "nsml: loading checkpoint '%s' of %s" % (checkpoint, session) in fork.stdout, fork
