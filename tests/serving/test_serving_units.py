"""In-process tests of the serving pieces: the dynamic batcher, request parsing, config, CLI."""

import asyncio
import os
import random
import time

import pytest

from electra_tf.cli.main import build_parser
from electra_tf.serving.dynamic_batcher import DynamicBatcher, QueueFullError
from electra_tf.serving.predict_request import format_predict_response, parse_predict_request
from electra_tf.serving.served_model import find_model_versions
from electra_tf.serving.serving_config import ServingConfig


def run(coroutine):
    return asyncio.run(coroutine)


def test_batcher_maps_results_back_to_their_requests():
    batches = []

    def run_batch(key, payloads):
        batches.append((key, sum(len(p) for p in payloads)))
        return [[key + ":" + text for text in payload] for payload in payloads]

    async def main():
        batcher = DynamicBatcher(run_batch, max_batch_size=8, batch_timeout_ms=10)
        rng = random.Random(0)
        payloads = [[f"r{i}.{j}" for j in range(rng.randint(1, 10))] for i in range(60)]
        keys = [rng.choice(["a", "b"]) for _ in payloads]
        results = await asyncio.gather(*[
            batcher.submit(key, payload, size=len(payload))
            for key, payload in zip(keys, payloads)])
        await batcher.close()
        return keys, payloads, results

    keys, payloads, results = run(main())
    for key, payload, result in zip(keys, payloads, results):
        assert result == [key + ":" + text for text in payload]
    assert len(batches) < len(payloads)  # requests were merged
    # No batch mixes keys or exceeds the limit, except a single request larger than it.
    sizes = {len(p) for p in payloads}
    assert all(size <= 8 or size in sizes for _, size in batches)


def test_batcher_isolates_a_failing_request_and_survives_a_failing_batch():
    def run_batch(key, payloads):
        if key == "broken":
            raise RuntimeError("the model crashed")
        return [ValueError("bad") if payload == "bad" else payload for payload in payloads]

    async def main():
        batcher = DynamicBatcher(run_batch, max_batch_size=4, batch_timeout_ms=10)
        results = await asyncio.gather(
            batcher.submit("ok", "good"), batcher.submit("ok", "bad"),
            batcher.submit("broken", "x"), return_exceptions=True)
        after = await batcher.submit("ok", "still working")
        await batcher.close()
        return results, after

    (good, bad, broken), after = run(main())
    assert good == "good" and isinstance(bad, ValueError)
    assert isinstance(broken, RuntimeError) and after == "still working"


def test_batcher_refuses_when_the_queue_is_full_and_after_close():
    async def main():
        batcher = DynamicBatcher(lambda key, payloads: payloads, max_batch_size=100,
                                 batch_timeout_ms=200, max_queue=3)
        waiting = [asyncio.ensure_future(batcher.submit("k", i)) for i in range(3)]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFullError, match="3 requests are already queued"):
            await batcher.submit("k", 3)
        assert await asyncio.gather(*waiting) == [0, 1, 2]  # the queued ones still answer
        await batcher.close()
        with pytest.raises(QueueFullError, match="shutting down"):
            await batcher.submit("k", 4)

    run(main())


@pytest.mark.parametrize("arguments,message", [
    (dict(max_batch_size=0), "`max_batch_size` must be an integer >= 1"),
    (dict(batch_timeout_ms=-1), "`batch_timeout_ms` must be a number >= 0"),
])
def test_batcher_validates_its_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        DynamicBatcher(lambda key, payloads: payloads, **arguments)


def test_request_parsing_for_two_input_signatures():
    names = ["context", "question"]
    rows = {"instances": [{"question": "Who?", "context": "Ann did."}]}
    assert parse_predict_request(rows, names) == (
        {"context": [b"Ann did."], "question": [b"Who?"]}, True)
    with pytest.raises(ValueError, match="each instance must be an object with keys"):
        parse_predict_request({"instances": ["Who?"]}, names)
    with pytest.raises(ValueError, match="same number of items"):
        parse_predict_request({"inputs": {"question": ["a", "b"], "context": ["c"]}}, names)
    with pytest.raises(ValueError, match="or, for this one-input signature, a list"):
        parse_predict_request({"inputs": "text"}, ["text"])


