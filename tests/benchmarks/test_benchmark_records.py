"""Every benchmark leaves a record: results.json with the machine it ran on and the commit.

Speed ratios depend on the CPU (AVX2 vs AVX-512 with VNNI/BF16), so a figure
without its machine cannot be checked. Each measuring script under
benchmarks/ writes its figures through `electra_tf.write_benchmark_results`
(or, for the older ones, a results.json holding `describe_machine()`); this
test reads the scripts' code, as running them takes minutes to hours.
"""

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess

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
    assert re.fullmatch(r"[0-9a-f]{40}", record["code"]["commit"])  # CI runs a git clone
    assert isinstance(record["code"]["modified"], bool)
    assert os.listdir(tmp_path / "bench") == ["results.json"]  # no temporary file left
    with pytest.raises(ValueError, match="received list"):
        electra_tf.write_benchmark_results(str(tmp_path / "bad"), [1, 2])
    assert not os.path.exists(tmp_path / "bad" / "results.json")


def _load_machine_module(root):
    """electra_tf/utils/machine.py copied under `root`, imported from there."""
    source = os.path.join(os.path.dirname(electra_tf.__file__), "utils", "machine.py")
    target = root / "electra_tf" / "utils" / "machine.py"
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)
    spec = importlib.util.spec_from_file_location(f"machine_copy_{root.name}", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_code_version_names_the_commit_and_whether_the_code_differs(tmp_path):
    outside = _load_machine_module(tmp_path / "no_git")
    assert outside.code_version() is None  # a copy outside any checkout: no commit to name

    root = tmp_path / "checkout"
    module = _load_machine_module(root)
    (root / "benchmarks" / "results" / "run").mkdir(parents=True)
    (root / "benchmarks" / "bench.py").write_text("print(1)\n")
    (root / "benchmarks" / "results" / "run" / "results.json").write_text("{}\n")
    git = lambda *args: subprocess.run(  # noqa: E731
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
        capture_output=True, text=True).stdout.strip()
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "start")
    head = git("rev-parse", "HEAD")
    assert module.code_version() == {"commit": head, "modified": False}
    (root / "benchmarks" / "results" / "run" / "results.json").write_text('{"a": 1}\n')
    assert module.code_version() == {"commit": head, "modified": False}  # results don't count
    (root / "benchmarks" / "bench.py").write_text("print(2)\n")
    assert module.code_version() == {"commit": head, "modified": True}
    git("checkout", "-q", "--", "benchmarks/bench.py")
    with open(root / "electra_tf" / "utils" / "machine.py", "a") as f:
        f.write("# edited\n")
    assert module.code_version() == {"commit": head, "modified": True}


def test_cpu_info_tells_cpus_with_one_model_name_apart(tmp_path):
    # Two cloud CPUs both called "AMD EPYC": Zen 4 (family 25) and Zen 5 (family 26), which
    # runs AVX-512 at full width and so twice the float32 matmul speed per core.
    from electra_tf.utils.machine import cpu_info

    def read(family, model, flags):
        path = tmp_path / f"cpuinfo_{family}"
        path.write_text("".join(
            f"processor\t: {i}\nvendor_id\t: AuthenticAMD\ncpu family\t: {family}\n"
            f"model\t\t: {model}\nmodel name\t: AMD EPYC\nflags\t\t: {flags}\n\n"
            for i in range(2)))
        return cpu_info(str(path))

    zen4 = read(25, 17, "fpu avx2 avx512f avx512_bf16")
    zen5 = read(26, 2, "fpu avx2 avx512f avx512_bf16 avx512_vp2intersect")
    assert zen4 == {"cpu_model": "AMD EPYC", "cpu_family": 25, "cpu_model_number": 17,
                    "cpu_flags_simd": ["avx2", "avx512f", "avx512_bf16"]}
    assert zen5["cpu_family"] == 26 and zen5["cpu_model_number"] == 2
    assert zen5["cpu_flags_simd"][-1] == "avx512_vp2intersect"
    missing = cpu_info(str(tmp_path / "no_such_file"))  # not Linux: the fields are left out
    assert set(missing) == {"cpu_model", "cpu_flags_simd"} and missing["cpu_flags_simd"] == []
