"""The common subset of gitignore syntax, for .nsmlignore.

Supported: blank lines and # comments, `!` negation (the last matching
pattern wins), a trailing `/` (directories only), a leading or inner `/`
(anchored at the code folder), and the globs *, ?, [...] and **.
As in git, nothing below an ignored directory can be re-included.
"""
import os
import re


def _translate(pattern):
    """Glob -> regex over a relative POSIX path."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith('**/', i):
            out.append('(?:.*/)?')
            i += 3
        elif pattern.startswith('/**', i) and i + 3 == n:
            out.append('/.*')
            i += 3
        elif pattern.startswith('**', i):
            out.append('.*')
            i += 2
        elif pattern[i] == '*':
            out.append('[^/]*')
            i += 1
        elif pattern[i] == '?':
            out.append('[^/]')
            i += 1
        elif pattern[i] == '[':
            end = pattern.find(']', i + 2)
            if end == -1:
                out.append(re.escape('['))
                i += 1
                continue
            body = pattern[i + 1:end]
            if body.startswith('!'):
                body = '^' + body[1:]
            out.append('[%s]' % body.replace('\\', '\\\\'))
            i = end + 1
        elif pattern[i] == '\\' and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return ''.join(out)


class Rule:
    def __init__(self, line):
        self.negate = line.startswith('!')
        if self.negate:
            line = line[1:]
        elif line.startswith('\\'):
            line = line[1:]  # \! and \# stand for the literal characters
        self.dir_only = line.endswith('/')
        line = line.rstrip('/')
        anchored = '/' in line
        line = line.lstrip('/')
        prefix = '' if anchored else '(?:.*/)?'
        self.regex = re.compile('^' + prefix + _translate(line) + '$')

    def matches(self, rel_path, is_dir):
        if self.dir_only and not is_dir:
            return False
        return bool(self.regex.match(rel_path))


class IgnoreRules:
    def __init__(self, lines=()):
        self.rules = []
        for line in lines:
            line = line.rstrip('\n').rstrip()
            if not line or line.startswith('#'):
                continue
            self.rules.append(Rule(line))

    @classmethod
    def from_file(cls, path):
        if not os.path.isfile(path):
            return cls()
        with open(path, encoding='utf-8') as f:
            return cls(f.readlines())

    def ignored(self, rel_path, is_dir):
        """Is this path (relative, '/'-separated) ignored? Parents are the caller's job."""
        result = False
        for rule in self.rules:
            if rule.matches(rel_path, is_dir):
                result = not rule.negate
        return result
