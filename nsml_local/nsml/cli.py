"""The `nsml` command line, mirroring NSML's names, flags and output shape.

    nsml run -d DATASET [-e main.py] [-a "ARGS"] [-g N] [-c N] [--memory 24G] [-m MEMO] [--detach]
    nsml ps [-a] [-q] [-n N] [-d DATASET]       nsml logs [-f] SESSION
    nsml model ls [-j] SESSION                  nsml model pull SESSION CKPT PATH
    nsml model rm SESSION CKPT                  nsml fork [-c CKPT] [-a ARGS] SESSION
    nsml submit [-t] [--time-limit S] SESSION [CKPT]
    nsml stop SESSION   nsml rm SESSION...      nsml memo SESSION TEXT
    nsml dataset ls | push NAME PATH | add NAME PATH | board NAME [--all]
    nsml plot SESSION [SESSION...] [KEY...] [-o out.png] [--smooth 0.6] [--watch 30]

Every failure ends with one line `nsml: error: <reason>` and exit status 1.
"""
import argparse
import json
import os
import shlex
import shutil
import sys
import time

from . import checkpoints, datasets, launcher, leaderboard, platforms, reports, snapshot, storage
from . import session as sessions
from . import __version__
from .errors import NSMLError


# -- output helpers ----------------------------------------------------------

def table(headers, rows):
    rows = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = lambda cells: '  '.join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    print(line(headers))
    for row in rows:
        print(line(row))


