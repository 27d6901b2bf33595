"""benchmarks/accelerator_check.py: exits 0 without a GPU, and its whole code path runs (CPU smoke)."""

import json
import math
import os

import pytest
import tensorflow as tf
from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def check():
    return load_benchmark("accelerator_check")


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="this machine has a GPU")
def test_without_a_gpu_it_says_so_and_exits_0(check, tmp_path, capsys):
    assert check.main(["--output-dir", str(tmp_path)]) == 0
    assert "No GPU visible" in capsys.readouterr().out
    assert not os.listdir(tmp_path)  # nothing measured, nothing written


def test_cpu_smoke_runs_every_step_and_records_the_figures(check, tmp_path):
    assert check.main(["--cpu-smoke", "--output-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["cpu_smoke"] and results["healthy"]
    assert results["machine"]["cpu_model"] and "tensorflow" in results["machine"]
    rows = results["pretraining_throughput"]["rows"]
    assert set(rows) == {"electra_tf float32", "electra_tf mixed_float16", "torch float32",
                         "torch AMP (bfloat16)"}  # the XLA row is left out on CPU
    assert all(row["tokens_per_s"] > 0 for row in rows.values())
    health = results["pretraining_health"]
    assert health["logged_losses"] == health["steps"] and health["all_finite"]
    assert results["mirrored"]["replicas"] == 2  # the two logical CPUs of tests/conftest.py
    finetune = results["glue_sized_finetune"]
    assert finetune["all_finite"] and all(math.isfinite(loss) for loss in finetune["losses"])
    assert 0.0 <= finetune["dev"]["accuracy"] <= 1.0
