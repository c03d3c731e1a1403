"""End-to-end tests of the nsml CLI with the two baseline-shaped fixtures:
run -> ps -> logs -> model ls -> fork -> submit -t -> submit -> dataset board.
"""
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'fixtures'))
import nsml_testkit as kit  # noqa: E402
from nsml_testkit import nsml  # noqa: E402

IGNORED_JUNK = [('.nsmlignore', '# keep the upload small\n*.ckpt\nscratch/\n'),
                ('old.ckpt', 'x' * 1000), ('scratch/notes.txt', 'x')]


@pytest.fixture(scope='module')
def w22(tmp_path_factory):
    """A registered 2022 dataset and one finished training session."""
    tmp = tmp_path_factory.mktemp('w22')
    home = tmp / 'home'
    data = kit.make_2022(str(tmp / 't1-cmd'))
    code = kit.make_code(str(tmp / 'code'), 'baseline2022_main.py', IGNORED_JUNK)
    pushed = nsml(home, 'dataset', 'push', 't1-cmd', data)
    assert pushed.returncode == 0, pushed
    run = nsml(home, 'run', '-d', 't1-cmd', '-a', '--num_epochs 2', '-m', 'first try', cwd=code)
    assert run.returncode == 0, run
    return {'home': home, 'code': code, 'data': data, 'session': 'local/t1-cmd/1', 'run': run}


def test_2022_run_prints_the_session_first_and_streams_the_log(w22):
    lines = w22['run'].stdout.splitlines()
    assert lines[0] == 'Session local/t1-cmd/1 started'
    assert 'epoch 1 train_loss 0.5000' in lines
    assert lines[-1] == 'Session local/t1-cmd/1 done'


def test_2022_snapshot_left_out_what_nsmlignore_lists(w22):
    code = os.path.join(w22['home'], 'sessions', 'local', 't1-cmd', '1', 'code')
    assert sorted(os.listdir(code)) == ['.nsmlignore', 'main.py']


def test_2022_ps_and_logs(w22):
    home = w22['home']
    ps = nsml(home, 'ps', '-a')
    assert ps.returncode == 0, ps
    header, row = ps.stdout.splitlines()[:2]
    assert header.split()[:4] == ['Name', 'Created', 'Args', 'Status']
    assert row.startswith('local/t1-cmd/1') and ' done ' in row
    assert 'epoch=1' in row and 'train_loss=0.5' in row and 'first try' in row
    assert nsml(home, 'ps').stdout.startswith('No running sessions')
    assert nsml(home, 'ps', '-a', '-q').stdout.split() == ['local/t1-cmd/1']
    for name in ('local/t1-cmd/1', 't1-cmd/1', '1'):
        logs = nsml(home, 'logs', name)
        assert logs.returncode == 0 and 'epoch 0 train_loss 1.0000' in logs.stdout
    follow = nsml(home, 'logs', '-f', '1')  # a finished session: prints and returns
    assert follow.returncode == 0 and 'Model saved' in follow.stdout


def test_2022_model_ls(w22):
    listing = nsml(w22['home'], 'model', 'ls', w22['session'])
    assert listing.returncode == 0, listing
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ['Checkpoint', 'Last', 'Modified', 'Elapsed', 'Summary', 'Size']
    assert [l.split()[0] for l in lines[1:]] == ['0', '1', 'best']  # by last modified
    as_json = json.loads(nsml(w22['home'], 'model', 'ls', '-j', w22['session']).stdout)
    by_name = {c['name']: c for c in as_json}
    assert by_name['0']['summary']['epoch'] == 0 and by_name['1']['summary']['epoch'] == 1
    assert by_name['best']['size'] > 0 and by_name['best']['elapsed'] >= 0


def test_2022_fork_resumes_from_the_chosen_checkpoint(w22):
    home = w22['home']
    fork = nsml(home, 'fork', '-c', '0', '-a', '--num_epochs 1', w22['session'])
    assert fork.returncode == 0, fork
    assert fork.stdout.splitlines()[0] == 'Session local/t1-cmd/2 started'
    assert "nsml: loading checkpoint '0' of local/t1-cmd/1" in fork.stdout
    assert 'Model loaded (epochs trained: 1)' in fork.stdout
    assert 'epoch 1 train_loss 0.5000' in fork.stdout  # training went on after load
    # -a is the whole argument string: the user is told, with the arguments it replaced
    assert 'Note: -a replaces all arguments of local/t1-cmd/1; it ran with: --num_epochs 2' in fork.stderr
    meta = json.load(open(os.path.join(home, 'sessions', 'local', 't1-cmd', '2', 'session.json')))
    assert meta['argv'][2:] == ['--num_epochs', '1', '--pause', '1', '--iteration', '0']
    assert json.loads(nsml(home, 'model', 'ls', '-j', 'local/t1-cmd/2').stdout)[0]['name'] == '1'