def ago(timestamp):
    if not timestamp:
        return '-'
    seconds = max(0, time.time() - timestamp)
    for size, unit in ((86400, 'day'), (3600, 'hour'), (60, 'minute')):
        if seconds >= size:
            n = int(seconds // size)
            return '%d %s%s ago' % (n, unit, '' if n == 1 else 's')
    return 'just now'


def duration(seconds):
    seconds = int(seconds or 0)
    return '%d:%02d:%02d' % (seconds // 3600, seconds % 3600 // 60, seconds % 60)


def session_summary(session, meta):
    result = session.runtime().get('result')
    if result:
        name, value, _ = leaderboard.metric(result)
        text = '%s=%.4f' % (name, value)
        if result.get('crr') is not None:
            text += ' CRR=%.2f' % result['crr']
        return text + (' (-t)' if result.get('test') else '')
    return reports.format_summary(reports.latest_summary(session.dir))


# -- launching ---------------------------------------------------------------

def _launch(session, detach, notes=()):
    print('Session %s started' % session.name, flush=True)
    for note in notes:
        print(note, file=sys.stderr)
    if detach:
        launcher.start_detached(session)
        print('Running in the background; follow it with: nsml logs -f %s' % session.name)
        return 0
    status, reason = launcher.supervise(session, echo=True)
    if status == 'done':
        meta = session.meta()
        if meta.get('kind') == 'fork' and not session.runtime().get('loaded'):
            print("nsml: warning: %s never loaded checkpoint '%s' of %s: with --pause 1 the entry file must "
                  'call nsml.paused(scope=locals()) after nsml.bind(...)'
                  % (session.name, meta.get('checkpoint'), meta.get('origin')), file=sys.stderr)
        if meta.get('kind') != 'submit':  # a submit's last line stays its score, `CER: ...`
            print('Session %s done' % session.name)
        return 0
    raise NSMLError('%s %s: %s' % (session.name, status, reason))


def _new_session(dataset_name, fill):
    """Create a session and fill it; on any error remove it again."""
    session = sessions.create(dataset_name)
    try:
        fill(session)
    except BaseException:
        sessions.remove(session)
        raise
    return session


def cmd_run(args):
    name, path = datasets.resolve(args.dataset)
    code = os.getcwd()
    if not os.path.isfile(os.path.join(code, args.entry)):
        raise NSMLError("entry file '%s' not found in %s (use -e to name another)" % (args.entry, code))
    notes = []

    def fill(session):
        count, total, biggest = snapshot.copy_code(code, session.path('code'), also_skip=[storage.home()])
        if total > snapshot.WARN_BYTES:
            notes.append('Warning: the upload is %s (%d files), above the 10 MB NSML warns about; biggest: %s. '
                         'List what the session does not need in .nsmlignore.'
                         % (storage.human_size(total), count,
                            ', '.join('%s (%s)' % (p, storage.human_size(s)) for s, p in biggest[:5])))
        notes.extend(platforms.upload_notes(session.path('code'), args.prog))  # what the platform would get
        launcher.prepare(session, code, args.entry, args.args, 'run', name, path, gpus=args.gpus,
                         cpus=args.cpus, memory=args.memory, memo=args.memo)

    return _launch(_new_session(name, fill), args.detach, notes)


def _origin_checkpoint(origin, requested):
    checkpoint = requested or checkpoints.latest(origin.dir)
    if checkpoint is None:
        raise NSMLError('session %s has no checkpoints' % origin.name)
    checkpoints.locate(origin.dir, origin.name, checkpoint)
    return str(checkpoint)


def _origin_dataset(origin):
    meta = origin.meta()
    if not os.path.isdir(origin.path('code')):
        raise NSMLError('session %s has no uploaded code (it was a direct `python main.py` run); '
                        'start one with nsml run to fork or submit' % origin.name)
    path = meta.get('dataset_path', '')
    if not os.path.isdir(path):
        raise NSMLError("the dataset of %s (%s) does not exist any more" % (origin.name, path))
    return meta, path


def cmd_fork(args):
    origin = sessions.resolve(args.session)
    checkpoint = _origin_checkpoint(origin, args.checkpoint)
    meta, path = _origin_dataset(origin)
    old_args = launcher.strip_reserved(meta.get('args'))
    user_args = args.args if args.args is not None else old_args
    notes = []
    if args.args is not None:  # as on NSML: -a is the whole argument string, not additions to the old one
        notes.append('Note: -a replaces all arguments of %s; it ran with: %s' % (origin.name, old_args or '(none)'))

    def fill(session):
        shutil.copytree(origin.path('code'), session.path('code'), symlinks=True)
        launcher.prepare(session, origin.name, meta.get('entry', 'main.py'), user_args, 'fork',
                         origin.dataset, path, gpus=meta.get('gpus') if args.gpus is None else args.gpus,
                         cpus=args.cpus or meta.get('cpus'), memory=args.memory or meta.get('memory'),
                         origin=origin.name, checkpoint=checkpoint, memo=args.memo)

    return _launch(_new_session(origin.dataset, fill), args.detach, notes)


def cmd_submit(args):
    origin = sessions.resolve(args.session)
    checkpoint = _origin_checkpoint(origin, args.checkpoint)
    meta, path = _origin_dataset(origin)
    if not datasets.test_items(path):
        raise NSMLError('the test set of %s is empty' % path)
    if datasets.protocol(path) != 'owner' and not os.path.isfile(datasets.label_path(path)):
        raise NSMLError('dataset %s has no references: %s does not exist' % (path, datasets.label_path(path)))
    if args.time_limit is not None and args.time_limit <= 0:
        raise NSMLError('--time-limit must be positive')

    def fill(session):
        shutil.copytree(origin.path('code'), session.path('code'), symlinks=True)
        launcher.prepare(session, origin.name, meta.get('entry', 'main.py'),
                         launcher.strip_reserved(meta.get('args')), 'submit', origin.dataset, path,
                         gpus=meta.get('gpus'), cpus=meta.get('cpus'), memory=meta.get('memory'),
                         origin=origin.name, checkpoint=checkpoint, small_test=args.test,
                         time_limit=args.time_limit,
                         memo='submit%s of %s %s' % (' -t' if args.test else '', origin.name, checkpoint))

    return _launch(_new_session(origin.dataset, fill), detach=False)


def cmd_supervise(args):
    launcher.supervise(sessions.Session(args.session), echo=False)
    return 0


# -- sessions ----------------------------------------------------------------

def cmd_ps(args):
    found = []
    for session in sessions.all_sessions():
        meta = launcher.refresh(session)
        if args.dataset and session.dataset != args.dataset:
            continue
        if not args.all and meta.get('status') != 'running':
            continue
        found.append((session, meta))
    if args.last:
        found = found[:args.last]
    if args.quiet:
        for session, _ in found:
            print(session.name)
        return 0
    if not found:
        print('No sessions' if args.all else 'No running sessions (nsml ps -a shows finished ones too)')
        return 0
    rows = []
    for session, meta in found:
        argv = meta.get('argv') or []
        shown = ' '.join(shlex.quote(a) for a in argv[2:]) or '-'  # quoted, so '' shows and can be copied
        if not args.verbose and len(shown) > ARGS_WIDTH:  # a long -a would push the summary off the screen
            shown = shown[:ARGS_WIDTH - 3] + '...'
        rows.append([session.name, ago(meta.get('created')), shown,
                     meta.get('status', '?'), session_summary(session, meta) or '-', meta.get('memo') or ''])
    table(['Name', 'Created', 'Args', 'Status', 'Summary', 'Description'], rows)
    return 0


ARGS_WIDTH = 40  # `nsml ps` shortens the Args column to this many characters; -v shows them whole


def cmd_logs(args):
    session = sessions.resolve(args.session)
    path = session.path('log.txt')
    if session.meta().get('kind') == 'direct' and not os.path.exists(path):
        raise NSMLError('session %s holds the checkpoints and reports of direct `python %s` runs; their output '
                        'went to the terminal they ran in, so there is no log. `nsml run -d %s` records one.'
                        % (session.name, session.meta().get('entry') or 'main.py', session.dataset))
    out = sys.stdout.buffer
    position = 0
    while True:
        if os.path.exists(path):
            with open(path, 'rb') as f:
                f.seek(position)
                chunk = f.read()
            position += len(chunk)
            out.write(chunk)
            out.flush()
        else:
            chunk = b''
        if not args.follow:
            break
        if not chunk and launcher.refresh(session).get('status') not in ('running', 'preparing'):
            break
        time.sleep(0.2)
    meta = session.meta()
    if meta.get('status') == 'failed' and meta.get('reason'):
        print('nsml: %s failed: %s' % (session.name, meta['reason']), file=sys.stderr)
    return 0


def cmd_stop(args):
    session = sessions.resolve(args.session)
    launcher.stop(session)
    print('Session %s stopped' % session.name)
    return 0


def cmd_rm(args):
    for name in args.sessions:
        session = sessions.resolve(name)
        meta = launcher.refresh(session)
        if meta.get('status') == 'running':
            raise NSMLError('session %s is running; stop it first (nsml stop %s)' % (session.name, session.name))
        live = launcher.live_direct_processes(meta)
        if live:  # a direct `python main.py` has no status to stop, but its checkpoints are being written
            raise NSMLError('session %s is in use by a direct run (pid %s); end that process first'
                            % (session.name, ', '.join(str(pid) for pid in live)))
        launcher.remove_staging(meta)
        sessions.remove(session)
        print('Session %s removed' % session.name)
    return 0


def cmd_memo(args):
    session = sessions.resolve(args.session)
    session.update(memo=args.text)
    print('Memo of %s: %s' % (session.name, args.text))
    return 0


# -- models ------------------------------------------------------------------

def cmd_model_ls(args):
    session = sessions.resolve(args.session)
    found = checkpoints.listing(session.dir)
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=1))
        return 0
    if not found:
        print('Session %s has no checkpoints' % session.name)
        return 0
    rows = [[i['name'], time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(i['modified'])),
             duration(i.get('elapsed')), reports.format_summary(i.get('summary') or {}) or '-',
             storage.human_size(i.get('size', 0))] for i in found]
    table(['Checkpoint', 'Last Modified', 'Elapsed', 'Summary', 'Size'], rows)
    return 0


