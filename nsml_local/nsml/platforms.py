"""The two names of one platform: NSML (2019-2022 competitions) and NOVA (2023 on, NSML renamed).

Both run the same entry-file contract (NSML_SPEC.md) and the same CLI; what differs is the name
the code imports and types, and the name in the files each reads from the upload (spec section 4):
the image line that starts setup.py and the apt package list. This module knows those names;
`nsml run` / `nova run` use it to warn about an upload whose files are written for the other
platform, since there the packages would not be installed or the image not chosen.
"""
import os
import re

NAMES = ('nsml', 'nova')
DEFAULT = 'nsml'
PACKAGE_FILES = {'nsml': 'nsml_package.txt', 'nova': 'nova_package.txt'}
# How each platform's official baselines write the image line: `#nsml: IMAGE` (2019, 2022),
# `#!nova: IMAGE` (2023).
IMAGE_LINES = {'nsml': '#nsml: IMAGE', 'nova': '#!nova: IMAGE'}
_IMAGE_LINE = re.compile(r'#!?\s*(nsml|nova)\s*:\s*(\S*)')


def program_name(argv0):
    """'nova' for the `nova` console script and `python -m nova`, else 'nsml'."""
    base = os.path.basename(argv0 or '')
    if base == '__main__.py':  # python -m PACKAGE: argv[0] is the package's __main__.py
        base = os.path.basename(os.path.dirname(argv0))
    base = os.path.splitext(base)[0]
    return base if base in NAMES else DEFAULT


def read_packages(path):
    """The apt packages a package file lists: one per line, blank lines and # comments skipped."""
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = [line.split('#', 1)[0].strip() for line in f]
    return [line for line in lines if line]


def image_line(code_dir):
    """(platform, image) named by the first line of setup.py, or None when it names neither."""
    try:
        with open(os.path.join(code_dir, 'setup.py'), encoding='utf-8', errors='replace') as f:
            first = f.readline()
    except OSError:
        return None
    found = _IMAGE_LINE.match(first.strip())
    return (found.group(1), found.group(2)) if found else None


def upload_notes(code_dir, platform):
    """Warnings about files in the upload written for the other platform's name."""
    notes = []
    own, other = PACKAGE_FILES[platform], PACKAGE_FILES[NAMES[1 - NAMES.index(platform)]]
    if not os.path.isfile(os.path.join(code_dir, own)) and os.path.isfile(os.path.join(code_dir, other)):
        packages = read_packages(os.path.join(code_dir, other))
        notes.append('Warning: %s lists apt packages (%s) but there is no %s; %s installs the packages of %s, '
                     'so on %s none of these would be installed. Copy it to %s.'
                     % (other, ', '.join(packages) or 'none', own, platform.upper(), own, platform.upper(), own))
    named = image_line(code_dir)
    if named and named[0] != platform:
        notes.append("Warning: setup.py's first line names the image for %s (%s); %s's baselines write %s, so "
                     '%s may not read it and use its default image.'
                     % (named[0].upper(), named[1] or '?', platform.upper(), IMAGE_LINES[platform],
                        platform.upper()))
    return notes