def test_2022_submit_t_then_submit_then_board(w22):
    home = w22['home']
    small = nsml(home, 'submit', '-t', w22['session'], 'best')
    assert small.returncode == 0, small
    assert '10 of 12 test items (-t: test submit)' in small.stdout
    assert small.last_stdout_line.startswith('CER: ')
    board = nsml(home, 'dataset', 'board', 't1-cmd')
    assert 'No scored submissions' in board.stdout  # -t is not ranked

    full = nsml(home, 'submit', w22['session'], 'best')
    assert full.returncode == 0, full
    assert "nsml: loading checkpoint 'best' of local/t1-cmd/1" in full.stdout
    assert '12 of 12 test items' in full.stdout
    assert 'inference time: ' in full.stdout and '/ 3600 s limit' in full.stdout
    cer = float(full.last_stdout_line.split()[1])
    # 11 of 12 test files are recognised; the errors: 1 + 1 + 2 characters of 71.
    assert cer == pytest.approx(4 / 71)

    board = nsml(home, 'dataset', 'board', 't1-cmd')
    rows = board.stdout.splitlines()
    assert 'CER lower is better' in rows[0]
    assert rows[2].split()[:4] == ['1', 'local/t1-cmd/1', 'best', '%.4f' % cer]
    everything = nsml(home, 'dataset', 'board', 't1-cmd', '--all')
    assert len(everything.stdout.splitlines()) == 4 and 'yes' in everything.stdout


def test_2022_plot_model_pull_memo_rm(w22, tmp_path):
    home = w22['home']
    png = tmp_path / 'curves.png'
    plot = nsml(home, 'plot', w22['session'], 'train_loss', '-o', png)
    assert plot.returncode == 0, plot
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    pull = nsml(home, 'model', 'pull', w22['session'], 'best', tmp_path)
    assert pull.returncode == 0, pull
    pulled = json.load(open(tmp_path / 'local_t1-cmd_1_best' / 'model.json'))
    assert pulled['epochs_trained'] == 2
    assert nsml(home, 'memo', '1', 'baseline').returncode == 0
    assert 'baseline' in nsml(home, 'ps', '-a', '-d', 't1-cmd').stdout
    assert nsml(home, 'model', 'rm', w22['session'], '0').returncode == 0
    names = [c['name'] for c in json.loads(nsml(home, 'model', 'ls', '-j', w22['session']).stdout)]
    assert sorted(names) == ['1', 'best']
    fork_session = 'local/t1-cmd/2'
    assert nsml(home, 'rm', fork_session).returncode == 0
    assert fork_session not in nsml(home, 'ps', '-a', '-q').stdout.split()


@pytest.fixture(scope='module')
def w19(tmp_path_factory):
    """A 2019-layout dataset given by path and one finished training session."""
    tmp = tmp_path_factory.mktemp('w19')
    home = tmp / 'home'
    code = str(tmp / 'code')
    os.makedirs(code)
    data = kit.make_2019(str(tmp / 'sr-hack-2019-dataset'), os.path.join(code, 'hackathon.labels'))
    kit.make_code(code, 'baseline2019_main.py')
    run = nsml(home, 'run', '-d', data, '-g', '2', cwd=code)
    assert run.returncode == 0, run
    assert 'epoch 1 done (GPU_NUM=2)' in run.stdout
    return {'home': home, 'code': code, 'data': data, 'session': 'local/sr-hack-2019-dataset/1'}


def test_2019_checkpoints_and_reports(w19):
    home = w19['home']
    names = [c['name'] for c in json.loads(nsml(home, 'model', 'ls', '-j', w19['session']).stdout)]
    assert names == ['best', 'model']  # best at epoch 0, model rewritten at epoch 1 (latest)
    lines = [json.loads(l) for l in open(os.path.join(home, 'sessions', 'local', 'sr-hack-2019-dataset',
                                                      '1', 'reports.jsonl'))]
    assert [l['step'] for l in lines] == [0, 1] and not lines[0]['summary']