def cmd_model_pull(args):
    session = sessions.resolve(args.session)
    checkpoints.valid_name(args.checkpoint)  # before it becomes part of a folder name
    destination = os.path.join(args.path, '%s_%s' % (session.name.replace('/', '_'), args.checkpoint))
    if os.path.exists(destination):
        raise NSMLError('%s already exists' % destination)
    checkpoints.pull(session.dir, session.name, args.checkpoint, destination)
    print("Checkpoint '%s' of %s pulled to %s" % (args.checkpoint, session.name, destination))
    return 0


def cmd_model_rm(args):
    session = sessions.resolve(args.session)
    checkpoints.remove(session.dir, session.name, args.checkpoint)
    print("Checkpoint '%s' of %s removed" % (args.checkpoint, session.name))
    return 0


# -- datasets ----------------------------------------------------------------

def cmd_dataset_ls(args):
    known = dict(datasets.registry())
    by_path = {}
    for session in sessions.all_sessions():
        meta = session.meta()
        if session.dataset not in known and meta.get('kind') != 'submit' and meta.get('dataset_path'):
            by_path.setdefault(session.dataset, meta['dataset_path'])
    if not known and not by_path:
        print('No datasets (nsml dataset push NAME PATH registers one)')
        return 0
    rows = [[n, p, datasets.describe(p)] for n, p in sorted(known.items())]
    rows += [[n, p, datasets.describe(p) + ' (used by path)'] for n, p in sorted(by_path.items())]
    table(['Name', 'Path', 'Description'], rows)
    return 0


