"""benchmarks/encoder_inference.py --frozen-weights: TensorFlow hands oneDNN the fused dense
layers' weights as constants (an inference-mode inner product, whose weights oneDNN reorders
once and keeps), the run records the flag, and every variant still computes torch's function.

In a subprocess: TensorFlow reads TF_ONEDNN_ASSUME_FROZEN_WEIGHTS once per process, and a
test process with it set would compute stale results for any later test that re-assigns
weights.
"""

import collections
import json
import os
import subprocess
import sys

import pytest
from benchmark_scripts import BENCHMARKS, REPOSITORY

from electra_tf.utils.onednn import FROZEN_WEIGHTS_VARIABLE, onednn_enabled


def _run(tmp_path, *flags, precisions="float32"):
    out = tmp_path / "results"
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "PYTHONPATH": REPOSITORY}
    env.pop(FROZEN_WEIGHTS_VARIABLE, None)
    completed = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, "encoder_inference.py"), *flags,
         "--batch-size", "2", "--seq-length", "16", "--iterations", "1", "--rounds", "1",
         "--warmup", "1", "--precisions", precisions, "--output-dir", str(out)],
        capture_output=True, text=True, env=env, timeout=900, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(out / "results.json") as f:
        return json.load(f), completed.stdout + completed.stderr


def _inner_products(log):
    return [line for line in log.splitlines()
            if line.startswith("onednn_verbose") and ",exec," in line and "inner_product" in line]


@pytest.mark.skipif(not onednn_enabled(), reason="TensorFlow's oneDNN rewrites are off here")
def test_frozen_weights_switches_the_dense_kernels_and_keeps_the_results(tmp_path):
    record, log = _run(tmp_path, "--frozen-weights", precisions="float32,bfloat16")
    assert record["args"]["frozen_weights"] is True
    products = _inner_products(log)
    assert products, "no oneDNN inner product ran: the fused dense kernels are gone"
    # Weights taken as constant: an inference-mode inner product (on AVX-512, oneDNN's
    # brgemm one with the weights in its blocked layout).
    assert all(",forward_inference," in line for line in products), products[:3]
    # Every dense layer of a block in one kernel, in both precisions: query-key-value
    # projection plain, intermediate with its GELU, the two residual branches with their
    # add as a `sum` post-op (bfloat16 ran three of the four as MatMul + BiasAdd before).
    for source in ("src:f32", "src:bf16"):
        kinds = collections.Counter(
            "sum" if "attr-post-ops:sum" in line else
            "gelu" if "attr-post-ops:eltwise_gelu" in line else
            "plain" if "attr-post-ops" not in line else "other"
            for line in products if source in line)
        assert kinds["plain"] > 0 and not kinds["other"], (source, kinds)
        assert kinds["sum"] == 2 * kinds["plain"] and kinds["gelu"] == kinds["plain"], (
            source, kinds)
    differences = record["max_abs_difference_vs"]
    for variant, difference in differences.items():
        if variant != "reference" and "bfloat16" not in variant:
            assert difference < 1e-4, (variant, difference)
        elif "bfloat16" in variant:  # bfloat16's own rounding: as far as torch's
            assert difference < 2 * differences["torch bfloat16 (autocast)"], (
                variant, difference)


@pytest.mark.skipif(not onednn_enabled(), reason="TensorFlow's oneDNN rewrites are off here")
def test_without_the_flag_the_weights_are_read_plain_each_call(tmp_path):
    record, log = _run(tmp_path)
    assert record["args"]["frozen_weights"] is False
    products = _inner_products(log)
    assert products and all(",forward_training," in line for line in products), products[:3]
