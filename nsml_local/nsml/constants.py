"""The module constants of NSML, as participant code sees them.

Dataset-owner scripts do `from nsml.constants import DATASET_PATH`; the
package re-exports all of these as `nsml.DATASET_PATH` and so on. Values are
fixed at import time, as on NSML.
"""
import os

from . import environment

_context = environment.context()

DATASET_PATH = _context.dataset_path   # in a submit session: the staging folder
DATASET_NAME = _context.dataset_name
HAS_DATASET = os.path.isdir(DATASET_PATH)
# False here, True on NSML's servers. NSML_LOCAL_AS_NSML=1 makes it True, to run an entry's
# on-NSML branch (e.g. one that imports tensorboardX only off NSML) the way NSML would.
IS_ON_NSML = os.environ.get(environment.AS_NSML_ENV) == '1'
GPU_NUM = _context.gpu_num              # what `-g` asked for; local default 0
SESSION_NAME = _context.session         # local/<dataset>/<N>, or local/<dataset>/direct
