"""Every docstring example in the library runs and prints what it says, and every module has one."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import electra_tf


def is_namespace_package(name):
    """A package `__init__` that defines no function or class of its own (a docstring at most).

    Such a module has nothing to show an example of; every other module must.
    """
    module = importlib.import_module(name)
    if not (getattr(module, "__file__", None) or "").endswith("__init__.py"):
        return False
    return not any(
        (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == name
        for value in vars(module).values()
    )


MODULES = sorted(
    info.name for info in pkgutil.walk_packages(electra_tf.__path__, "electra_tf.")
    if not info.name.startswith("electra_tf.cli") and not is_namespace_package(info.name)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    assert result.attempted > 0, (
        f"{name} has no docstring example: add a runnable `>>>` example to its module "
        "docstring or to the docstring of one of its public functions or classes."
    )
