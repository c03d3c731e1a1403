"""Start sessions (run, fork, submit), supervise their process, stop them.

The entry file runs as `python <entry> <args>` in the session's work/ folder,
in a process group of its own, with the session described by NSML_LOCAL_*
environment variables and this nsml package on PYTHONPATH (on NSML the
platform provides `import nsml`; locally this package does). It writes its
output straight into log.txt; in the foreground that file is echoed to the
terminal (see supervise: nothing downstream can block the entry). When it ends the
session's status and a one-line reason are recorded. A --detach session is
watched by a background `python -m nsml _supervise SESSION` process instead.
"""
import ast
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import checkpoints, storage
from . import environment as env_names
from .errors import NSMLError

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STOP_GRACE_SECONDS = 5.0


def entry_accepts(work_dir, entry, flag):
    """Does the entry file declare `flag` (e.g. '--iteration') as a string literal?

    The 2019 baseline had no --iteration and used parse_args(), so passing it
    would kill the process; such entries get the checkpoint through
    NSML_LOCAL_CHECKPOINT only. A mention in a comment or docstring does not count.
    """
    try:
        with open(os.path.join(work_dir, entry), encoding='utf-8', errors='replace') as f:
            source = f.read()
    except OSError:
        return False
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return bool(re.search(r"""['"]%s['"]""" % re.escape(flag), source))
    return any(isinstance(node, ast.Constant) and node.value == flag for node in ast.walk(tree))


def build_argv(session, entry, user_args, kind, checkpoint):
    """python entry [user args] [reserved args]; --iteration only if the entry declares it."""
    argv = [sys.executable, entry] + shlex.split(user_args or '')
    if kind == 'fork':
        argv += ['--pause', '1']
    elif kind == 'submit':
        argv += ['--mode', 'test', '--pause', '1']
    if kind in ('fork', 'submit') and entry_accepts(session.path('work'), entry, '--iteration'):
        argv += ['--iteration', checkpoint]
    return argv


def strip_reserved(args):
    """User args without --mode/--iteration/--pause (a fork of a fork adds them anew)."""
    tokens = shlex.split(args or '')
    kept = []
    i = 0
    while i < len(tokens):
        name = tokens[i].split('=', 1)[0]
        if name in ('--mode', '--iteration', '--pause'):
            i += 1 if '=' in tokens[i] else 2
            continue
        kept.append(tokens[i])
        i += 1
    return ' '.join(shlex.quote(t) for t in kept)


def prepare(session, code_source, entry, user_args, kind, dataset_name, dataset_path,
            gpus=0, cpus=None, memory=None, origin=None, checkpoint=None,
            small_test=False, time_limit=None, memo=''):
    """Fill the session folder: code snapshot, work copy, argv and environment."""
    work = session.path('work')
    shutil.copytree(session.path('code'), work, symlinks=True)
    if not os.path.isfile(os.path.join(work, entry)):
        raise NSMLError("entry file '%s' is not in the uploaded code (%s)" % (entry, code_source))
    environment = {
        env_names.SESSION_ENV: session.name,
        env_names.KIND_ENV: kind,
        env_names.DATASET_NAME_ENV: dataset_name,
        env_names.DATASET_PATH_ENV: dataset_path,
        env_names.GPU_NUM_ENV: str(gpus or 0),
    }
    if kind == 'submit':
        # The staging DATASET_PATH: empty until load returns (see submit.py).
        staging = make_staging(dataset_name)
        environment.update({
            env_names.DATASET_PATH_ENV: staging,
            env_names.TEST_SOURCE_ENV: dataset_path,
            env_names.MODE_ENV: 'test',
            env_names.SMALL_TEST_ENV: '1' if small_test else '0',
        })
    if kind in ('fork', 'submit'):
        environment.update({
            env_names.PAUSE_ENV: '1',
            env_names.CHECKPOINT_ENV: checkpoint,
            env_names.LOAD_SESSION_ENV: origin,
        })
    if time_limit is not None:
        environment[env_names.TIME_LIMIT_ENV] = str(time_limit)
    if cpus:
        for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
            environment.setdefault(name, str(cpus))
    session.update(kind=kind, entry=entry, args=user_args or '', dataset_path=dataset_path,
                   argv=build_argv(session, entry, user_args, kind, checkpoint),
                   env=environment, gpus=gpus, cpus=cpus, memory=memory, origin=origin,
                   checkpoint=checkpoint, small_test=bool(small_test), memo=memo or '')


