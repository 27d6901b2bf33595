"""The public API is `electra_tf.<name>` (STYLE.md §9): every name in `__all__` resolves to the
object of its home module, examples/notebooks/benchmarks import nothing deeper, and the names
that load lazily do not slow down `import electra_tf`."""

import ast
import doctest
import glob
import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys

import pytest

import electra_tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBPACKAGES = {info.name for info in pkgutil.iter_modules(electra_tf.__path__)}
# The modules that must stay unimported after a bare `import electra_tf`: the home of every
# lazily loaded name, except those the eagerly imported model classes already need.
LOADED_WITH_THE_MODELS = {
    "electra_tf.compression.electra_distiller",
    "electra_tf.models.presets",
    "electra_tf.utils.strategies",
}


def test_module_docstring_example():
    # tests/test_docstring_examples.py walks the submodules only.
    result = doctest.testmod(electra_tf, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", electra_tf.__all__)
def test_every_public_name_is_the_object_of_its_home_module(name):
    value = getattr(electra_tf, name)
    if name in electra_tf._LAZY:
        module_name, attribute = electra_tf._LAZY[name]
    else:
        module_name, attribute = getattr(value, "__module__", None), getattr(value, "__name__", None)
        if module_name is None:  # a constant imported eagerly (PRESETS)
            return
    assert value is getattr(importlib.import_module(module_name), attribute)
    if inspect.isclass(value) or inspect.isfunction(value):
        # The table names where a function or class is defined, not a module that re-imports it.
        assert value.__module__ == module_name, f"{name} is defined in {value.__module__}"


def test_public_names_are_listed_once_and_in_dir():
    assert len(set(electra_tf.__all__)) == len(electra_tf.__all__)
    assert set(electra_tf.__all__) <= set(dir(electra_tf))
    assert not set(electra_tf.__all__) & SUBPACKAGES  # `electra_tf.tasks` stays the subpackage


def test_an_unknown_name_raises_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="no_such_name"):
        electra_tf.no_such_name  # noqa: B018
    with pytest.raises(ImportError, match="no_such_name"):
        from electra_tf import no_such_name  # noqa: F401


def sources():
    """(label, Python source) of every example, benchmark and notebook code cell."""
    for pattern in ("examples/*.py", "benchmarks/*.py", "notebooks/*.py"):
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            with open(path, encoding="utf-8") as f:
                yield os.path.relpath(path, ROOT), f.read()
    for path in sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb"))):
        with open(path, encoding="utf-8") as f:
            cells = json.load(f)["cells"]
        for index, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                yield f"{os.path.relpath(path, ROOT)} cell {index}", without_magics("".join(cell["source"]))


def without_magics(source):
    """IPython `%magic` and `!shell` lines as `pass` (keeping the indentation a block needs)."""
    return "\n".join(
        line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
        for line in source.split("\n")
    )


def deep_uses(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("electra_tf."):
            yield f"line {node.lineno}: from {node.module} import ..."
        elif isinstance(node, ast.ImportFrom) and node.module == "electra_tf":
            for alias in node.names:
                if alias.name not in electra_tf.__all__ and alias.name != "__version__":
                    yield f"line {node.lineno}: from electra_tf import {alias.name} (not in __all__)"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("electra_tf."):
                    yield f"line {node.lineno}: import {alias.name}"
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "electra_tf" and node.attr in SUBPACKAGES):
            yield f"line {node.lineno}: electra_tf.{node.attr}.…"


def test_examples_notebooks_and_benchmarks_use_only_the_top_level_api():
    checked, deep = 0, []
    for label, source in sources():
        deep += [f"{label}, {use}" for use in deep_uses(ast.parse(source))]
        checked += 1
    assert checked > 10
    assert not deep, "import these from `electra_tf` (add them to its table if missing):\n" + "\n".join(deep)


def test_bare_import_leaves_the_lazy_modules_unimported():
    lazy_homes = {module for module, _ in electra_tf._LAZY.values()} - LOADED_WITH_THE_MODELS
    code = ("import sys, electra_tf; "
            "print('\\n'.join(m for m in sys.modules if m.startswith('electra_tf')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=ROOT, timeout=300)
    loaded = set(result.stdout.split())
    assert "electra_tf.tasks.run_qa" in lazy_homes and "electra_tf.export.tflite_export" in lazy_homes
    assert not loaded & lazy_homes, f"`import electra_tf` imported {sorted(loaded & lazy_homes)}"
