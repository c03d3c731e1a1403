"""Copy the code folder into a session, as `nsml run` uploads it.

.nsmlignore (gitignore syntax, see ignore.py) is honoured. The .git folder
and the nsml_local state folder are always left out. Like NSML we warn when
the upload exceeds 10 MB.
"""
import os
import shutil

from .ignore import IgnoreRules

WARN_BYTES = 10 * 1024 * 1024
ALWAYS_SKIPPED = ('.git',)


def copy_code(source, destination, also_skip=()):
    """Copy source -> destination; return (file count, total bytes, [(size, path)] biggest first)."""
    rules = IgnoreRules.from_file(os.path.join(source, '.nsmlignore'))
    skip_abs = {os.path.realpath(p) for p in also_skip}
    files = []
    os.makedirs(destination, exist_ok=True)
    for root, dirs, names in os.walk(source):
        rel_root = os.path.relpath(root, source)
        rel_root = '' if rel_root == '.' else rel_root.replace(os.sep, '/') + '/'
        kept = []
        for d in sorted(dirs):
            full = os.path.join(root, d)
            if d in ALWAYS_SKIPPED or os.path.realpath(full) in skip_abs:
                continue
            if rules.ignored(rel_root + d, is_dir=True):
                continue
            if os.path.islink(full):  # copy a linked folder as the link itself
                os.symlink(os.readlink(full), os.path.join(destination, rel_root, d))
                continue
            os.makedirs(os.path.join(destination, rel_root, d), exist_ok=True)
            kept.append(d)
        dirs[:] = kept
        for name in sorted(names):
            rel = rel_root + name
            if rules.ignored(rel, is_dir=False):
                continue
            target = os.path.join(destination, rel)
            shutil.copy2(os.path.join(root, name), target, follow_symlinks=False)
            files.append((os.lstat(target).st_size, rel))
    total = sum(size for size, _ in files)
    return len(files), total, sorted(files, reverse=True)
