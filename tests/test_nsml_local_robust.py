"""nsml_local under hostile names, concurrent commands, killed processes and
odd label files (issue 21, items 8-13): nothing escapes a session, nothing
written by one command is lost to another, nothing hangs."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'fixtures'))
import nsml_testkit as kit  # noqa: E402
from nsml_testkit import nsml  # noqa: E402

sys.path.insert(0, kit.NSML_LOCAL)
from nsml import launcher, scoring, storage  # noqa: E402
from nsml import session as sessions  # noqa: E402
from nsml.errors import NSMLError  # noqa: E402

FIRST, SECOND = 'local/t1-cmd/1', 'local/t1-cmd/2'
# From session 1's checkpoints/best (a link into checkpoints/.store/) up to
# sessions/local/t1-cmd/ and down into session 2: the name that once deleted
# another session's checkpoint.
ESCAPING = 'best/../../../../2/checkpoints/1'


@pytest.fixture(scope='module')
def w(tmp_path_factory):
    """A registered 2022 dataset and two finished sessions with checkpoints 0, 1, best."""
    tmp = tmp_path_factory.mktemp('robust')
    home = tmp / 'home'
    data = kit.make_2022(str(tmp / 't1-cmd'))
    code = kit.make_code(str(tmp / 'code'), 'baseline2022_main.py')
    assert nsml(home, 'dataset', 'push', 't1-cmd', data).returncode == 0
    for _ in range(2):
        run = nsml(home, 'run', '-d', 't1-cmd', cwd=code)
        assert run.returncode == 0, run
    return {'home': home, 'data': data, 'code': code, 'tmp': tmp}


def fails(result, reason):
    assert result.returncode != 0, result
    assert result.last_stderr_line.startswith('nsml: error: '), result
    assert reason in result.last_stderr_line, result


def checkpoint_names(home, session):
    return [c['name'] for c in json.loads(nsml(home, 'model', 'ls', '-j', session).stdout)]


def session_meta(home, session):
    return json.load(open(os.path.join(str(home), 'sessions', *session.split('/'), 'session.json')))


# -- item 8: checkpoint names never leave their session ------------------------

@pytest.mark.parametrize('name', [ESCAPING, 'best/../../..', '../../2/checkpoints/1', '/etc', '.store'])
def test_model_rm_refuses_names_that_leave_the_session(w, name):
    fails(nsml(w['home'], 'model', 'rm', FIRST, name), 'invalid checkpoint name')
    assert checkpoint_names(w['home'], SECOND) == ['0', '1', 'best']
    assert checkpoint_names(w['home'], FIRST) == ['0', '1', 'best']


def test_model_pull_refuses_names_that_leave_the_session(w):
    target = w['tmp'] / 'pulled'
    target.mkdir()
    for name in (ESCAPING, 'best/../../..', '../../../../../../../../x'):
        fails(nsml(w['home'], 'model', 'pull', FIRST, name, target), 'invalid checkpoint name')
    assert os.listdir(target) == []


@pytest.mark.parametrize('command', [['submit'], ['submit', '-t'], ['fork', '-c']])
def test_submit_and_fork_refuse_names_that_leave_the_session(w, command):
    before = nsml(w['home'], 'ps', '-a', '-q').stdout
    args = command + ([ESCAPING, FIRST] if command[0] == 'fork' else [FIRST, ESCAPING])
    fails(nsml(w['home'], *args), 'invalid checkpoint name')
    assert nsml(w['home'], 'ps', '-a', '-q').stdout == before  # no session started


def test_load_refuses_names_that_leave_the_session(w):
    program = ('import nsml\n'
               'try:\n'
               '    nsml.load(%r, load_fn=lambda path: print("LOADED", path), session=%r)\n'
               'except nsml.NSMLError as error:\n'
               '    print("REFUSED", error)\n' % (ESCAPING, FIRST))
    done = subprocess.run([sys.executable, '-c', program], env=kit.cli_env(w['home'], NSML_LOCAL_DATASET_PATH=w['data']),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert done.stdout.startswith('REFUSED invalid checkpoint name'), done


def test_session_names_with_dot_parts_are_refused(w):
    fails(nsml(w['home'], 'model', 'ls', 'local/../..'), 'invalid session name')


# -- item 9: concurrent commands lose nothing -----------------------------------

def test_sixteen_concurrent_dataset_pushes_keep_sixteen(w, tmp_path):
    home = tmp_path / 'home'
    pushes = [subprocess.Popen([sys.executable, '-m', 'nsml', 'dataset', 'push', 'set%02d' % i, w['data']],
                               env=kit.cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for i in range(16)]
    assert [p.wait(timeout=120) for p in pushes] == [0] * 16
    registry = json.load(open(home / 'datasets.json'))
    assert sorted(registry) == ['set%02d' % i for i in range(16)]


def test_memo_racing_the_end_of_a_session_keeps_its_final_status(tmp_path, monkeypatch):
    """The memo reads session.json, the session ends, the memo writes: without a lock the
    memo's stale 'running' replaced 'done', and `nsml ps` then called the run failed."""
    monkeypatch.setenv('NSML_LOCAL_HOME', str(tmp_path / 'home'))
    session = sessions.create('t1-cmd', kind='run', entry='main.py')
    session.update(status='running')
    read_json = storage.read_json

    def slow_read(path, default=None):
        found = read_json(path, default)
        if threading.current_thread().name == 'memo':
            time.sleep(0.5)  # the session ends while the memo holds its copy
        return found

    monkeypatch.setattr(storage, 'read_json', slow_read)
    memo = threading.Thread(target=lambda: session.update(memo='baseline'), name='memo')
    memo.start()
    time.sleep(0.1)
    assert launcher.finish(session, 0) == ('done', '')
    memo.join()
    meta = session.meta()
    assert (meta['status'], meta['memo']) == ('done', 'baseline')
    assert launcher.refresh(session)['status'] == 'done'


def test_locks_are_reentrant_within_a_thread_and_exclusive_across_threads(tmp_path):
    lock = str(tmp_path / 'x.lock')
    order = []

    def other_thread():
        with storage.locked(lock):
            order.append('other')

    with storage.locked(lock):
        with storage.locked(lock):  # the same thread again: no self-deadlock
            other = threading.Thread(target=other_thread)
            other.start()
            time.sleep(0.2)
            order.append('holder')
    other.join(timeout=5)
    assert order == ['holder', 'other']
