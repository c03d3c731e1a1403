"""Every repository path named in the docs, the READMEs and the code's docstrings and comments exists.

Files move (the n-gram LM went from the shared modules/ into modules/transcribe/); a reader who follows a stale name
finds nothing. A path here is anything starting with one of the repository's folders
(`modules/...`, `bench/...`, `tests/...`, `tools/...`, `docs/...`, `nsml_local/...`,
`sample_dataset/...`), read relative to the repository root (Markdown's `../` prefixes dropped);
glob patterns (`bench/results/*.json`) must match something.
"""
import ast
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("modules", "bench", "tests", "tools", "docs", "nsml_local", "sample_dataset")
PATH = re.compile(r"(?<![\w./-])(?:\.\./)*((?:%s)/[\w./*-]*)" % "|".join(FOLDERS))
SKIPPED_TREES = (".venv", ".git", "bench/cache", "bench/results", ".pytest_cache", "build")

# What runs write (never committed): named in docs as where output lands.
GENERATED = ("bench/cache/", "bench/results/work/", "bench/results/smoke/",
             "bench/results/gpu.json",       # bench/gpu_check.sh, on a GPU machine
             "bench/results/features.json")  # bench/bench_features.py
# Paths that name another revision's or another repository's files on purpose: (file that names it, path).
ELSEWHERE = {("bench/lm_scale.py", "modules/lm.py"),  # the old LM and decoder, read with `git show`
             ("bench/lm_scale.py", "modules/decoding.py"),
             ("docs/platforms.md", "modules/inference.py"),  # the official baselines' and entries' own files
             ("nsml_local/README.md", "modules/inference.py")}


def documents():
    """(repository-relative file, text to check): Markdown whole, Python's docstrings and comments."""
    for path in sorted(glob.glob(os.path.join(ROOT, "**", "*.md"), recursive=True)
                       + glob.glob(os.path.join(ROOT, "**", "*.py"), recursive=True)):
        name = os.path.relpath(path, ROOT)
        if name.startswith(SKIPPED_TREES) or "/." in name:
            continue
        with open(path, encoding="utf-8") as f:
            source = f.read()
        if name.endswith(".md"):
            yield name, source
            continue
        tree = ast.parse(source, name)
        nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                                             ast.AsyncFunctionDef))]
        docstrings = [ast.get_docstring(n, clean=False) or "" for n in nodes]
        comments = [line.split("#", 1)[1] for line in source.splitlines() if "#" in line]
        yield name, "\n".join(docstrings + comments)


def named_paths(text: str) -> list:
    return [m.group(1).rstrip(".,:;") for m in PATH.finditer(text)]


def test_the_path_pattern_finds_what_a_reader_would_follow():
    text = "see modules/transcribe/lm.py, [x](../bench/README.md) and `bench/results/*.json`; not foo/modules/x.py"
    assert named_paths(text) == ["modules/transcribe/lm.py", "bench/README.md", "bench/results/*.json"]


def test_every_named_path_exists():
    checked, missing = 0, []
    for name, text in documents():
        for path in named_paths(text):
            checked += 1
            if path.startswith(GENERATED) or (name, path) in ELSEWHERE:
                continue
            if not glob.glob(os.path.join(ROOT, path)):
                missing.append(f"{name}: {path}")
    assert checked > 100  # the docs do name files: the scan found them
    assert not missing, "paths that do not exist:\n" + "\n".join(sorted(set(missing)))
