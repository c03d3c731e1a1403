"""Unit tests of nsml_local: the nsml API in-process, and its pure helpers."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'fixtures'))
import nsml_testkit as kit  # noqa: E402

sys.path.insert(0, kit.NSML_LOCAL)
import nsml  # noqa: E402
from nsml import checkpoints, environment, ignore, launcher, scoring, snapshot, submit  # noqa: E402
from nsml.errors import NSMLError  # noqa: E402


@pytest.fixture
def api(tmp_path, monkeypatch):
    """nsml as a direct run whose state lives in tmp_path/home."""
    for name in list(os.environ):
        if name.startswith('NSML_LOCAL_'):
            monkeypatch.delenv(name)
    monkeypatch.setenv('NSML_LOCAL_HOME', str(tmp_path / 'home'))
    monkeypatch.setenv('NSML_LOCAL_DATASET_PATH', str(tmp_path / 'ds'))
    environment.forget()
    nsml.bind()
    yield nsml
    environment.forget()
    nsml.bind()


def session_dir():
    return environment.context().session_dir


def test_direct_run_session_is_named_after_the_dataset(api, tmp_path):
    ctx = environment.context()
    assert ctx.session == 'local/ds/direct'
    assert ctx.session_dir == str(tmp_path / 'home' / 'sessions' / 'local' / 'ds' / 'direct')
    assert nsml.IS_ON_NSML is False
    from nsml.constants import DATASET_PATH
    assert DATASET_PATH == nsml.DATASET_PATH


def test_report_rejects_values_json_cannot_hold(api):
    with pytest.raises(TypeError, match='train_loss'):
        nsml.report(summary=True, train_loss=np.array([0.5]))
    with pytest.raises(TypeError, match='float32'):
        nsml.report(val_cer=np.float32(0.25))
    with pytest.raises(TypeError):
        nsml.report(step=np.int64(3), loss=1.0)


def test_report_stores_json_lines_and_overwrites_walltime(api):
    nsml.report(False, step=1, train_loss=0.5)
    nsml.report(summary=True, scope={'anything': object()}, step=2, epoch=2, val_cer=np.float64(0.25),
                walltime=1.0)
    lines = [json.loads(l) for l in open(os.path.join(session_dir(), 'reports.jsonl'))]
    assert [l['step'] for l in lines] == [1, 2]
    assert lines[1]['values'] == {'epoch': 2, 'val_cer': 0.25}
    assert lines[1]['walltime'] > 1e9
    summary = json.load(open(os.path.join(session_dir(), 'summary.json')))
    assert summary == {'epoch': 2, 'val_cer': 0.25, 'step': 2}


def _writer(text):
    def save(folder, **kwargs):
        with open(os.path.join(folder, 'model.txt'), 'w') as f:
            f.write(text)
    return save


def _read(folder, **kwargs):
    with open(os.path.join(folder, 'model.txt')) as f:
        return f.read()


def test_save_then_load_passes_bind_kwargs(api):
    seen = {}

    def save(folder, **kwargs):
        seen['save'] = kwargs
        _writer('v1')(folder)

    def load(folder, **kwargs):
        seen['load'] = kwargs
        seen['text'] = _read(folder)

    nsml.bind(save=save, load=load, model='M')
    nsml.save(3)
    nsml.load(3)
    assert seen == {'save': {'model': 'M'}, 'load': {'model': 'M'}, 'text': 'v1'}
    assert checkpoints.names(session_dir()) == ['3']


def test_save_is_atomic_when_the_save_function_fails(api):
    nsml.bind(save=_writer('good'), load=_read)
    nsml.save('best')

    def broken(folder, **kwargs):
        with open(os.path.join(folder, 'model.txt'), 'w') as f:
            f.write('half')
        raise OSError('disk full')

    with pytest.raises(OSError, match='disk full'):
        nsml.save('best', save_fn=broken)
    assert nsml.load('best') == 'good'
    store = os.path.join(session_dir(), 'checkpoints', '.store')
    assert len(os.listdir(store)) == 1          # the failed attempt left nothing behind
    nsml.save('best', save_fn=_writer('better'))
    assert nsml.load('best') == 'better'
    assert len(os.listdir(store)) == 1          # the replaced version is gone


def test_save_without_a_name_uses_the_current_time(api):
    nsml.bind(save=_writer('x'), load=_read)
    nsml.save()
    (name,) = checkpoints.names(session_dir())
    assert name[:2] == '20' and '-' in name


def test_load_of_a_missing_checkpoint_names_what_exists(api):
    nsml.bind(save=_writer('x'), load=_read)
    nsml.save(0)
    nsml.save('best')
    with pytest.raises(NSMLError) as error:
        nsml.load('nope')
    message = str(error.value)
    assert "local/ds/direct has no checkpoint 'nope'" in message
    assert '0, best' in message


def test_save_before_bind_is_a_clear_error(api):
    with pytest.raises(NSMLError, match='bind'):
        nsml.save('best')


def test_paused_does_nothing_without_pause_1(api, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['main.py', '--mode', 'train'])
    environment.forget()
    nsml.paused(scope=locals())  # no bind, no checkpoint, no error: not paused


def test_reserved_args_are_read_from_argv():
    assert environment.reserved_args(['--pause', '1', '--mode=test', '--iteration', 'best', '--lr', '3']) == \
        {'pause': '1', 'mode': 'test', 'iteration': 'best'}


def test_cer_removes_spaces_and_crr_is_not_clipped():
    assert scoring.cer([('안녕 하세요', '안녕하세요')]) == 0
    assert scoring.cer([('ab', 'abcd'), ('x', 'y')]) == pytest.approx(3 / 5)
    value = scoring.cer([('abcdef', 'a')])
    assert value == 5 and scoring.crr(value) == -400


def test_2022_records_are_validated_strictly():
    items = ['a', 'b', 'c']
    ok = [{'filename': n, 'text': n.upper()} for n in items]
    assert submit.validate_records(ok, items) == {'a': 'A', 'b': 'B', 'c': 'C'}
    cases = [
        (ok[:2], 'infer returned 2 records for 3 test files; missing: c'),
        (ok + [{'filename': 'd', 'text': ''}], 'not in the test folder: d'),
        (ok[:1] + ok, 'duplicated: a'),
        (ok[::-1], "not sorted by filename: 'c' comes before 'b'"),
        ({'a': 'A'}, 'returned a dict'),
        ([{'filename': 'a'}], "must be a dict with 'filename' and 'text'"),
        ([{'filename': 'a', 'text': 1}], "'text' must be a str"),
        ([{'filename': '/x/a', 'text': ''}], 'base name'),
    ]
    for records, message in cases:
        with pytest.raises(NSMLError, match=message.replace('(', r'\(')):
            submit.validate_records(records, items)


def test_small_test_is_10_items_or_10_percent():
    assert submit.small_test_size(5) == 5
    assert submit.small_test_size(42) == 10
    assert submit.small_test_size(1000) == 100


def test_nsmlignore_common_gitignore_subset():
    rules = ignore.IgnoreRules(['# comment', '', '*.pt', '!keep.pt', 'data/', '/build', 'logs/**/*.txt',
                                'a?c', r'\#hash'])
    assert rules.ignored('model.pt', False) and rules.ignored('sub/model.pt', False)
    assert not rules.ignored('keep.pt', False)
    assert rules.ignored('data', True) and rules.ignored('x/data', True)
    assert not rules.ignored('data', False)             # dir/ patterns match folders only
    assert rules.ignored('build', True) and not rules.ignored('src/build', True)
    assert rules.ignored('logs/a/b/c.txt', False) and not rules.ignored('logs/c.md', False)
    assert rules.ignored('abc', False) and not rules.ignored('abbc', False)
    assert rules.ignored('#hash', False)


def test_snapshot_honours_nsmlignore_and_skips_git(tmp_path):
    src = tmp_path / 'code'
    for rel in ('main.py', 'big.bin', 'data/x.wav', 'nested/data/y.wav', 'keep/data.txt', '.git/HEAD'):
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('x')
    (src / '.nsmlignore').write_text('*.bin\ndata/\n')
    count, _, _ = snapshot.copy_code(str(src), str(tmp_path / 'out'))
    copied = sorted(os.path.relpath(os.path.join(r, f), tmp_path / 'out')
                    for r, _, fs in os.walk(tmp_path / 'out') for f in fs)
    assert copied == ['.nsmlignore', 'keep/data.txt', 'main.py']
    assert count == 3


def test_iteration_is_detected_as_a_declared_argument_only():
    fixtures = os.path.join(HERE, 'fixtures')
    assert launcher.entry_accepts(fixtures, 'baseline2022_main.py', '--iteration')
    # The 2019 fixture mentions --iteration in its docstring but does not declare it.
    assert not launcher.entry_accepts(fixtures, 'baseline2019_main.py', '--iteration')


def test_direct_runs_share_the_implicit_session(tmp_path):
    """`python main.py` trains; a later `--mode test --pause 1 --iteration best` finds its checkpoint."""
    code = kit.make_code(str(tmp_path / 'code'), 'baseline2022_main.py')
    kit.make_2022(os.path.join(code, 'sample_dataset'))
    env = kit.cli_env(tmp_path / 'home')
    run = lambda *a: subprocess.run([sys.executable, 'main.py'] + list(a), cwd=code, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    train = run('--num_epochs', '1')
    assert train.returncode == 0, train.stderr
    assert 'local/sample_dataset/direct' in train.stderr
    test = run('--mode', 'test', '--pause', '1', '--iteration', 'best')
    assert test.returncode == 0, test.stderr
    assert 'Model loaded (epochs trained: 1)' in test.stdout
    assert test.stdout.strip().splitlines()[-1].startswith('CER: ')
    missing = run('--mode', 'test', '--pause', '1', '--iteration', 'nope')
    assert missing.returncode == 1
    assert "has no checkpoint 'nope'; it has: 0, best" in missing.stderr.strip().splitlines()[-1]


def test_load_from_another_session(api, monkeypatch, tmp_path):
    nsml.bind(save=_writer('from ds'), load=_read)
    nsml.save('best')
    monkeypatch.setenv('NSML_LOCAL_DATASET_PATH', str(tmp_path / 'other'))
    environment.forget()
    assert environment.context().session == 'local/other/direct'
    assert nsml.load('best', session='local/ds/direct') == 'from ds'
    assert nsml.load('best', session='ds/direct') == 'from ds'
    with pytest.raises(NSMLError, match='has no checkpoint'):
        nsml.load('best')


def test_direct_dataset_defaults_to_sample_dataset_beside_the_script(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith('NSML_LOCAL_'):
            monkeypatch.delenv(name)
    (tmp_path / 'kit' / 'sample_dataset').mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', [str(tmp_path / 'kit' / 'main.py')])
    assert environment.Context().dataset_path == str(tmp_path / 'kit' / 'sample_dataset')
    (tmp_path / 'sample_dataset').mkdir()  # ./sample_dataset wins when it exists
    assert environment.Context().dataset_path == str(tmp_path / 'sample_dataset')


# -- a direct run's dataset: --dataset_path in argv (issue 13) -----------------

def test_direct_dataset_comes_from_the_dataset_path_argument(tmp_path):
    data = str(tmp_path / 'corpus_d')
    for argv in (['--dataset_path', data, '--mode', 'test'], ['--dataset_path=' + data]):
        ctx = environment.Context(environ={}, argv=argv)
        assert ctx.dataset_path == data and ctx.session == 'local/corpus_d/direct'
        assert ctx.dataset_source == '--dataset_path'
    # The same folder named both ways is no conflict; without the argument the variable is used.
    same = environment.Context(environ={'NSML_LOCAL_DATASET_PATH': data + '/'}, argv=['--dataset_path', data])
    assert same.session == 'local/corpus_d/direct'
    by_env = environment.Context(environ={'NSML_LOCAL_DATASET_PATH': str(tmp_path / 'other')}, argv=[])
    assert by_env.session == 'local/other/direct' and by_env.dataset_source == 'NSML_LOCAL_DATASET_PATH'


def test_direct_dataset_named_two_different_ways_is_an_error(tmp_path):
    with pytest.raises(NSMLError) as error:
        environment.Context(environ={'NSML_LOCAL_DATASET_PATH': str(tmp_path / 'a')},
                            argv=['--dataset_path', str(tmp_path / 'b')])
    message = str(error.value)
    assert str(tmp_path / 'a') in message and str(tmp_path / 'b') in message and 'give only one' in message


# The kit's main.py in miniature: --dataset_path overrides DATASET_PATH for training.
KIT_SHAPED = [("args.add_argument('--num_epochs', type=int, default=2)",
               "args.add_argument('--num_epochs', type=int, default=2)\n"
               "    args.add_argument('--dataset_path', type=str, default=None)"),
              ("    model = LengthModel()\n",
               "    DATASET_PATH = config.dataset_path or DATASET_PATH\n"
               "    HAS_DATASET = os.path.isdir(DATASET_PATH)\n"
               "    model = LengthModel()\n")]


def kit_shaped_code(folder):
    code = kit.make_code(folder, 'baseline2022_main.py')
    with open(os.path.join(code, 'main.py'), encoding='utf-8') as f:
        source = f.read()
    for old, new in KIT_SHAPED:
        assert old in source
        source = source.replace(old, new)
    with open(os.path.join(code, 'main.py'), 'w', encoding='utf-8') as f:
        f.write(source)
    return code


def expected_cer(root):
    """What the fixture's nearest-length model trained on ROOT/train scores on ROOT/test, recomputed."""
    import csv
    import Levenshtein
    with open(os.path.join(root, 'train', 'train_label'), encoding='utf-8') as f:
        table = {os.path.getsize(os.path.join(root, 'train', 'train_data', r['filename'])) // 2: r['text']
                 for r in csv.DictReader(f)}
    with open(os.path.join(root, 'test', 'test_label'), encoding='utf-8') as f:
        refs = {r['filename']: r['text'].replace(' ', '') for r in csv.DictReader(f)}
    errors = 0
    for name, ref in refs.items():
        length = os.path.getsize(os.path.join(root, 'test', 'test_data', name)) // 2
        hyp = table[min(table, key=lambda known: abs(known - length))].replace(' ', '')
        errors += Levenshtein.distance(hyp, ref)
    return errors / sum(len(ref) for ref in refs.values())


