"""A dataset owner's evaluation.py names its metric and its direction (METRIC, HIGHER_IS_BETTER):
submit ends with `<METRIC>: <value>`, the board shows and ranks by it. Transcription datasets (no
METRIC, 'CER' or 'CRR') keep `CER: <value>`: tests/test_nsml_local_cli.py covers them.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'fixtures'))
import nsml_testkit as kit  # noqa: E402
from nsml_testkit import nsml  # noqa: E402

# The fixture's CRR scorer, renamed: the fraction of reference characters recognised, higher is better.
ACCURACY_EVALUATION = kit.OWNER_EVALUATION.replace(
    "METRIC = 'CRR'", "METRIC = 'ACCURACY'\nHIGHER_IS_BETTER = True").replace(
    'return (1 - errors / length) * 100', 'return 1 - errors / length')


def test_submit_prints_and_boards_the_metric_the_owner_names(tmp_path):
    home = tmp_path / 'home'
    code = str(tmp_path / 'code')
    os.makedirs(code)
    data = kit.make_2019(str(tmp_path / 'owned'), os.path.join(code, 'hackathon.labels'))
    kit.add_owner_scripts(data)
    with open(os.path.join(data, 'evaluation.py'), 'w') as f:
        f.write(ACCURACY_EVALUATION)
    kit.make_code(code, 'baseline2019_main.py')
    assert nsml(home, 'run', '-d', data, '-a', '--max_epochs 1', cwd=code).returncode == 0
    full = nsml(home, 'submit', 'owned/1', 'best')
    assert full.returncode == 0, full
    assert full.last_stdout_line == 'ACCURACY: %.6f' % (1 - 4 / 71)  # the same predictions score CER 4/71
    assert 'CER' not in full.stdout and 'CRR' not in full.stdout
    entry = [json.loads(l) for l in open(os.path.join(home, 'boards', 'owned.jsonl'))][-1]
    assert entry['metric'] == 'ACCURACY' and entry['higher_is_better'] is True and entry['cer'] is None

    board = nsml(home, 'dataset', 'board', 'owned')
    assert board.returncode == 0, board
    lines = board.stdout.splitlines()
    assert 'ACCURACY higher is better' in lines[0] and 'CER' not in board.stdout
    assert lines[1].split()[:4] == ['Rank', 'Session', 'Checkpoint', 'ACCURACY']
    assert lines[2].split()[3] == '%.4f' % (1 - 4 / 71)
    ps = nsml(home, 'ps', '-a')
    assert 'ACCURACY=%.4f' % (1 - 4 / 71) in ps.stdout


def _board(home, dataset, entries):
    os.makedirs(os.path.join(home, 'boards'), exist_ok=True)
    with open(os.path.join(home, 'boards', dataset + '.jsonl'), 'w') as f:
        for i, (session, metric, score, higher) in enumerate(entries):
            f.write(json.dumps({'time': 1000.0 + i, 'session': 'local/%s/%d' % (dataset, 10 + i),
                                'model_session': session, 'checkpoint': 'best', 'protocol': 'owner',
                                'metric': metric, 'score': score, 'higher_is_better': higher,
                                'cer': None, 'crr': None, 'items': 5, 'total_items': 5, 'test': False}) + '\n')


def _ranked_sessions(board_stdout):
    return [line.split()[1] for line in board_stdout.splitlines()[2:] if line.strip() and not line.startswith('-')]


def test_board_ranks_higher_is_better_and_lower_is_better_metrics(tmp_path):
    home = tmp_path / 'home'
    # Each session's best submit counts: a/1 best 0.80 (not 0.40), b/1 0.90, c/1 0.60.
    _board(home, 'kws', [('kws/a', 'ACCURACY', 0.40, True), ('kws/b', 'ACCURACY', 0.90, True),
                         ('kws/a', 'ACCURACY', 0.80, True), ('kws/c', 'ACCURACY', 0.60, True)])
    board = nsml(home, 'dataset', 'board', 'kws')
    assert board.returncode == 0, board
    assert _ranked_sessions(board.stdout) == ['kws/b', 'kws/a', 'kws/c'], board.stdout
    assert '0.8000' in board.stdout and '0.4000' not in board.stdout

    _board(home, 'mix', [('mix/a', 'KL', 0.95, False), ('mix/b', 'KL', 1.20, False), ('mix/a', 'KL', 1.01, False)])
    board = nsml(home, 'dataset', 'board', 'mix')
    assert 'KL lower is better' in board.stdout
    assert _ranked_sessions(board.stdout) == ['mix/a', 'mix/b'] and '0.9500' in board.stdout
