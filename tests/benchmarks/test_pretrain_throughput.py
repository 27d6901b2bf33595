"""benchmarks/pretrain_throughput.py: its matmul-work count, its ABAB timing, its argument checks,
and a run with one thread per op and the step in batch parts (in a subprocess: TensorFlow's pools
are fixed once per process)."""

import json
import os
import subprocess
import sys

import pytest
from benchmark_scripts import BENCHMARKS, REPOSITORY, load_benchmark

from electra_tf import ElectraConfig


@pytest.fixture(scope="module")
def benchmark():
    return load_benchmark("pretrain_throughput")


def test_step_matmul_flops_counted_by_hand(benchmark):
    discriminator = ElectraConfig(vocab_size=100, hidden_size=8, num_layers=2, num_heads=2,
                                  intermediate_size=16, embedding_size=4)
    generator = ElectraConfig(vocab_size=100, hidden_size=4, num_layers=2, num_heads=1,
                              intermediate_size=8, embedding_size=4)
    batch, seq, predictions = 3, 5, 2
    # Per token: projection E·H, then per layer 3H² + H² + 2·H·I + 2·T·H.
    disc_layer = 3 * 64 + 64 + 2 * 8 * 16 + 2 * 5 * 8
    disc_token = 4 * 8 + 2 * disc_layer + 8 * 8 + 8  # + head dense H→H and H→1
    gen_layer = 3 * 16 + 16 + 2 * 4 * 8 + 2 * 5 * 4
    gen_token = 2 * gen_layer  # embedding_size == hidden_size: no projection
    gen_head = 4 * 4 + 4 * 100  # per masked position: Hg→E, E→V
    expected = 3 * 2 * (batch * seq * (disc_token + gen_token) + batch * predictions * gen_head)
    assert benchmark.step_matmul_flops(discriminator, generator, batch, seq, predictions) == expected


def test_interleaved_seconds_runs_blocks_in_turn(benchmark):
    calls = []
    steps = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    seconds = benchmark.interleaved_seconds(steps, rounds=2, block=2)
    assert calls == ["a", "a", "b", "b", "a", "a", "b", "b"]
    assert {name: len(values) for name, values in seconds.items()} == {"a": 2, "b": 2}


def test_matmul_peak_is_measured(benchmark):
    assert benchmark.matmul_peak_gflops("tensorflow", "float32", size=64, chain=2, repeats=1) > 0
    assert benchmark.matmul_peak_gflops("tensorflow", "float32", size=64, chain=2, repeats=1,
                                        parallel_chains=2) > 0


def test_batch_parts_with_one_thread_per_op_in_a_subprocess(tmp_path):
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, "pretrain_throughput.py"), "--precisions",
         "float32", "--rounds", "1", "--block", "1", "--warmup", "1", "--batch-size", "4",
         "--seq-length", "32", "--batch-parts", "2", "--intra-op-threads", "1",
         "--inter-op-threads", "2", "--matmul-size", "512", "--output-dir", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPOSITORY},
        timeout=900, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "TensorFlow threads: intra-op 1, inter-op 2; our step in 2 batch part(s)" in completed.stdout
    assert "TensorFlow: 2 chains at once" in completed.stdout
    with open(out / "results.json") as f:
        record = json.load(f)
    # Read back from TensorFlow: the pools were sized before its first op.
    assert record["tensorflow_threads"] == {"intra_op": 1, "inter_op": 2}
    assert record["matmul_peak_parallel_chains"] == 2 and record["args"]["batch_parts"] == 2
    assert record["rows"]["electra_tf float32"]["ms_per_step"] > 0
    assert record["while_loop_warnings"] == 0


@pytest.mark.parametrize("argv, message", [
    (["--precisions", "float16"], "--precisions"),
    (["--precisions", ""], "--precisions"),
    (["--rounds", "0"], "--rounds"),
    (["--batch-parts", "0"], "--batch-parts must be in"),
    (["--matmul-size", "0"], "--matmul-size must be ≥ 1"),
    (["--batch-size", "2", "--batch-parts", "3"], r"--batch-parts must be in \[1, --batch-size=2\]"),
])
def test_bad_arguments_are_refused_before_any_work(benchmark, argv, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        benchmark.main(argv + ["--output-dir", str(tmp_path)])
    assert not os.listdir(tmp_path)