def cmd_dataset_push(args):
    path = datasets.push(args.name, args.path)
    print('Dataset %s -> %s (%s)' % (args.name, path, datasets.describe(path)))
    return 0


def cmd_dataset_board(args):
    name = args.name
    if os.path.isdir(name) and name not in datasets.registry():
        name = datasets.resolve(name)[0]  # the name its sessions got (see datasets.resolve)
    elif os.sep in name:
        name = os.path.basename(os.path.normpath(os.path.abspath(name)))
    path = datasets.current_path(name)
    identity = datasets.identity(path) if path and os.path.isdir(path) else None
    if args.all:
        found = sorted(leaderboard.entries(name, identity), key=lambda e: e.get('time', 0))
    else:
        found = leaderboard.ranking(name, identity=identity)
    elsewhere = len(leaderboard.entries(name)) - len(leaderboard.entries(name, identity))
    _show_board(name, found, args.all)
    if elsewhere:
        print('%d submit%s on another test set named %s (another folder, or its test_label since changed) '
              'not shown' % (elsewhere, '' if elsewhere == 1 else 's', name))
    return 0


def _show_board(name, found, show_all):
    if not found:
        print('No %ssubmissions on %s yet' % ('' if show_all else 'scored ', name))
        return
    with_crr = any(e.get('crr') is not None for e in found)
    metrics = {}  # name -> higher_is_better, in order of appearance: CER for transcription
    for e in found:
        metric_name, _, higher_is_better = leaderboard.metric(e)
        metrics.setdefault(metric_name, higher_is_better)
    headers = ['Rank', 'Session', 'Checkpoint'] + (['CRR'] if with_crr else []) + list(metrics) + [
        'Items', 'Submitted', 'Submit session']
    if show_all:
        headers.append('Test')
    rows = []
    for rank, e in enumerate(found, 1):
        row = [rank if not show_all else '-', e.get('model_session'), e.get('checkpoint')]
        if with_crr:
            row.append('%.2f' % e['crr'] if e.get('crr') is not None else '-')
        metric_name, value, _ = leaderboard.metric(e)
        row += ['%.4f' % value if m == metric_name else '-' for m in metrics]
        row += ['%d/%d' % (e.get('items', 0), e.get('total_items', 0)), ago(e.get('time')), e.get('session')]
        if show_all:
            row.append('yes' if e.get('test') else '')
        rows.append(row)
    directions = ['%s %s is better' % (m, 'higher' if up else 'lower') for m, up in metrics.items()]
    print('Leaderboard of %s (%s)' % (name, 'every submit' if show_all else
                                      'best per session; ' + ', '.join(directions) +
                                      (', CRR higher is better' if with_crr else '')))
    table(headers, rows)


def plot_targets(targets):
    """`nsml plot S1 [S2 ...] [KEY ...]`: the sessions, then the keys. The first target is a session;
    later ones are sessions when they look like session names (N, ds/N, local/ds/N), keys otherwise."""
    found, keys = [sessions.resolve(targets[0])], []
    for target in targets[1:]:
        if not keys and ('/' in target or target.isdigit()):
            found.append(sessions.resolve(target))
        else:
            keys.append(target)
    return found, keys


