"""Shared test helpers: tiny configs and inputs with padding and two segments.

Test files import these as `from conftest import ...` (pytest puts tests/ on sys.path).
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPUs for the distribution tests; must happen before TF touches devices.
try:
    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        _cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
except RuntimeError:
    pass

# Real data for the tests ships inside the package (electra_tf/data/assets, with its sources and
# licences); nothing here reads outside the repository.
from electra_tf.data.packaged_corpus import (  # noqa: E402,F401
    ASSETS_DIR as DATA_ASSETS_DIR,
    packaged_corpus,
    packaged_sentiment,
    packaged_squad_sample,
)

# Tiny sizes (STYLE: hidden 2-8, small vocabulary); E != H exercises the projection.
TINY = dict(
    vocab_size=37,
    hidden_size=8,
    num_layers=2,
    num_heads=2,
    intermediate_size=16,
    embedding_size=4,
    max_sequence_length=16,
    type_vocab_size=2,
    dropout_rate=0.0,
)


def make_inputs(batch_size=3, seq_length=9, vocab_size=37, seed=0):
    """Random ids with padding at the end of later rows and two segments."""
    rng = np.random.default_rng(seed)
    word_ids = rng.integers(1, vocab_size, size=(batch_size, seq_length)).astype(np.int32)
    mask = np.ones((batch_size, seq_length), np.int32)
    for row in range(1, batch_size):
        mask[row, seq_length - 2 * row:] = 0
    word_ids[mask == 0] = 0
    type_ids = np.zeros((batch_size, seq_length), np.int32)
    type_ids[:, seq_length // 2:] = 1
    type_ids[mask == 0] = 0
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


@pytest.fixture
def inputs():
    return make_inputs()


def dense_rows(dense, run):
    """The rows the Dense layer `dense` sees in each call that `run()` makes.

    The transformer layers call their dense layers on (rows, hidden) inputs: batch × length
    rows when padded, the real tokens' rows when not. A traced call records its static
    count (None where it is dynamic).
    """
    rows, original_call = [], dense.call
    dense.call = lambda x: rows.append(x.shape[0]) or original_call(x)
    try:
        run()
    finally:
        dense.call = original_call
    return [None if row is None else int(row) for row in rows]


def executed_ops(function, inputs, log_dir):
    """How many times TensorFlow's executor ran each op for one `function(inputs)`.

    Keys are the profiler's "scope/op_name:OpType" names: what ran after grappler's
    rewrites (a fused kernel carries the name of the last op it took in).
    """
    import collections
    import glob

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    function(inputs)  # traced and optimised before the profiler starts
    tf.profiler.experimental.start(str(log_dir))
    try:
        function(inputs)
    finally:
        tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    path = sorted(glob.glob(os.path.join(str(log_dir), "plugins", "profile", "*",
                                         "*.xplane.pb")))[-1]
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    ran = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and not name.startswith(("Executor", "Threadpool")):
                    ran[name] += 1
    return ran


def printed_text(notebook):
    """What a notebook's code cells printed, cell after cell, as a reader sees it.

    A kernel may send one `print` as several stream outputs (it flushes on a
    timer), so a cell's outputs are joined as they are, with nothing between them.
    """
    return "\n".join("".join(output.get("text", "") for output in cell.get("outputs", []))
                     for cell in notebook.cells if cell.cell_type == "code")


@pytest.fixture(scope="session", autouse=True)
def stop_servers_at_session_end():
    """No `electra-tf serve` process that a test started outlives the session.

    Session fixtures finish inside pytest's run, before the interpreter exits; the
    atexit handler of `serving_helpers.ServerProcess` alone does not run when
    pytest-xdist kills a worker that a stray non-daemon thread keeps from exiting.
    """
    yield
    helpers = sys.modules.get("serving_helpers")
    if helpers is not None:
        helpers.stop_all_servers()


def pytest_sessionfinish(session, exitstatus):
    """Under CI=true a skipped test fails the run: CI installs everything the tests need.

    A skip there means something `.ci/run` should have installed is missing (a browser, an
    extra), and the feature it guards went untested while the run looked green.
    """
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reasons = sorted({str(report.longrepr[-1]) if isinstance(report.longrepr, tuple)
                          else str(report.longrepr) for report in skipped})
        if reporter:
            reporter.write_line(
                f"CI=true: {len(skipped)} skipped test(s) fail the run; reasons: {reasons}",
                red=True)
        session.exitstatus = 1