def test_response_formats_follow_tf_serving():
    import numpy as np

    outputs = {"answer": np.array([b"Ann"]), "start_char": np.array([0], np.int32)}
    assert format_predict_response(outputs, row_format=False) == {
        "outputs": {"answer": ["Ann"], "start_char": [0]}}


@pytest.mark.parametrize("arguments,message", [
    (dict(name="my model"), "`name` must be letters"),
    (dict(port=-1), "`port` must be an integer >= 0"),
    (dict(max_instances=0), "`max_instances` must be an integer >= 1"),
    (dict(max_text_length=True), "`max_text_length` must be an integer"),
    (dict(intra_op_threads=-1), r"`intra_op_threads` must be an integer >= 0; received "
                                r"intra_op_threads=-1"),
    (dict(inter_op_threads=1.5), "`inter_op_threads` must be an integer >= 0"),
])
def test_serving_config_rejects_bad_values(arguments, message):
    with pytest.raises(ValueError, match=message):
        ServingConfig(**arguments)


def test_model_directory_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        find_model_versions(str(tmp_path / "missing"))
    os.makedirs(tmp_path / "base" / "notes")
    with pytest.raises(ValueError, match="no saved_model.pb and no numeric version"):
        find_model_versions(str(tmp_path / "base"))


def test_cli_parses_every_option_and_defaults_to_loopback():
    args = build_parser().parse_args([
        "serve", "exports/sentiment", "--name", "sentiment", "--port", "9000",
        "--max-batch-size", "16", "--batch-timeout-ms", "2.5", "--workers", "2",
        "--max-body-bytes", "1000", "--max-instances", "4", "--max-text-length", "50",
        "--max-queue", "8", "--grpc-port", "9001", "--version-policy", "all",
        "--version-labels", "stable=1,canary=2", "--file-system-poll-wait-seconds", "0.5",
        "--intra-op-threads", "1", "--inter-op-threads", "2"])
    assert (args.host, args.port, args.max_batch_size, args.batch_timeout_ms, args.workers,
            args.max_body_bytes, args.max_instances, args.max_text_length, args.max_queue) == (
        "127.0.0.1", 9000, 16, 2.5, 2, 1000, 4, 50, 8)
    assert (args.grpc_port, args.version_policy, args.version_labels,
            args.file_system_poll_wait_seconds) == (
        9001, "all", {"stable": "1", "canary": "2"}, 0.5)
    assert (args.intra_op_threads, args.inter_op_threads) == (1, 2)
    defaults = build_parser().parse_args(["serve", "exports/sentiment"])
    assert (defaults.grpc_port, defaults.version_policy, defaults.version_labels) == (
        None, "latest", {})
    assert (defaults.intra_op_threads, defaults.inter_op_threads) == (0, 0)  # TF's: all cores


def test_cli_reports_a_missing_model_directory(tmp_path, capsys):
    from electra_tf.cli.main import main

    assert main(["serve", str(tmp_path / "nothing"), "--port", "0"]) == 2
    assert "does not exist" in capsys.readouterr().err



def test_batch_waits_for_clients_answered_by_the_last_batch():
    # Closed-loop clients resend a few ms after their answer. A request that queued
    # while the model was busy must not leave alone the moment the model frees up:
    # its batch waits up to batch_timeout_ms from then, so those clients join it
    # (without this, 16 clients settle into two alternating batches of 8).
    batches = []

    def run_batch(key, payloads):
        batches.append(list(payloads))
        time.sleep(0.2)
        return payloads

    async def main():
        batcher = DynamicBatcher(run_batch, max_batch_size=2, batch_timeout_ms=150)
        first = asyncio.ensure_future(batcher.submit("k", "full", size=2))  # runs at once
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(batcher.submit("k", "queued"))  # arrives while busy
        await first  # the model is free from now; "queued" arrived 150+ ms ago
        await asyncio.sleep(0.05)
        late = await batcher.submit("k", "answered client")
        await queued
        await batcher.close()
        return late

    assert run(main()) == "answered client"
    assert batches == [["full"], ["queued", "answered client"]]