def default_plot_path(found):
    """Under the NSML home, never in the code folder (which NSML would upload next time)."""
    name = '+'.join(s.name.replace('/', '_') for s in found)
    return os.path.join(storage.home(), 'plots', name[:150] + '.png')


def cmd_plot(args):
    from . import plots
    found, keys = plot_targets(args.targets)
    output = args.output or default_plot_path(found)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    names = ', '.join(s.name for s in found)
    while True:
        # Whether any still runs, asked before drawing: the last drawing then comes after the end.
        running = args.watch and any(launcher.refresh(s).get('status') in ('running', 'preparing') for s in found)
        try:
            plots.plot(found, keys, output, smooth=args.smooth)
            news = 'written to %s' % output
        except NSMLError as error:
            if not running:
                raise
            news = 'not drawn yet: %s' % error  # a session that just started has reported nothing
        if not running:
            break
        print('Plot of %s %s (%s; redrawn every %g s, Ctrl-C stops)'
              % (names, news, time.strftime('%H:%M:%S'), args.watch), flush=True)
        time.sleep(args.watch)
    print('Plot of %s written to %s' % (names, output))
    return 0


# -- parser ------------------------------------------------------------------

def _resources(parser, gpus_default):
    parser.add_argument('-g', '--gpus', type=int, default=gpus_default,
                        help='GPUs; sets nsml.GPU_NUM (local default 0: this machine has none)')
    parser.add_argument('-c', '--cpus', type=int, default=None, help='CPUs; sets OMP/MKL_NUM_THREADS')
    parser.add_argument('--memory', default=None, help='recorded only (NSML default 24G)')
    parser.add_argument('--shm-size', default=None, help='recorded only')


