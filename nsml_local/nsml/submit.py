"""The scoring half of a submit: what paused() does after load in --mode test.

In a submit session started by the CLI, DATASET_PATH is an empty staging
folder until load has returned; only then are the test files linked into
DATASET_PATH/test/test_data (test_label is never linked: references stay
hidden). The test set is fed to the bound infer with the dataset's protocol
(see datasets.py), within a time limit counted from the end of loading, the
output is validated and scored, the score is appended to the leaderboard, and
the process ends with `CER: <value>` as its last line (or `<METRIC>: <value>`
when the dataset's evaluation.py names another metric, e.g. `ACCURACY: 0.85`).
"""
import importlib.util
import math
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from contextlib import contextmanager

from . import datasets, leaderboard, scoring
from .errors import NSMLError

# A test file named in cp949 bytes is listed with surrogate escapes; writing it back
# with this handler restores its bytes instead of raising UnicodeEncodeError.
NAME_BYTES = 'surrogateescape'
SMALL_TEST_MIN_ITEMS = 10      # `nsml submit -t`: 10 items or 10%, whichever is larger
SMALL_TEST_FRACTION = 0.10


class InferenceTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so `except Exception` in user code can't swallow it."""


def small_test_size(total):
    return min(total, max(SMALL_TEST_MIN_ITEMS, int(math.ceil(total * SMALL_TEST_FRACTION))))


def run(ctx, infer, model_session, checkpoint, load_finished):
    """Feed, score, record and exit. Never returns."""
    source = ctx.test_source or ctx.dataset_path
    protocol = datasets.protocol(source)
    all_items = datasets.test_items(source)
    items = all_items[:small_test_size(len(all_items))] if ctx.small_test else all_items
    print("nsml submit: checkpoint '%s' of %s on %s (%s protocol), %d of %d test items%s"
          % (checkpoint, model_session, ctx.dataset_name, protocol, len(items), len(all_items),
             ' (-t: test submit)' if ctx.small_test else ''), flush=True)
    if ctx.launched:
        link_test_data(source, ctx.dataset_path, all_items, items)
        test_root = ctx.dataset_path
    else:
        test_root = source
    data_dir = datasets.test_data_dir(test_root)
    prediction_file = os.path.join(ctx.session_dir, 'prediction.txt')
    os.makedirs(ctx.session_dir, exist_ok=True)

    try:
        with time_limit(ctx.time_limit, load_finished):
            if protocol == '2022':
                hypotheses = feed_2022(infer, data_dir, items, prediction_file)
            elif protocol == '2019':
                hypotheses = feed_2019(infer, data_dir, items, prediction_file)
            else:
                feed_owner(datasets.owner_scripts(source), infer, prediction_file)
    except InferenceTimeout:
        raise NSMLError('inference exceeded the time limit: %.1f s elapsed of %g s (counted from the end of loading)'
                        % (time.time() - load_finished, ctx.time_limit)) from None
    elapsed = time.time() - load_finished
    if elapsed > ctx.time_limit:
        raise NSMLError('inference exceeded the time limit: %.1f s elapsed of %g s (counted from the end of loading)'
                        % (elapsed, ctx.time_limit))
    print('inference time: %.1f s / %g s limit (counted from the end of loading)' % (elapsed, ctx.time_limit))

    if protocol == 'owner':
        scores = score_owner(ctx, source, all_items, items, prediction_file)
    else:
        cer = score_builtin(source, items, hypotheses)
        scores = {'cer': cer, 'crr': scoring.crr(cer) if protocol == '2019' else None}

    entry = {'time': time.time(), 'session': ctx.session, 'model_session': model_session,
             'checkpoint': checkpoint, 'protocol': protocol, 'dataset_id': datasets.identity(source), **scores,
             'items': len(items), 'total_items': len(all_items), 'test': ctx.small_test,
             'seconds': round(elapsed, 3)}
    ctx.record(result=entry)
    if ctx.launched and ctx.kind == 'submit':
        leaderboard.append(ctx.dataset_name, entry)
        where = ('recorded as a test submit on %s (not ranked)' if ctx.small_test
                 else 'recorded on the leaderboard of %s') % ctx.dataset_name
    else:
        where = 'direct run: not recorded on a leaderboard'
    print('scored %d items; %s' % (len(items), where))
    if 'metric' in entry:  # the dataset's evaluation.py named its own metric
        print('%s: %.6f' % (entry['metric'], entry['score']), flush=True)
    else:
        if entry['crr'] is not None:
            print('CRR: %.4f' % entry['crr'])
        print('CER: %.6f' % entry['cer'], flush=True)
    sys.stderr.flush()
    sys.exit(0)


# -- the staging DATASET_PATH ------------------------------------------------