def test_batch_stops_waiting_once_the_last_batch_clients_are_back():
    # Three closed-loop clients: once all three are back, their batch runs at once
    # instead of idling the model until batch_timeout_ms (1 s here) has passed.
    batches = []

    def run_batch(key, payloads):
        batches.append(list(payloads))
        return payloads

    async def client(batcher, name, delay):
        await batcher.submit("k", name + "1")
        await asyncio.sleep(delay)  # the client's turnaround before its next request
        start = time.perf_counter()
        await batcher.submit("k", name + "2")
        return time.perf_counter() - start

    async def main():
        batcher = DynamicBatcher(run_batch, max_batch_size=32, batch_timeout_ms=1000)
        waits = await asyncio.gather(*[
            client(batcher, name, delay) for name, delay in (("a", 0.0), ("b", 0.02), ("c", 0.04))])
        await batcher.close()
        return waits

    waits = run(main())
    assert batches == [["a1", "b1", "c1"], ["a2", "b2", "c2"]]
    assert max(waits) < 0.5  # c2 did not wait out the 1 s timeout


SERVE_WITH_THREADS = """
import sys
import tensorflow as tf
import electra_tf
import electra_tf.serving.serving_app as serving_app
from electra_tf.cli.main import main

def run_server(model_dir, config, on_ready=None):  # what the server would start with
    electra_tf.set_tensorflow_threads(config.intra_op_threads, config.inter_op_threads)
    print("threads", tf.config.threading.get_intra_op_parallelism_threads(),
          tf.config.threading.get_inter_op_parallelism_threads(), flush=True)

serving_app.run_server = run_server
sys.exit(main(["serve", sys.argv[1], "--intra-op-threads", "1", "--inter-op-threads", "2"]))
"""


def test_serve_sizes_tensorflow_threads_before_a_task_directory_is_exported(tmp_path):
    """`serve TASK_DIR --intra-op-threads 1 --inter-op-threads 2`: the task directory's
    export runs TensorFlow's first ops, after which the pools can no longer change, so the
    command sizes them first; the server then finds them as asked."""
    import subprocess
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "compression"))
    from task_dirs import make_task_dirs

    task_dir = make_task_dirs(tmp_path)["classify"]
    process = subprocess.run([sys.executable, "-c", SERVE_WITH_THREADS, task_dir],
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert process.returncode == 0, process.stderr[-3000:]
    assert "is a task model directory: exporting it" in process.stderr
    assert "threads 1 2" in process.stdout


SET_THREADS_AFTER_START = """
import tensorflow as tf
from electra_tf import set_tensorflow_threads

set_tensorflow_threads(1, 2)
print("set", tf.config.threading.get_intra_op_parallelism_threads(),
      tf.config.threading.get_inter_op_parallelism_threads())
print("sum", float(tf.constant(1.0) + 1.0))  # TensorFlow starts: its pools are fixed now
set_tensorflow_threads(1, 2)
set_tensorflow_threads(0, 0)  # the sizes it has, or none asked: nothing to change
for sizes in ((2, 2), (-1, 0)):
    try:
        set_tensorflow_threads(*sizes)
    except ValueError as error:
        print("refused", error)
"""


def test_tensorflow_threads_are_set_before_its_first_op_and_refused_after():
    import subprocess
    import sys

    process = subprocess.run([sys.executable, "-c", SET_THREADS_AFTER_START],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert process.returncode == 0, process.stderr[-3000:]
    lines = process.stdout.splitlines()
    assert lines[:2] == ["set 1 2", "sum 2.0"]
    assert lines[2].startswith("refused TensorFlow already runs with intra_op_threads=1 (0: all "
                               "cores) in this process; intra_op_threads=2 must be set before")
    assert lines[3] == ("refused `intra_op_threads` must be an integer >= 0 (0: all cores); "
                        "received intra_op_threads=-1.")
