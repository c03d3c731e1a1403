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
    listed = nsml(home, 'model', 'ls', '-j', session)
    return [c['name'] for c in json.loads(listed.stdout)] if listed.returncode == 0 else []


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


# -- item 10: live direct sessions are protected; datasets are their folders ----

def test_rm_refuses_a_direct_session_whose_process_lives(w, tmp_path):
    home = tmp_path / 'home'
    # Epoch 0's checkpoints, then a 60 s sleep.
    env = kit.cli_env(home, FIXTURE_FAULT='slow_train', NSML_LOCAL_DATASET_PATH=w['data'])
    training = subprocess.Popen([sys.executable, 'main.py'], cwd=w['code'], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and 'best' not in checkpoint_names(home, 't1-cmd/direct'):
            time.sleep(0.2)
        fails(nsml(home, 'rm', 't1-cmd/direct'), 'is in use by a direct run (pid %d)' % training.pid)
        assert checkpoint_names(home, 't1-cmd/direct') == ['0', 'best']
    finally:
        training.kill()
        training.wait()
    assert nsml(home, 'rm', 't1-cmd/direct').returncode == 0


def _with_other_references(root):
    """The same test audio, other transcripts: a different test set in a folder of the same name."""
    with open(os.path.join(root, 'test', 'test_label'), 'w', encoding='utf-8') as f:
        f.write('filename,text\n')
        for j in range(len(kit.TEST_ITEMS)):
            f.write('test_%06d,전혀 다른 문장\n' % j)
    return root


def test_two_datasets_with_one_folder_name_keep_their_own_sessions_and_boards(w, tmp_path):
    home = tmp_path / 'home'
    first = kit.make_2022(str(tmp_path / 'a' / 't1-cmd'))
    second = _with_other_references(kit.make_2022(str(tmp_path / 'b' / 't1-cmd')))
    names = []
    for folder in (first, second):
        run = nsml(home, 'run', '-d', folder, cwd=w['code'])
        assert run.returncode == 0, run
        names.append(run.stdout.splitlines()[0].split()[1])
        assert nsml(home, 'submit', names[-1], 'best').returncode == 0
    assert names[0] == 'local/t1-cmd/1'
    assert names[1].startswith('local/t1-cmd-') and names[1].endswith('/1')
    board = nsml(home, 'dataset', 'board', 't1-cmd').stdout
    assert names[0] in board and names[1] not in board
    assert names[1] in nsml(home, 'dataset', 'board', second).stdout


def test_a_board_ranks_only_scores_on_the_test_set_its_name_stands_for_now(w, tmp_path):
    home = tmp_path / 'home'
    first = kit.make_2022(str(tmp_path / 'a' / 'set'))
    second = _with_other_references(kit.make_2022(str(tmp_path / 'b' / 'set')))
    for folder in (first, second):
        assert nsml(home, 'dataset', 'push', 'speech', folder).returncode == 0
        run = nsml(home, 'run', '-d', 'speech', cwd=w['code'])
        assert run.returncode == 0, run
        assert nsml(home, 'submit', run.stdout.splitlines()[0].split()[1], 'best').returncode == 0
    board = nsml(home, 'dataset', 'board', 'speech').stdout.splitlines()
    assert [l.split()[1] for l in board[2:-1]] == ['local/speech/3']  # 2 was the first submit
    assert board[-1].startswith('1 submit on another test set named speech')


# -- item 11: nothing downstream of `nsml run` can stall or orphan the entry ----

CHATTY_ENTRY = '''import argparse, os, time
import nsml
parser = argparse.ArgumentParser()
parser.add_argument('--mode', default='train')
parser.add_argument('--iteration', default='0')
parser.add_argument('--pause', type=int, default=0)
parser.add_argument('--lines', type=int, default=0)
parser.add_argument('--sleep', type=float, default=0)
config = parser.parse_args()
nsml.bind(save=lambda folder, **kw: open(os.path.join(folder, 'model'), 'w').write('x'),
          load=lambda folder, **kw: None, infer=lambda path, **kw: [])
with open('pid', 'w') as f:
    f.write(str(os.getpid()))
time.sleep(config.sleep)
for i in range(config.lines):
    print('line %06d %s' % (i, 'x' * 60))
nsml.save('best')
print('END OF TRAINING')
'''


@pytest.fixture(scope='module')
def chatty(w, tmp_path_factory):
    code = tmp_path_factory.mktemp('chatty')
    (code / 'main.py').write_text(CHATTY_ENTRY)
    return str(code)


def newest_session_dir(home):
    name = nsml(home, 'ps', '-a', '-q', '-n', '1').stdout.strip()
    return name, os.path.join(str(home), 'sessions', *name.split('/'))


def test_a_reader_that_leaves_does_not_stall_training(w, chatty, tmp_path):
    home = tmp_path / 'home'
    command = '%s -m nsml run -d %s -a "--lines 30000" | head -1' % (sys.executable, w['data'])  # ~2 MB of output
    pipeline = subprocess.Popen(['bash', '-c', command], cwd=chatty, env=kit.cli_env(home), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True, start_new_session=True)
    try:
        out, _ = pipeline.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(pipeline.pid, signal.SIGKILL)
        raise
    assert out == 'Session local/t1-cmd/1 started\n'
    name, folder = newest_session_dir(home)
    deadline = time.time() + 30
    while time.time() < deadline and session_meta(home, name).get('status') == 'running':
        time.sleep(0.2)
    assert session_meta(home, name)['status'] == 'done'
    log = open(os.path.join(folder, 'log.txt')).read()
    assert 'line 029999' in log and log.rstrip().endswith('END OF TRAINING')


def test_sigterm_to_a_foreground_run_stops_its_entry_and_marks_it_stopped(w, chatty, tmp_path):
    home = tmp_path / 'home'
    run = subprocess.Popen([sys.executable, '-m', 'nsml', 'run', '-d', w['data'], '-a', '--sleep 60'], cwd=chatty,
                           env=kit.cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
    pid_file = os.path.join(str(home), 'sessions', 'local', 't1-cmd', '1', 'work', 'pid')
    deadline = time.time() + 30
    while time.time() < deadline and not (os.path.exists(pid_file) and open(pid_file).read()):
        time.sleep(0.1)
    entry_pid = int(open(pid_file).read())
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=30)
    assert run.returncode != 0
    assert err.strip().splitlines()[-1] == 'nsml: error: local/t1-cmd/1 stopped: stopped by SIGTERM'
    assert not storage.pid_alive(entry_pid)
    meta = session_meta(home, 'local/t1-cmd/1')
    assert (meta['status'], meta['reason']) == ('stopped', 'stopped by SIGTERM')


def test_a_closed_terminal_does_not_end_a_foreground_run(w, chatty, tmp_path):
    """SIGHUP (the terminal closed) used to kill the supervising `nsml run`; its entry then
    blocked on the pipe and the session never recorded a status."""
    home = tmp_path / 'home'
    run = subprocess.Popen([sys.executable, '-m', 'nsml', 'run', '-d', w['data'], '-a', '--sleep 2 --lines 30000'],
                           cwd=chatty, env=kit.cli_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pid_file = os.path.join(str(home), 'sessions', 'local', 't1-cmd', '1', 'work', 'pid')
    deadline = time.time() + 30
    while time.time() < deadline and not os.path.exists(pid_file):
        time.sleep(0.1)
    run.send_signal(signal.SIGHUP)
    assert run.wait(timeout=60) == 0
    assert session_meta(home, 'local/t1-cmd/1')['status'] == 'done'
    log = open(os.path.join(str(home), 'sessions', 'local', 't1-cmd', '1', 'log.txt')).read()
    assert log.rstrip().endswith('END OF TRAINING')


def test_stores_of_killed_saves_are_removed_when_the_session_ends(w):
    result = nsml(w['home'], 'run', '-d', 't1-cmd', cwd=w['code'], FIXTURE_FAULT='die_mid_save')
    assert 'while saving checkpoint' in result.last_stderr_line, result
    name = result.stdout.splitlines()[0].split()[1]
    root = os.path.join(str(w['home']), 'sessions', *name.split('/'), 'checkpoints')
    assert len(os.listdir(os.path.join(root, '.store'))) == len(checkpoint_names(w['home'], name)) == 3


def test_stores_of_killed_direct_saves_are_removed_when_the_next_direct_run_starts(w, tmp_path):
    home = tmp_path / 'home'
    store = home / 'sessions' / 'local' / 't1-cmd' / 'direct' / 'checkpoints' / '.store'
    (store / 'best.999999999.abc123' / 'model').mkdir(parents=True)  # a pid above pid_max: long dead
    done = subprocess.run([sys.executable, '-c', 'import nsml; nsml.report(step=1, loss=1.0)'],
                          env=kit.cli_env(home, NSML_LOCAL_DATASET_PATH=w['data']), timeout=60,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert done.returncode == 0, done.stderr
    assert os.listdir(store) == []


# -- item 12: the scorer reads labels as the kit does ---------------------------

def write_bytes(path, data):
    with open(path, 'wb') as f:
        f.write(data)
    return str(path)


def test_labels_in_cp949_or_with_a_bom_are_read(tmp_path):
    text = 'filename,text\ntest_000000,안녕하세요\n'
    for encoding in ('utf-8', 'utf-8-sig', 'cp949'):
        path = write_bytes(tmp_path / encoding, text.encode(encoding))
        assert scoring.read_labels(path) == {'test_000000': '안녕하세요'}


def test_only_the_filename_and_text_columns_are_read(tmp_path):
    path = write_bytes(tmp_path / 'label', 'speaker,text,filename,x\nspk0,불 꺼줘,test_000003,1.5\n'.encode())
    assert scoring.read_labels(path) == {'test_000003': '불 꺼줘'}
    headerless = write_bytes(tmp_path / 'label2019', 'test_001.wav,불 꺼줘\n'.encode())
    assert scoring.read_labels(headerless) == {'test_001.wav': '불 꺼줘'}


def test_label_rows_that_do_not_parse_are_named_with_file_and_line(tmp_path):
    short = write_bytes(tmp_path / 'short', b'filename,text\na,1\nb\n')
    with pytest.raises(NSMLError, match=r'label file .*short, line 3: .b. has no text column'):
        scoring.read_labels(short)
    huge = write_bytes(tmp_path / 'huge', b'filename,text\na,1\nb,"' + b'x' * 200000 + b'"\n')
    assert scoring.read_labels(huge)['b'] == 'x' * 200000  # over csv's default cell limit, read whole
    binary = write_bytes(tmp_path / 'binary', b'filename,text\n\xff\xfe\xff,x\n')
    with pytest.raises(NSMLError, match='binary is neither UTF-8 nor cp949'):
        scoring.read_labels(binary)


def test_submit_scores_a_cp949_test_set_with_extra_columns_and_a_cp949_file_name(w, tmp_path):
    """One test file named in cp949 bytes, test_label in cp949 with a speaker column: the same
    predictions score exactly as on the plain UTF-8 copy of the test set."""
    plain = nsml(w['home'], 'submit', FIRST, 'best')
    assert plain.returncode == 0, plain
    root = kit.make_2022(str(tmp_path / 'korean'))
    test_data = os.path.join(root, 'test', 'test_data')
    korean_name = '시험_000000'
    os.rename(os.path.join(test_data, 'test_000000'), os.path.join(test_data, os.fsdecode(korean_name.encode('cp949'))))
    lines = ['filename,text,speaker']
    for j, (_, _, text) in enumerate(kit.TEST_ITEMS):
        lines.append('%s,%s,spk%d' % (korean_name if j == 0 else 'test_%06d' % j, text, j % 3))
    write_bytes(os.path.join(root, 'test', 'test_label'), ('\n'.join(lines) + '\n').encode('cp949'))
    home = tmp_path / 'home'
    run = nsml(home, 'run', '-d', root, cwd=w['code'])
    assert run.returncode == 0, run
    submit = nsml(home, 'submit', 'local/korean/1', 'best')
    assert submit.returncode == 0, submit
    assert submit.last_stdout_line == plain.last_stdout_line
    prediction = open(os.path.join(str(home), 'sessions', 'local', 'korean', '2', 'prediction.txt'), 'rb').read()
    assert korean_name.encode('cp949') + b',' in prediction  # the name as it is on disk


# -- item 13: NSML as participants meet it --------------------------------------

# Shaped like the 2019 dataset owner's evaluation.py (written anew here, not copied):
# references are headerless "stem,text" lines; each predicted path is keyed by cutting
# it at its first dot, which assumes DATASET_PATH (/data/<dataset>) has none;
# evaluation_metrics returns CER and declares no METRIC; its command line prints CRR.
OWNER_EVALUATION_2019 = """import argparse


def _distance(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def evaluation_metrics(hyp_path, ref_path):
    with open(ref_path, encoding='utf-8') as f:
        refs = dict(line.strip().split(',') for line in f)
    errors = length = 0
    with open(hyp_path, encoding='utf-8') as f:
        for line in f:
            key, hyp = line.strip().split(',')
            key = key.split('.')[0].split('/')[-1]   # drops the extension, and assumes no other dot
            ref = refs[key].replace(' ', '')
            errors += _distance(hyp.replace(' ', ''), ref)
            length += len(ref)
    return errors / length


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--prediction', default='pred.txt')
    config = parser.parse_args()
    print('%0.4f' % ((1.0 - evaluation_metrics(config.prediction, '/data/sr-hack-2019-dataset/test/test_label')) * 100))
"""


def with_stem_references(root):
    """test_label as in the 2019 data: no header, 'test_000,text' (stems, not file names)."""
    with open(os.path.join(root, 'test', 'test_label'), 'w', encoding='utf-8') as f:
        for j, (_, _, text) in enumerate(kit.TEST_ITEMS):
            f.write('test_%03d,%s\n' % (j, text))
    return root


@pytest.fixture(scope='module')
def owner2019(tmp_path_factory):
    """A 2019 dataset with owner-shaped scripts, a home under a dotted folder like ~/.nsml_local,
    and one trained session."""
    tmp = tmp_path_factory.mktemp('owner2019')
    home = tmp / '.nsml_local'
    code = str(tmp / 'code')
    os.makedirs(code)
    data = kit.make_2019(str(tmp / 'sr-hack-2019-dataset'), os.path.join(code, 'hackathon.labels'))
    kit.add_owner_scripts(data)
    with open(os.path.join(data, 'evaluation.py'), 'w') as f:
        f.write(OWNER_EVALUATION_2019)
    with_stem_references(data)
    kit.make_code(code, 'baseline2019_main.py')
    run = nsml(home, 'run', '-d', data, '-a', '--max_epochs 1', cwd=code)
    assert run.returncode == 0, run
    return {'home': home, 'data': data, 'code': code, 'session': 'local/sr-hack-2019-dataset/1'}


def test_submit_stages_test_data_on_a_path_without_dots(owner2019):
    submit = nsml(owner2019['home'], 'submit', owner2019['session'], 'best')
    assert submit.returncode == 0, submit
    lines = submit.stdout.splitlines()
    assert lines[-1] == 'CER: %.6f' % (4 / 71)  # the score the kit's own 2019 scorer gives
    assert lines[-2] == 'CRR: %.4f' % ((1 - 4 / 71) * 100)
    meta = session_meta(owner2019['home'], 'local/sr-hack-2019-dataset/2')
    staging = meta['env']['NSML_LOCAL_DATASET_PATH']
    assert '.' not in staging and os.path.basename(staging) == 'sr-hack-2019-dataset'
    assert not os.path.exists(staging)  # removed when the submit ended


def test_the_2019_owner_script_is_ranked_by_crr(owner2019):
    assert nsml(owner2019['home'], 'submit', owner2019['session'], 'best').returncode == 0
    board = nsml(owner2019['home'], 'dataset', 'board', 'sr-hack-2019-dataset').stdout.splitlines()
    assert board[1].split()[:5] == ['Rank', 'Session', 'Checkpoint', 'CRR', 'CER']
    assert board[2].split()[3:5] == ['%.2f' % ((1 - 4 / 71) * 100), '%.4f' % (4 / 71)]


def test_a_failing_owner_script_is_blamed_on_the_dataset_not_on_main_py(owner2019, tmp_path):
    data = str(tmp_path / 'broken')
    import shutil
    shutil.copytree(owner2019['data'], data)
    with open(os.path.join(data, 'evaluation.py'), 'a') as f:
        f.write('\n\ndef evaluation_metrics(prediction_file, test_label_path):\n    return {}["rev"]\n')
    home = tmp_path / 'home'
    assert nsml(home, 'run', '-d', data, '-a', '--max_epochs 1', cwd=owner2019['code']).returncode == 0
    fails(nsml(home, 'submit', 'broken/1', 'best'),
          "submit failed: the dataset owner's evaluation.py raised KeyError: 'rev' (the dataset's scoring failed, "
          'not the submitted code)')


def test_nsml_local_as_nsml_makes_is_on_nsml_true(tmp_path):
    program = 'import nsml, nsml.constants; print(nsml.IS_ON_NSML, nsml.constants.IS_ON_NSML)'
    for value, expected in (('1', 'True True'), ('', 'False False')):
        done = subprocess.run([sys.executable, '-c', program], env=kit.cli_env(tmp_path, NSML_LOCAL_AS_NSML=value),
                              stdout=subprocess.PIPE, universal_newlines=True, timeout=60)
        assert done.stdout.strip() == expected


def test_ps_quotes_arguments_so_they_can_be_copied(w, chatty, tmp_path):
    home = tmp_path / 'home'
    run = nsml(home, 'run', '-d', w['data'], '-a', "--mode '' --lines 1", cwd=chatty)
    assert run.returncode == 0, run
    row = nsml(home, 'ps', '-a').stdout.splitlines()[1]
    assert " --mode '' --lines 1 " in row
