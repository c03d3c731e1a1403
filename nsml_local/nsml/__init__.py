"""A local stand-in for NAVER's `nsml` module (docs/nsml.md section 1).

Participant code uses only this:

    import nsml
    from nsml import DATASET_PATH, HAS_DATASET, IS_ON_NSML, GPU_NUM
    nsml.bind(save=save, load=load, infer=infer)
    if args.pause: nsml.paused(scope=locals())
    nsml.report(summary=True, step=epoch, epoch=epoch, train_loss=loss)
    nsml.save(epoch); nsml.save('best')

Processes started by the `nsml` CLI learn their session from NSML_LOCAL_*
environment variables; `python main.py` run by hand uses the implicit session
local/<dataset>/direct (see environment.py).
"""
import os
import sys
import time
import traceback

from . import checkpoints, environment, events, reports
from .constants import DATASET_NAME, DATASET_PATH, GPU_NUM, HAS_DATASET, IS_ON_NSML, SESSION_NAME
from .errors import NSMLError

__version__ = '0.1.0'
__all__ = ['DATASET_PATH', 'DATASET_NAME', 'HAS_DATASET', 'IS_ON_NSML', 'GPU_NUM', 'SESSION_NAME',
           'bind', 'save', 'load', 'report', 'paused', 'NSMLError']

# The callbacks given to bind(); NSML keeps one set per process.
_bound = {'save': None, 'load': None, 'infer': None, 'kwargs': {}}


def _warn_if_shadowing():
    """On NSML an uploaded copy of nsml_local would hide the platform's nsml."""
    ctx = environment.context()
    if not ctx.launched:
        return
    here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
    code = os.path.realpath(os.path.join(ctx.session_dir, 'work'))
    if here.startswith(code + os.sep):
        print('nsml: warning: this session imports nsml from the uploaded code (%s); on NSML that copy '
              "would shadow the platform's nsml: add nsml_local/ to .nsmlignore, or insert it into "
              'sys.path only when `import nsml` fails' % os.path.relpath(here, code), file=sys.stderr)


def _warn_if_training_elsewhere():
    """`nsml run -d X -a "--dataset_path D"` trains on D, but submit scores X's test set, as on NSML."""
    ctx = environment.context()
    named = environment.reserved_args(sys.argv[1:], (environment.DATASET_ARG,)).get(environment.DATASET_ARG)
    if not (ctx.launched and ctx.kind in ('run', 'fork') and named and ctx.dataset_path):
        return
    if os.path.realpath(named) != os.path.realpath(ctx.dataset_path):
        print('nsml: warning: --dataset_path %s is not this session\'s dataset (%s, %s); code that trains on '
              '--dataset_path learns %s, while nsml submit scores the test set of %s'
              % (named, ctx.dataset_name, ctx.dataset_path, named, ctx.dataset_name), file=sys.stderr)


_warn_if_shadowing()
_warn_if_training_elsewhere()


def bind(save=None, load=None, infer=None, **kwargs):
    """Register the callbacks; extra kwargs are passed on to save and load."""
    _bound.update(save=save, load=load, infer=infer, kwargs=kwargs)
    environment.context().record(bound=True)


def _session_dir(session):
    if session is None:
        ctx = environment.context()
        ctx.announce()
        return ctx.session_dir, ctx.session
    from . import session as sessions
    found = sessions.resolve(session)
    return found.dir, found.name


def save(checkpoint=None, save_fn=None):
    """Save checkpoint `str(checkpoint)` (None: the current time) atomically."""
    write = save_fn or _bound['save']
    if write is None:
        raise NSMLError('nsml.save() has no save function: call nsml.bind(save=...) first or pass save_fn')
    ctx = environment.context()
    ctx.announce()
    name = checkpoints.checkpoint_name(checkpoint)
    info = {'elapsed': time.time() - ctx.started, 'summary': reports.latest_summary(ctx.session_dir)}
    ctx.record(saving=name)
    checkpoints.save(ctx.session_dir, name, lambda folder: write(folder, **_bound['kwargs']), info)
    ctx.record(saving=None)


def load(checkpoint, load_fn=None, session=None):
    """Call the load function with the folder of `checkpoint` (of `session`, default this one)."""
    read = load_fn or _bound['load']
    if read is None:
        raise NSMLError('nsml.load() has no load function: call nsml.bind(load=...) first or pass load_fn')
    folder, name = _session_dir(session)
    path = checkpoints.locate(folder, name, checkpoint)
    return read(path, **_bound['kwargs'])


def report(summary=False, scope=None, step=None, **kwargs):
    """Record scalars; summary=True also shows them in `nsml ps` / `nsml model ls`.

    `scope` (usually locals()) is accepted and ignored. `walltime` is always
    time.time(). A value json.dumps rejects (a tensor, an array, numpy.float32)
    raises TypeError, as on NSML; see reports.check_value.
    """
    kwargs.pop('walltime', None)
    reports.check_value('step', step)
    for key, value in kwargs.items():
        reports.check_value(key, value)
    ctx = environment.context()
    ctx.announce()
    walltime = time.time()
    reports.append(ctx.session_dir, step, summary, kwargs, walltime)
    events.write(ctx.session_dir, step, kwargs, walltime)  # TensorBoard, if installed


def _fail(reason):
    """End the process with a one-line reason the CLI can show."""
    print('nsml: %s' % reason, file=sys.stderr, flush=True)
    environment.context().record(failure=reason)
    sys.exit(1)


def paused(scope=None):
    """Fork: load the chosen checkpoint and return. Submit: load, score the test set, exit.

    Does nothing unless the process was started with --pause 1.
    """
    ctx = environment.context()
    if not ctx.pause:
        return
    if _bound['load'] is None:
        _fail('nsml.paused() was called before nsml.bind(load=...)')
    if ctx.mode == 'test' and _bound['infer'] is None:
        _fail('nsml.paused() in --mode test needs nsml.bind(infer=...)')
    ctx.announce()
    from . import session as sessions
    if ctx.load_session == ctx.session:
        folder = ctx.session_dir
    else:
        folder = sessions.Session(ctx.load_session).dir
    checkpoint = ctx.checkpoint or checkpoints.latest(folder)
    if checkpoint is None:
        _fail('session %s has no checkpoint to load' % ctx.load_session)
    try:
        path = checkpoints.locate(folder, ctx.load_session, checkpoint)
    except NSMLError as error:
        _fail(str(error))
    print("nsml: loading checkpoint '%s' of %s" % (checkpoint, ctx.load_session), flush=True)
    try:
        _bound['load'](path, **_bound['kwargs'])
    except Exception as error:
        traceback.print_exc()
        hint = ''
        if ctx.kind == 'submit' and ctx.dataset_path in str(error):
            hint = ' (test data is only reachable inside infer during submit)'
        _fail("load of checkpoint '%s' of %s raised %s: %s%s"
              % (checkpoint, ctx.load_session, type(error).__name__, error, hint))
    ctx.record(loaded=checkpoint)
    if ctx.mode != 'test':
        return
    from . import submit
    try:
        submit.run(ctx, _bound['infer'], ctx.load_session, checkpoint, time.time())
    except NSMLError as error:
        _fail('submit failed: %s' % error)