def test_direct_test_run_scores_the_dataset_it_was_given(tmp_path):
    """Train with --dataset_path D, then --mode test ... --dataset_path D scores D's test set,
    in session local/<D>/direct, even with a different ./sample_dataset beside main.py."""
    code = kit_shaped_code(str(tmp_path / 'code'))
    data = kit.make_2022(str(tmp_path / 'corpus_d'))
    sample = kit.make_2022(os.path.join(code, 'sample_dataset'))
    with open(os.path.join(sample, 'test', 'test_label'), 'w', encoding='utf-8') as f:  # other references
        f.write('filename,text\n' + ''.join('test_%06d,다른 문장\n' % j for j in range(len(kit.TEST_ITEMS))))
    assert abs(expected_cer(data) - expected_cer(sample)) > 0.3
    env = kit.cli_env(tmp_path / 'home')
    run = lambda *a, **extra: subprocess.run([sys.executable, 'main.py'] + list(a), cwd=code,
                                             env=dict(env, **extra), stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, universal_newlines=True)
    train = run('--num_epochs', '1', '--dataset_path', data)
    assert train.returncode == 0, train.stderr
    assert 'dataset %s (--dataset_path)' % data in train.stderr and 'local/corpus_d/direct' in train.stderr
    test = run('--mode', 'test', '--pause', '1', '--iteration', 'best', '--dataset_path', data)
    assert test.returncode == 0, test.stderr
    assert "loading checkpoint 'best' of local/corpus_d/direct" in test.stdout
    last = test.stdout.strip().splitlines()[-1]
    assert last.startswith('CER: ') and float(last.split()[1]) == pytest.approx(expected_cer(data), abs=1e-6)
    assert os.path.isdir(tmp_path / 'home' / 'sessions' / 'local' / 'corpus_d' / 'direct' / 'checkpoints')
    assert not os.path.exists(tmp_path / 'home' / 'sessions' / 'local' / 'sample_dataset')

    clash = run('--mode', 'test', '--pause', '1', '--iteration', 'best', '--dataset_path', data,
                NSML_LOCAL_DATASET_PATH=sample)
    assert clash.returncode == 2 and clash.stdout == ''
    assert clash.stderr.strip().splitlines()[-1] == (
        'nsml: error: --dataset_path %s and NSML_LOCAL_DATASET_PATH=%s name different datasets; a direct run '
        'trains on, saves under and scores one dataset: give only one of them (or the same folder to both)'
        % (data, sample))


def test_cli_session_trained_on_another_folder_is_warned_about(tmp_path):
    """nsml run -d X -a "--dataset_path D": as on NSML, submit would score X; the log says so."""
    code = kit_shaped_code(str(tmp_path / 'code'))
    data = kit.make_2022(str(tmp_path / 't1-cmd'))
    other = kit.make_2022(str(tmp_path / 'other'))
    run = kit.nsml(tmp_path / 'home', 'run', '-d', data, '-a', '--num_epochs 1 --dataset_path ' + other, cwd=code)
    assert run.returncode == 0, run
    assert 'not this session' not in kit.nsml(tmp_path / 'home', 'run', '-d', data, '-a', '--num_epochs 1 '
                                              '--dataset_path ' + data, cwd=code).stdout
    assert ('nsml: warning: --dataset_path %s is not this session\'s dataset (t1-cmd, %s)' % (other, data)
            in run.stdout)
