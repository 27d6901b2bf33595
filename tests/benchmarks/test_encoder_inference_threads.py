"""benchmarks/encoder_inference.py --intra-op-threads / --inter-op-threads / --batch-parts /
--width-parts: TensorFlow's pools are sized before its first op (and recorded), and the "N parts"
variants, each batch run as N slices at once, compute torch's function on every row, in order;
so do the "N width parts" variants, each block in groups of heads and neurons, and at batch 1 the
"TFLite XNNPACK" row (`electra_tf.tflite_forward`).

In a subprocess: TensorFlow's pools are fixed once per process.
"""

import json
import os
import subprocess
import sys

from benchmark_scripts import BENCHMARKS, REPOSITORY


def _run(tmp_path, *flags):
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, "encoder_inference.py"), *flags,
         "--seq-length", "16", "--iterations", "1", "--rounds", "1", "--warmup", "1",
         "--output-dir", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPOSITORY},
        timeout=900, check=False)
    return completed, out / "results.json"


def test_batch_parts_compute_torchs_function_with_the_threads_asked_for(tmp_path):
    completed, results = _run(tmp_path, "--reviews", "2", "--batch-size", "5",
                              "--precisions", "float32,bfloat16", "--intra-op-threads", "1",
                              "--inter-op-threads", "2", "--batch-parts", "2")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "TF threads intra-op 1, inter-op 2" in completed.stdout
    with open(results) as f:
        record = json.load(f)
    assert (record["args"]["intra_op_threads"], record["args"]["inter_op_threads"],
            record["args"]["batch_parts"]) == (1, 2, 2)
    assert {"electra_tf 2 parts", "electra_tf bfloat16 2 parts"} <= set(record["rows"])
    differences = record["max_abs_difference_vs"]
    # Parts of 2 and 3 reviews, each padded to the batch's longest: torch's outputs, in order.
    assert differences["electra_tf 2 parts"] < 1e-4, differences
    assert differences["electra_tf bfloat16 2 parts"] < 2 * differences[
        "torch bfloat16 (autocast)"], differences


def test_width_parts_and_tflite_one_review_at_a_time_compute_torchs_function(tmp_path):
    completed, results = _run(tmp_path, "--reviews", "2", "--batch-size", "1",
                              "--precisions", "float32,bfloat16", "--intra-op-threads", "1",
                              "--inter-op-threads", "2", "--width-parts", "2",
                              "--tflite-length-multiple", "4")
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(results) as f:
        record = json.load(f)
    assert (record["args"]["width_parts"], record["args"]["tflite_length_multiple"]) == (2, 4)
    assert {"electra_tf 2 width parts", "electra_tf bfloat16 2 width parts",
            "electra_tf TFLite XNNPACK"} <= set(record["rows"])
    differences = record["max_abs_difference_vs"]
    assert differences["electra_tf 2 width parts"] < 1e-4, differences
    # Each review padded up to a multiple of 4 tokens, the padding masked out and cut off.
    assert differences["electra_tf TFLite XNNPACK"] < 1e-4, differences
    assert differences["electra_tf bfloat16 2 width parts"] < 2 * differences[
        "torch bfloat16 (autocast)"], differences


def test_bad_thread_and_part_counts_are_refused(tmp_path):
    completed, results = _run(tmp_path, "--batch-size", "4", "--batch-parts", "5")
    assert completed.returncode == 2 and not results.exists()
    assert "--batch-parts must be in [1, --batch-size=4]; received 5" in completed.stderr
    completed, _ = _run(tmp_path, "--tflite-length-multiple", "0")
    assert completed.returncode == 2
    assert "--tflite-length-multiple must be >= 1; received 0" in completed.stderr
    completed, _ = _run(tmp_path, "--width-parts", "0")
    assert completed.returncode == 2
    assert "--width-parts must be >= 1; received 0" in completed.stderr
    completed, _ = _run(tmp_path, "--intra-op-threads", "-1")
    assert completed.returncode == 2
    assert "--intra-op-threads must be >= 0 (0: TensorFlow's default); received -1" in (
        completed.stderr)
