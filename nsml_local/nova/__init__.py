"""`import nova`: the platform of the 2023 한국어 AI 경진대회 is NSML renamed, with the same API.

This package is the `nsml` module under a second name, not a copy: `import nova` gives the very
module object `import nsml` gives (one set of bound callbacks, one session, one store), and
`nova.constants`, `nova.environment`, ... are nsml's submodules. See docs/platforms.md.
"""
import importlib
import importlib.abc
import importlib.util
import os
import sys

import nsml

ALIAS, TARGET = __name__, nsml.__name__
_MAIN = ALIAS + '.__main__'


class _SubmoduleAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`import nova.X` gives nsml.X. Without it Python would find X in nsml's folder (nova's __path__
    is nsml's once nova is nsml) and run it a second time as a separate module with its own state."""

    def find_spec(self, name, path=None, target=None):
        if name == _MAIN:  # `python -m nova` runs nova's own __main__.py, which names the program nova
            return importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__),
                                                                             '__main__.py'))
        if name.startswith(ALIAS + '.'):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(TARGET + spec.name[len(ALIAS):])

    def exec_module(self, module):
        pass  # already executed once, as nsml.X


if not any(isinstance(finder, _SubmoduleAlias) for finder in sys.meta_path):
    sys.meta_path.insert(0, _SubmoduleAlias())
sys.modules[ALIAS] = nsml