def link_test_data(source, staging, all_items, items):
    """Link the chosen test files into staging/test/test_data (labels stay out)."""
    src = datasets.test_data_dir(source)
    dst = datasets.test_data_dir(staging)
    os.makedirs(dst, exist_ok=True)
    chosen = set(items)
    left_out = set(all_items) - chosen
    for name in sorted(os.listdir(src)):
        if name.startswith('.') or name in left_out:
            continue
        if name == 'test_list.csv':
            with open(os.path.join(dst, name), 'w', encoding='utf-8') as f:
                f.writelines(item + '\n' for item in items)
            continue
        os.symlink(os.path.join(src, name), os.path.join(dst, name))


# -- time limit --------------------------------------------------------------

@contextmanager
def time_limit(limit, since):
    remaining = limit - (time.time() - since)
    if remaining <= 0:
        raise InferenceTimeout()
    use_alarm = hasattr(signal, 'setitimer') and threading.current_thread() is threading.main_thread()
    if not use_alarm:  # checked after the fact instead
        yield
        return

    def on_alarm(_signum, _frame):
        raise InferenceTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, remaining)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- feeding -----------------------------------------------------------------

def _call_infer(infer, argument):
    try:
        return infer(argument)
    except (InferenceTimeout, SystemExit, KeyboardInterrupt):
        raise
    except BaseException as error:
        traceback.print_exc()
        raise NSMLError('infer raised %s: %s' % (type(error).__name__, error)) from None


def _few(names, limit=5):
    names = list(names)
    shown = ', '.join(names[:limit])
    return shown + (' and %d more' % (len(names) - limit) if len(names) > limit else '')


def validate_records(records, items):
    """2022: a list of {'filename', 'text'} dicts, sorted, each test file exactly once."""
    if not isinstance(records, list):
        raise NSMLError("infer must return a list of {'filename', 'text'} dicts; it returned a %s"
                        % type(records).__name__)
    for i, record in enumerate(records):
        if not isinstance(record, dict) or 'filename' not in record or 'text' not in record:
            raise NSMLError("infer's record %d is %.60r; each record must be a dict with 'filename' and 'text'"
                            % (i, record))
        for key in ('filename', 'text'):
            if not isinstance(record[key], str):
                raise NSMLError("infer's record %d (%.40r): '%s' must be a str, not %s"
                                % (i, record['filename'], key, type(record[key]).__name__))
        if '/' in record['filename']:
            raise NSMLError("infer's record %d: filename must be the base name, not the path %r"
                            % (i, record['filename']))
    names = [r['filename'] for r in records]
    duplicated = sorted(n for n, count in Counter(names).items() if count > 1)
    missing = sorted(set(items) - set(names))
    extra = sorted(set(names) - set(items))
    if duplicated or missing or extra or len(names) != len(items):
        problems = []
        if missing:
            problems.append('missing: ' + _few(missing))
        if extra:
            problems.append('not in the test folder: ' + _few(extra))
        if duplicated:
            problems.append('duplicated: ' + _few(duplicated))
        raise NSMLError('infer returned %d records for %d test files; %s'
                        % (len(names), len(items), '; '.join(problems)))
    for i in range(len(names) - 1):
        if names[i] > names[i + 1]:
            raise NSMLError("infer's records are not sorted by filename: '%s' comes before '%s'"
                            % (names[i], names[i + 1]))
    return {r['filename']: r['text'] for r in records}


def feed_2022(infer, data_dir, items, prediction_file):
    records = _call_infer(infer, data_dir)
    hypotheses = validate_records(records, items)
    with open(prediction_file, 'w', encoding='utf-8', errors=NAME_BYTES) as f:
        f.write('filename,text\n')
        for name in items:
            f.write('%s,%s\n' % (name, hypotheses[name]))
    return hypotheses


def feed_2019(infer, data_dir, items, prediction_file):
    hypotheses = {}
    with open(prediction_file, 'w', encoding='utf-8', errors=NAME_BYTES) as f:
        for name in items:
            wav_path = os.path.join(data_dir, name)
            prediction = _call_infer(infer, wav_path)
            if not isinstance(prediction, str):
                raise NSMLError('infer(%s) returned a %s; the 2019 protocol expects a str'
                                % (name, type(prediction).__name__))
            if '\n' in prediction:
                raise NSMLError('infer(%s) returned text with a line break; '
                                'the prediction file holds one "path,prediction" line per file' % name)
            f.write('%s,%s\n' % (wav_path, prediction))
            hypotheses[name] = prediction
    return hypotheses


def _import_file(path, module_name):
    folder = os.path.dirname(path)
    sys.path.insert(0, folder)  # owner scripts may import their siblings
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(folder)


