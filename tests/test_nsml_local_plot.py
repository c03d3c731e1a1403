"""`nsml plot`: which report keys share a panel, which are left out, which become text."""
import json
import os
import struct
import sys
from types import SimpleNamespace

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'fixtures'))
import nsml_testkit as kit  # noqa: E402

sys.path.insert(0, kit.NSML_LOCAL)
from nsml import plots  # noqa: E402
from nsml.errors import NSMLError  # noqa: E402


def record(step, **values):
    return {'step': step, 'summary': True, 'walltime': 0.0, 'values': values}


def transcription_records(epochs=4):
    """What the kit reports: per epoch, then the tuned fusion weights and an averaged CER once."""
    rows = [record(e, epoch=e, train_loss=5.0 / e, val_loss=4.0 / e, val_cer=1.0 - 0.1 * e, lr=1e-3 / e)
            for e in range(1, epochs + 1)]
    rows.append(record(epochs, tuned_lm_weight=0.8, tuned_lm_bonus=2.0, tuned_beam_val_cer=0.42))
    rows.append(record(epochs, avg_val_cer=0.5))
    return rows


def classifier_records():
    """Two ensemble members of three epochs each, as modules/classify/recipe.py reports them."""
    rows = []
    for member in range(2):
        for e in range(1, 4):
            step = member * 3 + e
            rows.append(record(step, epoch=step, train_loss=1.0 / e, val_loss=1.2 / e, lr=0.01,
                               val_accuracy=0.5 + 0.1 * e, val_macro_f1=0.4 + 0.1 * e, val_kl=0.3 / e))
        rows.append(record(member * 3 + 3, ensemble_size=member + 1, ensemble_accuracy=0.8 + 0.05 * member,
                           ensemble_macro_f1=0.7 + 0.05 * member, ensemble_kl=0.2 - 0.05 * member))
    return rows


def test_family_is_the_last_word_with_aliases():
    assert plots.family('train_loss') == plots.family('val_loss') == 'loss'
    assert plots.family('val_cer') == plots.family('tuned_beam_val_cer') == plots.family('avg_val_cer') == 'cer'
    assert plots.family('valcer') == 'cer' and plots.family('trainloss') == 'loss'
    assert plots.family('val_acc') == plots.family('ensemble_accuracy') == 'accuracy'
    assert plots.family('lr') == plots.family('learning_rate') == plots.family('head_lr') == 'lr'
    assert plots.family('dropout_rate') == 'rate'  # not mistaken for a learning rate


def test_counters_are_monotone_integer_series_named_like_counters():
    assert plots.is_counter('epoch', [1, 2, 3])
    assert plots.is_counter('global_step', [10, 20, 20, 30])
    assert plots.is_counter('iteration', [1.0, 2.0])
    assert plots.is_counter('ensemble_size', [1, 2])
    assert not plots.is_counter('epoch', [3, 2, 1])            # goes down: a real curve
    assert not plots.is_counter('epoch', [0.5, 1.0, 1.5])      # fractional epochs: a real curve
    assert not plots.is_counter('val_loss', [1, 2, 3])         # not named like a counter


def test_transcription_layout():
    found, x_label = plots.curves(transcription_records())
    assert x_label == 'epoch'  # the kit reports step = epoch: the axis says what it counts
    plan = plots.layout(found)
    assert plan.panels == [('loss', ['train_loss', 'val_loss']), ('cer', ['val_cer']), ('lr', ['lr'])]
    assert plan.dropped == ['epoch']
    assert plan.one_offs == [('tuned_lm_weight', 4, 0.8), ('tuned_lm_bonus', 4, 2.0),
                             ('tuned_beam_val_cer', 4, 0.42), ('avg_val_cer', 4, 0.5)]


def test_classifier_layout_groups_ensemble_scores_with_their_validation_curves():
    plan = plots.layout(plots.curves(classifier_records())[0])
    assert plan.panels == [('loss', ['train_loss', 'val_loss']),
                           ('accuracy', ['val_accuracy', 'ensemble_accuracy']),
                           ('f1', ['val_macro_f1', 'ensemble_macro_f1']),
                           ('kl', ['val_kl', 'ensemble_kl'])]
    assert plan.dropped == ['epoch', 'ensemble_size']
    assert plan.one_offs == [('lr', None, 0.01)]  # constant: text, not a flat panel


