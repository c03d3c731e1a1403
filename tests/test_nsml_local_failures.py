"""Every failure ends with a one-line reason and a non-zero exit, and leaves
earlier sessions and checkpoints intact."""
import json
import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'fixtures'))
import nsml_testkit as kit  # noqa: E402
from nsml_testkit import nsml  # noqa: E402

ORIGIN = 'local/t1-cmd/1'


@pytest.fixture(scope='module')
def w(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('fail')
    home = tmp / 'home'
    data = kit.make_2022(str(tmp / 't1-cmd'))
    code = kit.make_code(str(tmp / 'code'), 'baseline2022_main.py')
    assert nsml(home, 'dataset', 'add', 't1-cmd', data).returncode == 0
    run = nsml(home, 'run', '-d', 't1-cmd', cwd=code)
    assert run.returncode == 0, run
    yield {'home': home, 'code': code, 'data': data, 'tmp': tmp}
    # Whatever failed above, the first session and its checkpoints are as they were.
    listing = json.loads(nsml(home, 'model', 'ls', '-j', ORIGIN).stdout)
    assert [c['name'] for c in listing] == ['0', '1', 'best']
    assert 'done' in [l for l in nsml(home, 'ps', '-a').stdout.splitlines() if l.startswith(ORIGIN + ' ')][0]


def fails(result, reason):
    """Non-zero exit, and the last line of stderr is the one-line reason."""
    assert result.returncode != 0, result
    assert result.last_stderr_line.startswith('nsml: error: '), result
    assert reason in result.last_stderr_line, result


def test_missing_session(w):
    fails(nsml(w['home'], 'submit', 't1-cmd/99', 'best'), "no session 't1-cmd/99'")
    fails(nsml(w['home'], 'model', 'ls', '42'), "no session '42'")
    fails(nsml(w['home'], 'logs', 'other/1'), "no session 'other/1'")


def test_missing_checkpoint(w):
    fails(nsml(w['home'], 'submit', ORIGIN, 'nope'), "session local/t1-cmd/1 has no checkpoint 'nope'; it has: 0, 1, best")
    fails(nsml(w['home'], 'fork', '-c', 'nope', ORIGIN), "has no checkpoint 'nope'")
    fails(nsml(w['home'], 'model', 'pull', ORIGIN, 'nope', w['tmp']), "has no checkpoint 'nope'")


def test_dataset_that_does_not_exist(w):
    before = nsml(w['home'], 'ps', '-a', '-q').stdout
    fails(nsml(w['home'], 'run', '-d', '/no/such/dataset', cwd=w['code']), "dataset path '/no/such/dataset' does not exist")
    fails(nsml(w['home'], 'run', '-d', 'unknown-name', cwd=w['code']),
          "dataset 'unknown-name' is neither a registered dataset")
    fails(nsml(w['home'], 'dataset', 'push', 'x', '/no/such/dataset'), 'does not exist')
    fails(nsml(w['home'], 'run', '-d', 't1-cmd', '-e', 'missing.py', cwd=w['code']), "entry file 'missing.py' not found")
    assert nsml(w['home'], 'ps', '-a', '-q').stdout == before  # no session was created


def test_entry_that_crashes_before_bind(w):
    fails(nsml(w['home'], 'run', '-d', 't1-cmd', cwd=w['code'], FIXTURE_FAULT='crash_before_bind'),
          'main.py exited with status 1 before calling nsml.bind: RuntimeError: fixture crashed before bind')


def test_load_that_raises(w):
    fails(nsml(w['home'], 'submit', ORIGIN, 'best', FIXTURE_FAULT='load_raises'),
          "load of checkpoint 'best' of local/t1-cmd/1 raised ValueError: fixture cannot read its checkpoint")
    fails(nsml(w['home'], 'fork', ORIGIN, FIXTURE_FAULT='load_raises'), 'raised ValueError')


@pytest.mark.parametrize('fault, reason', [
    ('unsorted', "submit failed: infer's records are not sorted by filename: 'test_000011' comes before 'test_000010'"),
    ('duplicate', 'submit failed: infer returned 13 records for 12 test files; duplicated: test_000000'),
    ('missing', 'submit failed: infer returned 11 records for 12 test files; missing: test_000011'),
    ('extra', 'submit failed: infer returned 13 records for 12 test files; not in the test folder: zz_not_a_test_file'),
    ('not_a_list', "submit failed: infer must return a list of {'filename', 'text'} dicts; it returned a dict"),
    ('text_not_str', "submit failed: infer's record 0 ('test_000000'): 'text' must be a str, not list"),
])
def test_infer_output_is_validated(w, fault, reason):
    fails(nsml(w['home'], 'submit', ORIGIN, 'best', FIXTURE_FAULT=fault), reason)


def test_test_data_is_unreachable_before_load(w):
    fails(nsml(w['home'], 'submit', ORIGIN, 'best', FIXTURE_FAULT='read_test_in_load'),
          'raised FileNotFoundError')
    result = nsml(w['home'], 'submit', '-t', ORIGIN, 'best', FIXTURE_FAULT='read_test_in_load')
    fails(result, '(test data is only reachable inside infer during submit)')
    fails(nsml(w['home'], 'submit', ORIGIN, 'best', FIXTURE_FAULT='read_test_at_import'),
          'before calling nsml.bind: FileNotFoundError')


def test_inference_time_limit(w):
    started = time.time()
    result = nsml(w['home'], 'submit', '--time-limit', '0.5', ORIGIN, 'best', FIXTURE_FAULT='slow_infer')
    fails(result, 'submit failed: inference exceeded the time limit: 0.5 s elapsed of 0.5 s '
                  '(counted from the end of loading)')
    assert time.time() - started < 4.5  # the 5 s infer was cut at the limit
    assert 'CER' not in nsml(w['home'], 'dataset', 'board', 't1-cmd').stdout


def test_run_killed_mid_save_keeps_the_previous_checkpoint(w):
    result = nsml(w['home'], 'run', '-d', 't1-cmd', cwd=w['code'], FIXTURE_FAULT='die_mid_save')
    fails(result, "main.py was killed by SIGKILL while saving checkpoint 'best' (earlier checkpoints are intact)")
    session = result.stdout.splitlines()[0].split()[1]
    listing = json.loads(nsml(w['home'], 'model', 'ls', '-j', session).stdout)
    assert [c['name'] for c in listing] == ['0', 'best', '1']
    pulled = w['tmp'] / 'pulled'
    assert nsml(w['home'], 'model', 'pull', session, 'best', pulled).returncode == 0
    (folder,) = os.listdir(pulled)
    state = json.load(open(pulled / folder / 'model.json'))  # whole, from epoch 0
    assert state['epochs_trained'] == 1
    submit = nsml(w['home'], 'submit', session, 'best')
    assert submit.returncode == 0 and submit.last_stdout_line.startswith('CER: '), submit
    assert 'failed' in [l for l in nsml(w['home'], 'ps', '-a').stdout.splitlines() if l.startswith(session + ' ')][0]


def test_detached_session_runs_in_background_and_stops(w):
    home = w['home']
    start = nsml(home, 'run', '-d', 't1-cmd', '--detach', cwd=w['code'], FIXTURE_FAULT='slow_train')
    assert start.returncode == 0, start
    session = start.stdout.splitlines()[0].split()[1]
    deadline = time.time() + 20
    while time.time() < deadline:  # wait for the first epoch's checkpoints
        names = [c['name'] for c in json.loads(nsml(home, 'model', 'ls', '-j', session).stdout)]
        if 'best' in names:
            break
        time.sleep(0.2)
    assert names == ['0', 'best']
    assert session in nsml(home, 'ps', '-q').stdout.split()  # running
    fails(nsml(home, 'rm', session), 'is running; stop it first')
    follower = subprocess.Popen([sys.executable, '-m', 'nsml', 'logs', '-f', session], env=kit.cli_env(home),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    stop = nsml(home, 'stop', session)
    assert stop.returncode == 0, stop
    followed, _ = follower.communicate(timeout=10)  # `logs -f` ends when the session does
    assert 'epoch 0 train_loss 1.0000' in followed
    row = [l for l in nsml(home, 'ps', '-a').stdout.splitlines() if l.startswith(session + ' ')][0]
    assert ' stopped ' in row
    fails(nsml(home, 'stop', session), 'is not running (status: stopped)')
    logs = nsml(home, 'logs', session)
    assert 'epoch 0 train_loss 1.0000' in logs.stdout
    assert [c['name'] for c in json.loads(nsml(home, 'model', 'ls', '-j', session).stdout)] == ['0', 'best']
    assert nsml(home, 'rm', session).returncode == 0


def test_direct_session_has_no_code_to_submit(w):
    env = kit.cli_env(w['home'], NSML_LOCAL_DATASET_PATH=w['data'])
    direct = subprocess.run([sys.executable, 'main.py', '--num_epochs', '1'], cwd=w['code'], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert direct.returncode == 0, direct.stderr
    assert 'local/t1-cmd/direct' in nsml(w['home'], 'ps', '-a', '-q').stdout.split()
    fails(nsml(w['home'], 'submit', 't1-cmd/direct', 'best'), 'has no uploaded code')