@contextmanager
def owners_fault(script):
    """An error raised by the dataset owner's `script` is reported as theirs, not as the entry's
    (it used to end the submit as "main.py exited with status 1")."""
    try:
        yield
    except (InferenceTimeout, SystemExit, KeyboardInterrupt, NSMLError):
        raise
    except BaseException as error:
        traceback.print_exc()
        raise NSMLError("the dataset owner's %s raised %s: %s (the dataset's scoring failed, not the submitted "
                        'code)' % (script, type(error).__name__, error)) from None


def feed_owner(scripts, infer, prediction_file):
    with owners_fault('data_loader.py'):
        loader = _import_file(os.path.join(scripts, 'data_loader.py'), 'nsml_dataset_data_loader')
    if not hasattr(loader, 'feed_infer'):
        raise NSMLError('%s/data_loader.py has no feed_infer(output_file, infer_func)' % scripts)
    try:
        loader.feed_infer(prediction_file, infer)
    except (InferenceTimeout, SystemExit, KeyboardInterrupt, NSMLError):
        raise
    except BaseException as error:
        traceback.print_exc()
        raise NSMLError("the dataset's feed_infer raised %s: %s" % (type(error).__name__, error)) from None


# -- scoring -----------------------------------------------------------------

def score_builtin(source, items, hypotheses):
    labels = scoring.read_labels(datasets.label_path(source))
    pairs = []
    unlabeled = []
    for name in items:
        reference = scoring.label_for(labels, name)
        if reference is None:
            unlabeled.append(name)
        else:
            pairs.append((hypotheses[name], reference))
    if unlabeled:
        raise NSMLError('%s has no reference for %d test files: %s'
                        % (datasets.label_path(source), len(unlabeled), _few(unlabeled)))
    return scoring.cer(pairs)


def _subset_labels(label_file, items, destination):
    """The label lines of the chosen items (first CSV column = file name or stem)."""
    keep = set(items) | {os.path.splitext(i)[0] for i in items}
    _, encoding = scoring.read_text(label_file)
    with open(label_file, 'rb') as f:
        lines = f.read().splitlines(keepends=True)
    # The chosen lines are copied as bytes: the owner's script reads the subset in the encoding
    # (and with the BOM, or none) of the original. No cp949 or UTF-8 character holds a b'\n'.
    with open(destination, 'wb') as out:
        for number, line in enumerate(lines):
            first = line.decode(encoding).split(',', 1)[0].strip()
            if (number == 0 and first == 'filename') or first in keep:
                out.write(line)
    return destination


def score_owner(ctx, source, all_items, items, prediction_file):
    """The dataset's evaluation.py: evaluation_metrics(prediction, label) or its CLI.

    Its module attribute METRIC names the number: 'CER' (the default) or 'CRR' (percent,
    higher is better) give the transcription entry {'cer', 'crr'}; any other name (e.g.
    'ACCURACY', 'KL') gives {'metric', 'score', 'higher_is_better', 'cer': None, 'crr': None},
    the direction from HIGHER_IS_BETTER (default False: lower is better, as for CER)."""
    scripts = datasets.owner_scripts(source)
    label_file = datasets.label_path(source)
    if len(items) < len(all_items):
        label_file = _subset_labels(label_file, items, os.path.join(ctx.session_dir, 'test_label.subset'))
    path = os.path.join(scripts, 'evaluation.py')
    with owners_fault('evaluation.py'):
        module = _import_file(path, 'nsml_dataset_evaluation')
        if hasattr(module, 'evaluation_metrics'):
            value = module.evaluation_metrics(prediction_file, label_file)
        else:
            done = subprocess.run([sys.executable, path, '--prediction', prediction_file,
                                   '--test_label_path', label_file],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
            print(done.stdout, end='')
            lines = [line for line in done.stdout.splitlines() if line.strip()]
            value = lines[-1] if lines else ''
            if done.returncode != 0:
                raise NSMLError("the dataset owner's evaluation.py exited with status %d: %s (the dataset's "
                                'scoring failed, not the submitted code)' % (done.returncode, value[:200]))
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise NSMLError("the dataset's evaluation.py gave %.60r, not a number" % (value,)) from None
    metric = str(getattr(module, 'METRIC', '') or 'CER').strip()
    if metric.upper() == 'CRR':
        return {'cer': 1.0 - value / 100.0, 'crr': value}
    if metric.upper() == 'CER':
        # The 2019 owner's evaluation_metrics returns CER (its command line prints CRR) and
        # declares no METRIC; the 2019 board ranked by CRR, so a 2019-layout dataset reports both.
        in_2019_layout = os.path.isfile(os.path.join(datasets.test_data_dir(source), 'test_list.csv'))
        return {'cer': value, 'crr': scoring.crr(value) if in_2019_layout else None}
    return {'metric': metric, 'score': value, 'higher_is_better': bool(getattr(module, 'HIGHER_IS_BETTER', False)),
            'cer': None, 'crr': None}
