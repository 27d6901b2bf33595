"""Every docstring example in the library runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import electra_tf

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(electra_tf.__path__, "electra_tf.")
    if not info.name.startswith("electra_tf.cli")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
