"""Loads a script under benchmarks/ as a module, for the tests of its functions."""

import importlib.util
import os
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARKS = os.path.join(REPOSITORY, "benchmarks")


def load_benchmark(script, module_name=None):
    """benchmarks/<script>.py as a module (benchmarks/ goes on sys.path: scripts import siblings)."""
    if BENCHMARKS not in sys.path:
        sys.path.insert(0, BENCHMARKS)
    spec = importlib.util.spec_from_file_location(
        module_name or script, os.path.join(BENCHMARKS, f"{script}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