def test_explicit_keys_are_all_shown_counters_too():
    found, _ = plots.curves(transcription_records(), ['epoch', 'val_cer', 'tuned_lm_weight'])
    plan = plots.layout(found, ['epoch', 'val_cer', 'tuned_lm_weight'])
    assert plan.panels == [('epoch', ['epoch']), ('cer', ['val_cer'])]
    assert plan.one_offs == [('tuned_lm_weight', 4, 0.8)] and plan.dropped == []


def png_size(path):
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n'
    return struct.unpack('>II', head[16:24])


def session_with(tmp_path, records):
    os.makedirs(tmp_path / 's', exist_ok=True)
    with open(tmp_path / 's' / 'reports.jsonl', 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)
    return SimpleNamespace(dir=str(tmp_path / 's'), name='local/ds/1')


def test_png_has_one_panel_per_family_and_a_text_box(tmp_path):
    session = session_with(tmp_path, transcription_records())
    grouped = plots.plot(session, [], str(tmp_path / 'grouped.png'))
    one_panel = plots.plot(session, ['val_cer'], str(tmp_path / 'one.png'))
    (_, grouped_height), (_, one_height) = png_size(grouped), png_size(one_panel)
    # 3 panels + a 4-line text box against 1 panel: the figure height follows the layout.
    assert grouped_height > 3 * one_height * 0.8


def test_plot_errors_name_what_is_missing(tmp_path):
    session = session_with(tmp_path, transcription_records())
    with pytest.raises(NSMLError, match='no numeric values for: nope'):
        plots.plot(session, ['nope'], str(tmp_path / 'x.png'))
    empty = session_with(tmp_path / 'e', [record(1, note='text only')])
    with pytest.raises(NSMLError, match='no numeric reports'):
        plots.plot(empty, [], str(tmp_path / 'y.png'))


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == 'matplotlib' or name.startswith('matplotlib.'):
            raise ImportError('No module named %r' % name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, '__import__', no_matplotlib)
    session = session_with(tmp_path, transcription_records())
    with pytest.raises(NSMLError, match='needs matplotlib.*pip install matplotlib'):
        plots.plot(session, [], str(tmp_path / 'x.png'))
    assert not (tmp_path / 'x.png').exists()


# -- overlays, smoothing, the x label, --watch, where the PNG goes -----------------------------------

def test_x_axis_says_step_when_steps_are_not_epochs():
    rows = [record(100 * e, epoch=e, train_loss=1.0 / e) for e in range(1, 4)]
    assert plots.curves(rows)[1] == 'step'
    assert plots.curves([{'step': None, 'summary': True, 'walltime': 0, 'values': {'loss': v}}
                         for v in (3.0, 2.0)])[1] == 'report'


def test_a_report_back_at_the_best_epoch_neither_jumps_back_nor_repeats():
    rows = transcription_records(4) + [record(2, epoch=2, val_cer=0.8, tuned_lm_weight=1.6)]
    found, _ = plots.curves(rows)
    assert found['val_cer'][0] == [1, 2, 3, 4]  # (2, 0.8) was reported at epoch 2 already
    assert found['epoch'][0] == [1, 2, 3, 4] and plots.layout(found).dropped == ['epoch']


def test_smoothing_is_tensorboards_debiased_ema():
    assert plots.smoothed([0.5, 0.5, 0.5], 0.6) == pytest.approx([0.5, 0.5, 0.5])  # starts at the data
    assert plots.smoothed([0.0, 10.0], 0.5) == pytest.approx([0.0, 5.0 / 0.75])
    assert plots.smoothed([1.0, 3.0], 0.0) == [1.0, 3.0]


def test_the_legend_names_the_arguments_that_differ():
    assert plots.differing_args(['--lr 0.1 --epochs 5', '--epochs 5 --lr=0.2', '--epochs 5 --lr 0.1 --compile']) == [
        '--lr 0.1 --compile default', '--lr 0.2 --compile default', '--lr 0.1 --compile']
    assert plots.differing_args(['--lr -1', '--lr 2']) == ['--lr -1', '--lr 2']  # a negative number is a value
    assert plots.differing_args(['--epochs 5', '--epochs 5']) == ['', '']


