"""No import circles in modules/ or tools/, and every module there imports on its own.

A circle (a task's recipe importing the registry that imports the task; two tools importing
each other) means neither file can be read, tested or changed alone, and works only in some
import orders. The graph is read from the source (every import statement, also those inside
functions: a deferred import still ties the two files together), so a new circle fails here
whichever order the suite happens to import things in.
"""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module_files(folder: str) -> dict:
    """Dotted name -> path of every .py file under ROOT/folder (tools/ files are imported by bare name)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, folder)):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for f in sorted(filenames):
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), ROOT if folder == "modules" else os.path.join(ROOT, folder))
                parts = rel[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = os.path.join(dirpath, f)
    return found


def imports_of(name: str, path: str, known: dict) -> set:
    """The modules in `known` that `name` (at `path`) imports anywhere in its source."""
    is_package = path.endswith("__init__.py")
    package = name if is_package else name.rpartition(".")[0]
    edges = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import sub` imports the submodule when there is one, else a name of pkg
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import modules.transcribe.lm as x` -> that module
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
    return edges


def cycles(graph: dict) -> list:
    """Each strongly connected group of more than one module (Tarjan), as a sorted list."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def import_graph(folder: str) -> dict:
    known = module_files(folder)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_the_cycle_finder_finds_a_circle_through_a_deferred_import(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    (tmp_path / "one.py").write_text("import two\n")
    (tmp_path / "two.py").write_text("def f():\n    from one import g\n")
    known = {"one": str(tmp_path / "one.py"), "two": str(tmp_path / "two.py")}
    assert cycles({n: imports_of(n, p, known) for n, p in known.items()}) == [["one", "two"]]


@pytest.mark.parametrize("folder", ["modules", "tools"])
def test_no_import_circles(folder):
    graph = import_graph(folder)
    assert len(graph) > 5 and any(graph.values())  # the graph was read
    assert cycles(graph) == []


def test_the_graph_holds_the_edges_the_code_has():
    graph = import_graph("modules")
    assert "modules.task_interface" in graph["modules.transcribe.recipe"]
    assert "modules.transcribe.normalize" in graph["modules.transcribe.tokenizers"]
    assert graph["modules.task_interface"] == set() and graph["modules.text"] == set()  # leaves
    assert {"modules.transcribe", "modules.classify"} <= graph["modules.tasks"]
    assert "synthesis" in import_graph("tools")["make_kws_corpus"]


def test_every_module_imports_alone():
    """Each module of modules/ and tools/ imported with none of the others loaded before it."""
    names = sorted(module_files("modules")) + sorted(module_files("tools"))
    script = (
        "import importlib, sys, traceback\n"
        f"sys.path[:0] = [{ROOT!r}, {os.path.join(ROOT, 'tools')!r}]\n"
        f"ours = set({names!r})\n"
        "failed = []\n"
        "for name in sorted(ours):\n"
        "    for loaded in [m for m in sys.modules if m in ours or m.startswith('modules.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed.append(name + ': ' + traceback.format_exc(limit=-3))\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_every_registered_task_provides_the_task_interface():
    from modules.task_interface import Task
    from modules.tasks import tasks

    wanted = [n for n in vars(Task) if not n.startswith("_")] + list(Task.__annotations__)
    for name, task in tasks().items():
        assert task.NAME == name
        assert [n for n in wanted if not hasattr(task, n)] == [], name