def build_parser(prog=platforms.DEFAULT):
    parser = argparse.ArgumentParser(prog=prog, description='A local %s: sessions, checkpoints, submits.'
                                     % prog.upper())
    parser.set_defaults(prog=prog)
    parser.add_argument('--version', action='version',
                        version='%s %s (nsml_local, a local stand-in for NAVER %s)' % (prog, __version__, prog.upper()))
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True

    p = commands.add_parser('run', help='run the entry file of the current folder as a new session')
    p.add_argument('-d', '--dataset', required=True, help='registered dataset name or dataset folder')
    p.add_argument('-e', '--entry', default='main.py')
    p.add_argument('-a', '--args', default='', help='arguments for the entry file, as one string')
    p.add_argument('-m', '--memo', default='')
    p.add_argument('--detach', action='store_true', help='run in the background')
    _resources(p, 0)
    p.set_defaults(func=cmd_run)

    p = commands.add_parser('fork', help='new session resuming from a checkpoint (--pause 1)')
    p.add_argument('session')
    p.add_argument('-c', '--checkpoint', default=None, help='default: the latest')
    p.add_argument('-a', '--args', default=None,
                   help="arguments for the entry file; they replace ALL the forked session's arguments "
                        "(default: the forked session's arguments)")
    p.add_argument('-m', '--memo', default='')
    p.add_argument('--detach', action='store_true')
    p.add_argument('-g', '--gpus', type=int, default=None)
    p.add_argument('--cpu', '--cpus', dest='cpus', type=int, default=None)
    p.add_argument('--memory', default=None)
    p.set_defaults(func=cmd_fork)

    p = commands.add_parser('submit', help='score a checkpoint on the test set')
    p.add_argument('session')
    p.add_argument('checkpoint', nargs='?', default=None, help='default: the latest')
    p.add_argument('-t', '--test', action='store_true', help='debug submit on 10 items or 10%% (not ranked)')
    p.add_argument('--time-limit', type=float, default=None,
                   help='inference limit in seconds, counted from the end of loading (default 3600)')
    p.set_defaults(func=cmd_submit)

    p = commands.add_parser('ps', help='list sessions')
    p.add_argument('-a', '--all', action='store_true', help='finished sessions too')
    p.add_argument('-q', '--quiet', action='store_true', help='names only, newest first')
    p.add_argument('-n', '--last', type=int, default=None)
    p.add_argument('-d', '--data', dest='dataset', default=None)
    p.add_argument('-v', '--verbose', action='store_true', help='whole arguments (else shortened to %d characters)'
                   % ARGS_WIDTH)
    p.set_defaults(func=cmd_ps)

    p = commands.add_parser('logs', help="print a session's log")
    p.add_argument('session')
    p.add_argument('-f', '--follow', action='store_true')
    p.set_defaults(func=cmd_logs)

    p = commands.add_parser('stop', help='stop a running session')
    p.add_argument('session')
    p.set_defaults(func=cmd_stop)

    p = commands.add_parser('rm', help='delete sessions and their checkpoints')
    p.add_argument('sessions', nargs='+')
    p.set_defaults(func=cmd_rm)

    p = commands.add_parser('memo', help="set a session's memo")
    p.add_argument('session')
    p.add_argument('text')
    p.set_defaults(func=cmd_memo)

    model = commands.add_parser('model', help='checkpoints of a session').add_subparsers(dest='model_command',
                                                                                         metavar='ls|pull|rm')
    model.required = True
    p = model.add_parser('ls')
    p.add_argument('session')
    p.add_argument('-j', '--json', action='store_true')
    p.set_defaults(func=cmd_model_ls)
    p = model.add_parser('pull')
    p.add_argument('session')
    p.add_argument('checkpoint')
    p.add_argument('path')
    p.set_defaults(func=cmd_model_pull)
    p = model.add_parser('rm')
    p.add_argument('session')
    p.add_argument('checkpoint')
    p.set_defaults(func=cmd_model_rm)

    dataset = commands.add_parser('dataset', help='datasets and leaderboards').add_subparsers(
        dest='dataset_command', metavar='ls|push|add|board')
    dataset.required = True
    p = dataset.add_parser('ls')
    p.set_defaults(func=cmd_dataset_ls)
    for alias in ('push', 'add'):
        p = dataset.add_parser(alias, help='register a dataset folder under a name')
        p.add_argument('name')
        p.add_argument('path')
        p.set_defaults(func=cmd_dataset_push)
    p = dataset.add_parser('board', help="a dataset's leaderboard")
    p.add_argument('name')
    p.add_argument('--all', action='store_true', help='every submit, -t ones included')
    p.set_defaults(func=cmd_dataset_board)

    p = commands.add_parser('plot', help='PNG of the report curves of sessions, overlaid like the web graph')
    p.add_argument('targets', nargs='+', metavar='TARGET',
                   help='sessions to overlay (their differing arguments in the legend), then the report keys to '
                        'draw (default: all), e.g. `nsml plot 3 t1-cmd/4 val_cer`')
    p.add_argument('-o', '--output', default=None,
                   help='PNG path (default: NSML_HOME/plots/SESSION.png, outside the code folder)')
    p.add_argument('--smooth', type=float, default=0.0,
                   help="TensorBoard's smoothing weight in [0, 1), e.g. 0.6; the raw curve stays faint")
    p.add_argument('--watch', type=float, default=0, metavar='SECONDS',
                   help='redraw every SECONDS while a session runs, and once more when it ends')
    p.set_defaults(func=cmd_plot)

    p = commands.add_parser('_supervise')  # internal: the watcher of a --detach session
    p.add_argument('session')
    p.set_defaults(func=cmd_supervise)
    return parser


def glue_args_values(argv):
    """In run/fork, `-a "--lr=0.1"` looks like an option to argparse; pass it as --args=VALUE."""
    if not argv or argv[0] not in ('run', 'fork'):
        return argv
    out = []
    i = 0
    while i < len(argv):
        if argv[i] in ('-a', '--args') and i + 1 < len(argv):
            out.append('--args=' + argv[i + 1])
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None, prog=None):
    """`prog` is the name the CLI was called by (nsml or nova: one CLI, two names), by default
    taken from sys.argv[0]; help, error lines and platform-file checks use it."""
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = prog or platforms.program_name(sys.argv[0] if sys.argv else '')
    args = build_parser(prog).parse_args(glue_args_values(argv))
    try:
        return args.func(args) or 0
    except NSMLError as error:
        sys.stdout.flush()
        print('%s: error: %s' % (prog, error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `nsml ps | head -1`: the reader has all it wanted
        launcher.drop_stdout()
        return 0


if __name__ == '__main__':
    sys.exit(main())