def make_session(name, args, records):
    """A finished session under the test's NSML home, as `nsml run` leaves one."""
    from nsml import session as sessions
    found = sessions.Session(name)
    os.makedirs(found.dir)
    found.update(name=name, kind='run', status='done', args=args)
    with open(found.path('reports.jsonl'), 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)
    return found


def test_plot_overlays_sessions_and_writes_under_the_nsml_home(tmp_path, monkeypatch, capsys):
    from nsml import cli, storage
    make_session('local/ds/1', '--lr 0.1', transcription_records(4))
    make_session('local/ds/2', '--lr 0.2', transcription_records(6))
    monkeypatch.chdir(tmp_path)  # the code folder: nothing may land here
    assert cli.main(['plot', 'local/ds/1', '2']) == 0  # this failed: "reported no numeric values for: 2"
    out = os.path.join(storage.home(), 'plots', 'local_ds_1+local_ds_2.png')
    assert png_size(out)[1] > 300 and os.listdir(tmp_path) == []
    assert 'Plot of local/ds/1, local/ds/2 written to ' + out in capsys.readouterr().out
    smooth, one = str(tmp_path / 'smooth.png'), str(tmp_path / 'one.png')
    assert cli.main(['plot', '1', 'ds/2', 'val_cer', '--smooth', '0.6', '-o', smooth]) == 0
    assert cli.main(['plot', '1', 'val_cer', '-o', one]) == 0
    assert png_size(smooth)[1] > png_size(one)[1]  # the sessions' legend above the panel
    assert cli.main(['plot', '1', '2', 'nope']) == 1
    assert 'none of the sessions reported numeric values for: nope' in capsys.readouterr().err


def test_watch_redraws_while_the_session_runs_and_once_after(tmp_path, monkeypatch, capsys):
    from nsml import cli
    make_session('local/ds/1', '', transcription_records(4))
    statuses = iter(['running', 'running', 'done'])
    monkeypatch.setattr(cli.launcher, 'refresh', lambda session: {'status': next(statuses)})
    sleeps, draws = [], []
    monkeypatch.setattr(cli.time, 'sleep', sleeps.append)
    drawing = plots.plot
    monkeypatch.setattr(plots, 'plot', lambda *a, **k: draws.append(1) or drawing(*a, **k))
    assert cli.main(['plot', '1', '--watch', '30', '-o', str(tmp_path / 'w.png')]) == 0
    assert sleeps == [30, 30] and len(draws) == 3
    assert capsys.readouterr().out.count('redrawn every 30 s') == 2


# -- TensorBoard event files ----------------------------------------------------------------------

def event_scalars(folder):
    """(tag, step, value) of every scalar in the event files of `folder` (TFRecord framing: length,
    its CRC, the Event protobuf, its CRC)."""
    from tensorboardX.proto import event_pb2
    found = []
    for name in sorted(os.listdir(folder)):
        if not name.startswith('events.out.tfevents'):
            continue
        data = open(os.path.join(folder, name), 'rb').read()
        at = 0
        while at < len(data):
            length = struct.unpack('<Q', data[at:at + 8])[0]
            event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
            at += 16 + length
            found += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
    return found


def test_reports_become_tensorboard_scalars_when_tensorboardx_is_installed(tmp_path):
    pytest.importorskip('tensorboardX')
    from nsml import events
    folder = str(tmp_path / 'sessions' / 'local' / 'ds' / '1')
    os.makedirs(folder)
    events.write(folder, 1, {'val_cer': 0.5, 'note': 'text', 'improved': True}, 100.0)
    events.write(folder, 2, {'val_cer': 0.25, 'lr': 1e-3}, 160.0)
    events.write(folder, None, {'tuned_lm_weight': 1.6}, 170.0)  # no step: the report's number
    events.close_all()  # as at the process's exit
    assert event_scalars(folder) == [('val_cer', 1, 0.5), ('val_cer', 2, 0.25), ('lr', 2, pytest.approx(1e-3)),
                                     ('tuned_lm_weight', 2, pytest.approx(1.6))]


def test_without_a_tensorboard_writer_nothing_is_written_or_said(tmp_path, monkeypatch, capsys):
    from nsml import events
    monkeypatch.setattr(events, '_writer_class', lambda: None)
    events.write(str(tmp_path), 1, {'val_cer': 0.5}, 100.0)
    assert os.listdir(tmp_path) == [] and capsys.readouterr() == ('', '')