STAGING_ENV = 'NSML_LOCAL_STAGING'  # tests: where submit sessions stage their DATASET_PATH


def make_staging(dataset_name):
    """A fresh folder `<base>/<random>/<dataset>` to stage a submit's test data in, with no '.'
    anywhere in its path.

    On NSML, DATASET_PATH is /data/<dataset>, and the 2019 dataset owner's evaluation.py
    cuts each predicted path at its first dot (key.split('.')[0]) to get the file's key.
    Under ~/.nsml_local, or any folder with a dot, that cut lands in the folder names
    (KeyError: 'rev') and the owner's scoring fails where NSML's succeeds. The base is
    HOME/data when HOME has no dot, else a folder in the temporary directory.
    """
    bases = [os.environ.get(STAGING_ENV), os.path.join(storage.home(), 'data'),
             os.path.join(tempfile.gettempdir(), 'nsml_local_data_%d' % os.getuid())]
    base = next((b for b in bases if b and '.' not in os.path.abspath(b)), None)
    if base is None:
        raise NSMLError('no folder without a dot in its path to stage submit data in (tried %s); set %s to one'
                        % (', '.join(b for b in bases if b), STAGING_ENV))
    os.makedirs(base, exist_ok=True)
    holder = tempfile.mkdtemp(prefix='submit_', dir=base)  # letters, digits and '_' only
    staging = os.path.join(holder, dataset_name.replace('.', '_'))
    os.mkdir(staging)
    return staging


def staging_of(meta):
    """The staging DATASET_PATH of a submit session, or None."""
    if meta.get('kind') != 'submit':
        return None
    return (meta.get('env') or {}).get(env_names.DATASET_PATH_ENV)


def remove_staging(meta):
    """Staged links live outside the session folder; remove them with the session or at its end."""
    staging = staging_of(meta)
    if staging and os.path.isdir(staging):
        shutil.rmtree(os.path.dirname(staging), ignore_errors=True)


def _child_env(meta):
    child = dict(os.environ)
    child.update(meta['env'])
    child[env_names.STARTED_ENV] = repr(time.time())
    child['PYTHONUNBUFFERED'] = '1'
    child['PYTHONPATH'] = os.pathsep.join(p for p in (PACKAGE_PARENT, os.environ.get('PYTHONPATH')) if p)
    child[storage.HOME_ENV] = storage.home()
    return child


class Terminated(BaseException):
    """SIGTERM reached the supervising `nsml` process."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, _frame):
    raise Terminated(signum)


def _echo_log(path, done):
    """Copy the log to our stdout as it grows, until `done` is set and all is copied.

    The entry writes log.txt itself, so nothing we do here can block it: a reader
    that went away (`nsml run ... | head -1`, a closed terminal) only ends the echo.
    """
    out = sys.stdout.buffer
    position = 0
    while True:
        finished = done.is_set()
        with open(path, 'rb') as f:
            f.seek(position)
            chunk = f.read()
        position += len(chunk)
        if chunk:
            try:
                out.write(chunk)  # chunks, not lines: \r progress bars stay live
                out.flush()
            except (BrokenPipeError, OSError):
                drop_stdout()
                return
        if finished and not chunk:
            return
        if not chunk:
            done.wait(0.1)


def drop_stdout():
    """Our reader is gone: later prints go nowhere instead of raising BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def supervise(session, echo):
    """Run the entry process to its end; return (status, reason).

    The entry writes its output straight into log.txt (no pipe through this
    process), so a supervisor that is slow, whose terminal closed or whose
    stdout reader left can never stall training. SIGTERM is forwarded to the
    entry's process group and the session is marked stopped; a closed
    terminal (SIGHUP) only ends the echo, as a session on NSML outlives the
    terminal that started it.
    """
    meta = session.meta()
    log_path = session.path('log.txt')
    with open(log_path, 'ab') as log:
        process = subprocess.Popen(meta['argv'], cwd=session.path('work'), env=_child_env(meta),
                                   stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    session.update(status='running', pid=process.pid, supervisor_pid=os.getpid(), started=time.time())
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _raise_terminated)
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    done = threading.Event()
    echoing = threading.Thread(target=_echo_log, args=(log_path, done), daemon=True) if echo else None
    if echoing:
        echoing.start()
    stopped_by = None
    try:
        try:
            returncode = process.wait()
        except KeyboardInterrupt:
            stopped_by = 'Ctrl-C'
        except Terminated as signalled:
            stopped_by = _signal_name(signalled.signum)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup short
        if stopped_by:
            _kill_group(process.pid)
            returncode = process.wait()
        # Like a finished NSML container: leftovers of the group (e.g. data loader
        # workers) do not outlive the entry process.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        result = finish(session, returncode, stopped_by)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    done.set()
    if echoing:
        echoing.join(timeout=5)
    return result


