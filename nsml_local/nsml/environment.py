"""What the current process is, as far as nsml is concerned.

Two situations exist:

* launched: the `nsml` CLI started this process for a session (run, fork or
  submit) and described it in NSML_LOCAL_* environment variables;
* direct: someone ran `python main.py` by hand. The facts are then derived
  from the current directory and sys.argv, and checkpoints go to an implicit
  session `local/<dataset>/direct`, so that a training process and a later
  `python main.py --mode test --pause 1 --iteration best` share one store.

A direct run's dataset is, first found: `--dataset_path D` in argv (the
emulator's rule, since real NSML has no direct runs: the folder a user names
is the one trained on, the one `--mode test` scores, and names the session),
NSML_LOCAL_DATASET_PATH, ./sample_dataset. When both --dataset_path and
NSML_LOCAL_DATASET_PATH are given and name different folders, the run stops
with a message instead of guessing which one was meant.
"""
import os
import re
import sys
import time

from . import storage
from .errors import NSMLError

USER = 'local'  # the user part of session names: local/<dataset>/<N>

# Environment variables the CLI sets for the entry process.
SESSION_ENV = 'NSML_LOCAL_SESSION'            # local/<dataset>/<N>
KIND_ENV = 'NSML_LOCAL_KIND'                  # run | fork | submit
DATASET_PATH_ENV = 'NSML_LOCAL_DATASET_PATH'  # also honoured by direct runs
DATASET_NAME_ENV = 'NSML_LOCAL_DATASET_NAME'
GPU_NUM_ENV = 'NSML_LOCAL_GPU_NUM'
STARTED_ENV = 'NSML_LOCAL_STARTED'            # session start, time.time()
MODE_ENV = 'NSML_LOCAL_MODE'                  # train | test
PAUSE_ENV = 'NSML_LOCAL_PAUSE'                # 1 on fork and submit
CHECKPOINT_ENV = 'NSML_LOCAL_CHECKPOINT'      # checkpoint that paused() loads
LOAD_SESSION_ENV = 'NSML_LOCAL_LOAD_SESSION'  # session that checkpoint belongs to
TEST_SOURCE_ENV = 'NSML_LOCAL_TEST_SOURCE'    # real dataset root, linked in after load
SMALL_TEST_ENV = 'NSML_LOCAL_SMALL_TEST'      # 1 for `nsml submit -t`
TIME_LIMIT_ENV = 'NSML_LOCAL_TIME_LIMIT'      # inference limit in seconds
AS_NSML_ENV = 'NSML_LOCAL_AS_NSML'            # 1: nsml.IS_ON_NSML is True (set by the user)

DEFAULT_TIME_LIMIT = 3600.0
DEFAULT_DATASET_DIR = 'sample_dataset'
RESERVED_ARGS = ('mode', 'iteration', 'pause')
DATASET_ARG = 'dataset_path'  # names a direct run's dataset (the kit's option of the same meaning)


def safe_name(name):
    """A dataset name usable as one path component of a session name."""
    name = re.sub(r'[^0-9A-Za-z._-]+', '_', name).strip('.')
    return name or 'dataset'


def reserved_args(argv, names=RESERVED_ARGS):
    """--mode/--iteration/--pause values present in argv ('--x v' or '--x=v'; the last one wins)."""
    found = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        for name in names:
            flag = '--' + name
            if arg == flag and i + 1 < len(argv):
                found[name] = argv[i + 1]
                i += 1
                break
            if arg.startswith(flag + '='):
                found[name] = arg[len(flag) + 1:]
                break
        i += 1
    return found


def _is_one(value):
    try:
        return int(value) == 1
    except (TypeError, ValueError):
        return False


def _default_dataset_path():
    """./sample_dataset, else sample_dataset beside the entry script."""
    candidates = [os.path.abspath(DEFAULT_DATASET_DIR)]
    script = sys.argv[0] if sys.argv and sys.argv[0] not in ('', '-c', '-m') else ''
    if script:
        candidates.append(os.path.join(os.path.dirname(os.path.abspath(script)), DEFAULT_DATASET_DIR))
    for path in candidates:
        if os.path.isdir(path):
            return path
    return candidates[0]


def direct_dataset(env, argv):
    """(path, name, how it was chosen) of a direct run's dataset; see the module docstring."""
    named = reserved_args(argv, (DATASET_ARG,)).get(DATASET_ARG)
    from_env = env.get(DATASET_PATH_ENV)
    if named:
        path = os.path.abspath(named)
        if from_env and os.path.realpath(from_env) != os.path.realpath(path):
            raise NSMLError('--dataset_path %s and %s=%s name different datasets; a direct run trains on, '
                            'saves under and scores one dataset: give only one of them (or the same folder '
                            'to both)' % (named, DATASET_PATH_ENV, from_env))
        return path, safe_name(os.path.basename(os.path.normpath(path))), '--dataset_path'
    if from_env:
        path = os.path.abspath(from_env)
        name = env.get(DATASET_NAME_ENV) or os.path.basename(os.path.normpath(path))
        return path, safe_name(name), DATASET_PATH_ENV
    path = _default_dataset_path()
    return path, safe_name(os.path.basename(os.path.normpath(path))), \
        'the default; name another with --dataset_path D or %s' % DATASET_PATH_ENV


