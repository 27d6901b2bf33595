"""Nothing a user runs from a clone reads outside the repository (a clone has nothing beside it).

Tests, examples, benchmarks and notebooks must find their data inside the repository (the
package's `data/assets`, or files a test makes). This scans every such file for paths that leave
the repository: relative paths whose `..` climbs above the root, `os.path.join(dirname(__file__),
"..", ...)` chains, the old `shared/data` folder, and absolute paths into this machine's folders.
"""

import ast
import json
import os
import re

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SCANNED = ("tests", "examples", "benchmarks", "notebooks")
# Absolute paths that exist only on a developer's machine; a user's machine has none of them.
MACHINE_PATHS = re.compile(r"""["'](/work|/root|/home|~)(/|["'])""")
SHARED_DATA = re.compile(r"""shared[/\\]data|["']shared["']\s*,\s*["']data["']""")
RELATIVE = re.compile(r"""["']((?:\.\./)+[^"'\s]*)["']""")


def _is_file_dir(node):
    """`os.path.dirname(__file__)` or `os.path.dirname(os.path.abspath(__file__))`."""
    if not (isinstance(node, ast.Call) and ast.unparse(node.func) == "os.path.dirname"):
        return False
    (argument,) = node.args or [None]
    return ast.unparse(argument) in ("__file__", "os.path.abspath(__file__)")


def _joined_paths(source):
    """The constant parts of each `os.path.join(os.path.dirname(__file__), "..", ...)`."""
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and ast.unparse(node.func) == "os.path.join"
                and node.args and _is_file_dir(node.args[0])):
            parts = []
            for argument in node.args[1:]:
                if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
                    break
                parts.append(argument.value)
            yield parts


def _leaves(base_dir, relative_path):
    resolved = os.path.normpath(os.path.join(base_dir, relative_path))
    return os.path.relpath(resolved, ROOT).startswith("..")


def outside_references(path, text):
    """Each place in `text` (the file at `path`) that refers to a path outside the repository."""
    found = []
    base_dir = os.path.dirname(path)
    sources = [text]
    if path.endswith(".ipynb"):
        notebook = json.loads(text)
        sources = ["".join(cell["source"]) for cell in notebook["cells"]]
    for source in sources:
        found += [match.group(0) for match in MACHINE_PATHS.finditer(source)]
        found += [match.group(0) for match in SHARED_DATA.finditer(source)]
        found += [match.group(1) for match in RELATIVE.finditer(source)
                  if _leaves(base_dir, match.group(1))]
        if path.endswith(".py"):
            found += [" / ".join(parts) for parts in _joined_paths(source)
                      if _leaves(base_dir, os.path.join(*parts) if parts else ".")]
    return found


def scanned_files():
    for folder in SCANNED:
        for directory, subdirectories, names in os.walk(os.path.join(ROOT, folder)):
            subdirectories[:] = [name for name in subdirectories
                                 if name not in ("__pycache__", "results", ".ipynb_checkpoints")]
            for name in names:
                if os.path.join(directory, name) == os.path.abspath(__file__):
                    continue  # this file's own examples of bad paths
                if name.endswith((".py", ".ipynb", ".md", ".sh", ".txt", ".cfg", ".toml")):
                    yield os.path.join(directory, name)


def test_no_file_refers_outside_the_repository():
    offenders = {}
    for path in scanned_files():
        with open(path, encoding="utf-8") as f:
            found = outside_references(path, f.read())
        if found:
            offenders[os.path.relpath(path, ROOT)] = found
    assert not offenders, (
        "These files refer to paths outside the repository, which a user's clone does not have; "
        f"ship the data inside the repository instead: {offenders}")


@pytest.mark.parametrize("snippet", [
    'DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")',
    'DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "corpus")',
    'open("../../../vocab.txt")',
    'DEFAULT = "/work/runs/classifier"',
    'path = "/root/data.tsv"',
    'SHARED = "shared/data/sentiment"',
])
def test_the_scan_catches_paths_that_leave(snippet):
    path = os.path.join(ROOT, "tests", "data", "test_example.py")  # two levels below the root
    assert outside_references(path, snippet)


def test_the_scan_catches_a_notebook_path(tmp_path):
    cell = {"cell_type": "code", "source": ['DATA_DIR = "../../shared/data/sentiment"\n']}
    text = json.dumps({"cells": [cell]})
    assert outside_references(os.path.join(ROOT, "notebooks", "x.ipynb"), text)


@pytest.mark.parametrize("snippet", [
    'ROOT = os.path.join(os.path.dirname(__file__), "..", "..")',
    'NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "..", "notebooks", "a.ipynb")',
    'open("../README.md")',
    'path = tmp_path / "run"',
])
def test_paths_inside_the_repository_pass(snippet):
    path = os.path.join(ROOT, "tests", "data", "test_example.py")
    assert outside_references(path, snippet) == []
