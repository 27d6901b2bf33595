"""Every benchmark leaves a record: results.json with the machine it ran on.

Speed ratios depend on the CPU (AVX2 vs AVX-512 with VNNI/BF16), so a figure
without its machine cannot be checked. Each measuring script under
benchmarks/ writes its figures through `electra_tf.write_benchmark_results`
(or, for the older ones, a results.json holding `describe_machine()`); this
test reads the scripts' code, as running them takes minutes to hours.
"""

import ast
import json
import os

import pytest

import electra_tf

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                          "benchmarks")
# Scripts that measure nothing: scale_budget.py turns other benchmarks' results.json
# files and published peak figures into a table of device-days.
CALCULATORS = {"scale_budget.py"}


def _scripts():
    return sorted(name for name in os.listdir(BENCHMARKS)
                  if name.endswith(".py") and not name.startswith("_"))


def _called_names(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            names.add(function.attr if isinstance(function, ast.Attribute)
                      else getattr(function, "id", None))
    return names


@pytest.mark.parametrize("script", [s for s in _scripts() if s not in CALCULATORS])
def test_benchmark_records_its_machine(script):
    called = _called_names(os.path.join(BENCHMARKS, script))
    assert called & {"write_benchmark_results", "describe_machine"}, (
        f"benchmarks/{script} writes no record of the machine it ran on: end it with "
        "electra_tf.write_benchmark_results(output_dir, results)")


def test_write_benchmark_results_adds_the_machine_and_writes_atomically(tmp_path):
    path = electra_tf.write_benchmark_results(
        str(tmp_path / "bench"), {"rows": {"a": 1.0}, "machine": {"gpus": ["H200"]}})
    with open(path) as f:
        record = json.load(f)
    assert record["rows"] == {"a": 1.0}
    assert record["machine"]["gpus"] == ["H200"]  # the benchmark's own entries are kept
    assert {"cpu_model", "cpu_flags_simd", "cores", "tensorflow"} <= set(record["machine"])
    assert os.listdir(tmp_path / "bench") == ["results.json"]  # no temporary file left
    with pytest.raises(ValueError, match="received list"):
        electra_tf.write_benchmark_results(str(tmp_path / "bad"), [1, 2])
    assert not os.path.exists(tmp_path / "bad" / "results.json")