def test_2019_entry_without_iteration_still_loads_the_requested_checkpoint(w19):
    home = w19['home']
    fork = nsml(home, 'fork', '-c', 'best', '-a', '--max_epochs 1', w19['session'])
    assert fork.returncode == 0, fork
    assert 'Model loaded (epochs trained: 1)' in fork.stdout  # 'best', not the latest 'model' (2)
    meta = json.load(open(os.path.join(home, 'sessions', 'local', 'sr-hack-2019-dataset', '2', 'session.json')))
    assert '--iteration' not in meta['argv']

    small = nsml(home, 'submit', '-t', w19['session'], 'best')
    assert small.returncode == 0, small
    assert 'Model loaded (epochs trained: 1)' in small.stdout
    full = nsml(home, 'submit', w19['session'], 'model')
    assert full.returncode == 0, full
    assert 'Model loaded (epochs trained: 2)' in full.stdout
    lines = full.stdout.splitlines()
    assert lines[-2].startswith('CRR: ') and lines[-1].startswith('CER: ')
    cer = float(lines[-1].split()[1])
    assert float(lines[-2].split()[1]) == pytest.approx((1 - cer) * 100, abs=1e-3)
    prediction = open(os.path.join(home, 'sessions', 'local', 'sr-hack-2019-dataset', '4',
                                   'prediction.txt'), encoding='utf-8').read().splitlines()
    assert prediction[0].endswith('test_000.wav,안녕하세요') and len(prediction) == 12

    board = nsml(home, 'dataset', 'board', 'sr-hack-2019-dataset')
    assert 'CRR higher is better' in board.stdout
    assert board.stdout.splitlines()[1].split()[:5] == ['Rank', 'Session', 'Checkpoint', 'CRR', 'CER']


def test_dataset_owner_scripts_are_used_when_the_dataset_has_them(tmp_path):
    home = tmp_path / 'home'
    code = str(tmp_path / 'code')
    os.makedirs(code)
    data = kit.make_2019(str(tmp_path / 'owned'), os.path.join(code, 'hackathon.labels'))
    kit.add_owner_scripts(data)
    kit.make_code(code, 'baseline2019_main.py')
    assert nsml(home, 'run', '-d', data, '-a', '--max_epochs 1', cwd=code).returncode == 0
    assert 'owner' in nsml(home, 'dataset', 'ls').stdout
    full = nsml(home, 'submit', 'owned/1', 'best')
    assert full.returncode == 0, full
    assert '(owner protocol)' in full.stdout
    lines = full.stdout.splitlines()
    assert lines[-2].startswith('CRR: ') and lines[-1] == 'CER: %.6f' % (4 / 71)
    small = nsml(home, 'submit', '-t', 'owned/1', 'best')
    assert small.returncode == 0, small
    assert '10 of 12 test items' in small.stdout


def test_upload_above_10_mb_is_warned_about(tmp_path):
    home = tmp_path / 'home'
    data = kit.make_2022(str(tmp_path / 'ds'))
    code = kit.make_code(str(tmp_path / 'code'), 'baseline2022_main.py')
    with open(os.path.join(code, 'weights.bin'), 'wb') as f:
        f.truncate(11 * 1024 * 1024)
    run = nsml(home, 'run', '-d', data, '-a', '--num_epochs 1', cwd=code)
    assert run.returncode == 0, run
    assert run.stdout.splitlines()[0] == 'Session local/ds/1 started'
    assert 'Warning: the upload is 11.0 MB' in run.stderr and 'weights.bin (11.0 MB)' in run.stderr


def test_version(tmp_path):
    version = nsml(tmp_path / 'home', '--version')
    assert version.returncode == 0 and version.stdout.startswith('nsml 0.1.0'), version


def test_ps_shortens_long_arguments_and_shows_them_whole_with_v(tmp_path):
    home = tmp_path / 'home'
    data = kit.make_2022(str(tmp_path / 'ds'))
    code = kit.make_code(str(tmp_path / 'code'), 'baseline2022_main.py')
    long_args = ' '.join(['--num_epochs 1'] * 5)  # 74 characters: argparse keeps the last
    assert nsml(home, 'run', '-d', data, '-a', long_args, cwd=code).returncode == 0
    short = nsml(home, 'ps', '-a').stdout.splitlines()[1]
    assert long_args not in short
    assert '--num_epochs 1 --num_epochs 1 --num_e...' in short
    assert long_args in nsml(home, 'ps', '-a', '-v').stdout.splitlines()[1]


def test_logs_of_a_direct_session_explain_why_there_are_none(tmp_path):
    code = kit.make_code(str(tmp_path / 'code'), 'baseline2022_main.py')
    kit.make_2022(os.path.join(code, 'sample_dataset'))
    home = tmp_path / 'home'
    import subprocess
    train = subprocess.run([sys.executable, 'main.py', '--num_epochs', '1'], cwd=code, env=kit.cli_env(home),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert train.returncode == 0, train.stderr
    logs = nsml(home, 'logs', 'local/sample_dataset/direct')
    assert logs.returncode == 1
    assert 'direct `python main.py` runs' in logs.stderr and 'no log' in logs.stderr