def _last_error_line(session):
    try:
        with open(session.path('log.txt'), 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            tail = f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    lines = [line.strip() for line in tail.replace('\r', '\n').splitlines() if line.strip()]
    return lines[-1][:300] if lines else ''


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return 'signal %d' % number


def finish(session, returncode, stopped_by=None):
    """Record the end of the entry process: status done/failed/stopped and why.

    stopped_by: what ended it from outside ('Ctrl-C', 'SIGTERM'), if anything did.
    """
    checkpoints.sweep(session.dir)  # the stores of saves it was killed in: ~ a model each
    meta = session.meta()
    runtime = session.runtime()
    entry = meta.get('entry', 'the entry file')
    if stopped_by or os.path.exists(session.path('stop_requested')):
        status, reason = 'stopped', 'stopped by %s' % (stopped_by or 'nsml stop')
    elif returncode == 0 and meta.get('kind') == 'submit' and not runtime.get('result'):
        status, reason = 'failed', ('%s exited without being scored: with --mode test --pause 1 it must call '
                                    'nsml.paused(scope=locals()) after nsml.bind(...)' % entry)
    elif returncode == 0:
        status, reason = 'done', ''
    elif runtime.get('failure'):
        status, reason = 'failed', runtime['failure']
    elif returncode < 0:
        status = 'failed'
        reason = '%s was killed by %s' % (entry, _signal_name(-returncode))
        if runtime.get('saving'):
            reason += " while saving checkpoint '%s' (earlier checkpoints are intact)" % runtime['saving']
    else:
        status = 'failed'
        reason = '%s exited with status %d' % (entry, returncode)
        if not runtime.get('bound'):
            reason += ' before calling nsml.bind'
        last = _last_error_line(session)
        if last:
            reason += ': ' + last
        staging = staging_of(meta)
        if staging and staging in last:
            reason += ' (test data is only reachable inside infer during submit)'
    session.update(status=status, reason=reason, exit_code=returncode, ended=time.time())
    remove_staging(meta)
    return status, reason


def start_detached(session):
    """Hand the session to a background supervisor process and return."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (PACKAGE_PARENT, os.environ.get('PYTHONPATH')) if p)
    env[storage.HOME_ENV] = storage.home()
    with open(os.devnull, 'wb') as devnull:
        process = subprocess.Popen([sys.executable, '-m', 'nsml', '_supervise', session.name],
                                   env=env, stdin=subprocess.DEVNULL, stdout=devnull,
                                   stderr=devnull, start_new_session=True)
    session.update(status='running', supervisor_pid=process.pid)
    return process.pid


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + STOP_GRACE_SECONDS
    while time.time() < deadline and storage.pid_alive(pid):
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(session):
    meta = session.meta()
    if meta.get('status') != 'running':
        raise NSMLError('session %s is not running (status: %s)' % (session.name, meta.get('status')))
    open(session.path('stop_requested'), 'w').close()
    if meta.get('pid'):
        _kill_group(meta['pid'])
    session.update(status='stopped', reason='stopped by nsml stop', ended=time.time())


def live_direct_processes(meta):
    """Pids of the direct `python main.py` processes still using a session (see Context.announce)."""
    return [pid for pid, start in meta.get('processes', []) if storage.same_process_alive(pid, start)]


def refresh(session):
    """A 'running' session whose processes are gone is marked failed."""
    meta = session.meta()
    if meta.get('status') not in ('running', 'preparing'):
        return meta
    with session.lock():  # decide on what is on disk now, not on what a racing finish() replaced
        meta = session.meta()
        if meta.get('status') not in ('running', 'preparing'):
            return meta
        if storage.pid_alive(meta.get('supervisor_pid')) or storage.pid_alive(meta.get('pid')):
            return meta
        if meta.get('status') == 'preparing' and time.time() - meta.get('created', 0) < 60:
            return meta
        checkpoints.sweep(session.dir)  # its supervisor died too: nobody else will
        remove_staging(meta)
        return session.update(status='failed', reason='its process ended without recording a status',
                              ended=time.time())