class Context:
    """Facts about this process; built once from the environment and argv."""

    def __init__(self, environ=None, argv=None):
        env = os.environ if environ is None else environ
        argv = sys.argv[1:] if argv is None else argv
        from_argv = reserved_args(argv)
        self.home = storage.home()
        self.session = env.get(SESSION_ENV) or None
        self.launched = self.session is not None
        self.gpu_num = int(env.get(GPU_NUM_ENV) or 0)
        self.time_limit = float(env.get(TIME_LIMIT_ENV) or DEFAULT_TIME_LIMIT)
        self.small_test = env.get(SMALL_TEST_ENV) == '1'
        if self.launched:
            self.kind = env.get(KIND_ENV, 'run')
            self.dataset_path = env.get(DATASET_PATH_ENV, '')
            self.dataset_name = env.get(DATASET_NAME_ENV) or os.path.basename(self.dataset_path)
            self.dataset_source = 'nsml run -d'
            self.started = float(env.get(STARTED_ENV) or time.time())
            self.pause = env.get(PAUSE_ENV) == '1' or _is_one(from_argv.get('pause'))
            self.mode = env.get(MODE_ENV) or from_argv.get('mode') or 'train'
            # The env var wins: an entry file without --iteration still gets it.
            self.checkpoint = env.get(CHECKPOINT_ENV) or from_argv.get('iteration') or None
            self.load_session = env.get(LOAD_SESSION_ENV) or self.session
            self.test_source = env.get(TEST_SOURCE_ENV) or None
        else:
            self.kind = 'direct'
            self.dataset_path, self.dataset_name, self.dataset_source = direct_dataset(env, argv)
            self.session = '%s/%s/direct' % (USER, self.dataset_name)
            self.started = time.time()
            self.pause = _is_one(from_argv.get('pause')) or env.get(PAUSE_ENV) == '1'
            self.mode = from_argv.get('mode') or env.get(MODE_ENV) or 'train'
            self.checkpoint = env.get(CHECKPOINT_ENV) or from_argv.get('iteration') or None
            self.load_session = self.session
            self.test_source = self.dataset_path  # no staging for direct runs
        self._announced = False

    @property
    def session_dir(self):
        return os.path.join(self.home, 'sessions', *self.session.split('/'))

    def announce(self):
        """Direct runs say once (stderr) where their state goes."""
        if self._announced or self.launched:
            return
        self._announced = True
        print('nsml (local, direct run): dataset %s (%s); checkpoints and reports of session %s in %s'
              % (self.dataset_path, self.dataset_source, self.session, self.session_dir), file=sys.stderr)
        fresh = {'name': self.session, 'kind': 'direct', 'status': 'direct',
                 'dataset': self.dataset_name, 'dataset_path': self.dataset_path,
                 'created': self.started, 'args': '', 'entry': os.path.basename(sys.argv[0] or '')}

        def register(meta):
            # Several direct processes (training, then --mode test) share this session; each one
            # alive is listed so `nsml rm` cannot delete the checkpoints it is writing.
            for key, value in fresh.items():
                meta.setdefault(key, value)
            meta['processes'] = [p for p in meta.get('processes', []) if storage.same_process_alive(*p)]
            meta['processes'].append([os.getpid(), storage.process_start(os.getpid())])

        storage.update_json(os.path.join(self.session_dir, 'session.json'),
                            os.path.join(self.session_dir, '.lock'), register)
        from . import checkpoints
        checkpoints.sweep(self.session_dir)  # stores left by direct runs killed mid-save

    def record(self, **facts):
        """Tell the supervising CLI something (bound, saving, failure, result)."""
        if not self.launched:
            return
        storage.update_json(os.path.join(self.session_dir, 'runtime.json'),
                            os.path.join(self.session_dir, '.lock'), lambda state: state.update(facts))


_context = None


def context():
    """The process's Context. A direct run whose dataset is ambiguous ends here, at `import nsml`,
    before anything could train on or score the wrong folder."""
    global _context
    if _context is None:
        try:
            _context = Context()
        except NSMLError as error:
            print('nsml: error: %s' % error, file=sys.stderr, flush=True)
            sys.exit(2)
    return _context


def forget():
    """Drop the cached context (tests change the environment in-process)."""
    global _context
    _context = None
