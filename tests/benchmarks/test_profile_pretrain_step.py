"""benchmarks/profile_pretrain_step.py: each op of a trace counted once, XLA kernels included."""

import os

import pytest
from benchmark_scripts import load_benchmark as load


@pytest.fixture(scope="module")
def profile():
    return load("profile_pretrain_step")


def write_trace(directory, lines):
    """A profiler XSpace with one /host:CPU plane: {line name: [(name, start µs, duration µs, stats)]}.

    `stats` maps a stat's name to the name it refers to (as the profiler stores an
    async op's name and kernel type).
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    plane = space.planes.add(name="/host:CPU")
    metadata_ids, stat_ids = {}, {}

    def metadata_id(name):
        if name not in metadata_ids:
            metadata_ids[name] = len(metadata_ids) + 1
            plane.event_metadata[metadata_ids[name]].name = name
        return metadata_ids[name]

    def stat_id(name):
        if name not in stat_ids:
            stat_ids[name] = 1000 + len(stat_ids)
            plane.stat_metadata[stat_ids[name]].name = name
        return stat_ids[name]

    for line_name, events in lines.items():
        line = plane.lines.add(name=line_name)
        for name, start_us, duration_us, stats in events:
            event = line.events.add(metadata_id=metadata_id(name), offset_ps=start_us * 10**6,
                                    duration_ps=duration_us * 10**6)
            for key, value in stats.items():
                event.stats.add(metadata_id=stat_id(key), ref_value=stat_id(value))
    path = os.path.join(directory, "plugins", "profile", "run")
    os.makedirs(path)
    with open(os.path.join(path, "host.xplane.pb"), "wb") as file:
        file.write(space.SerializeToString())


XLA_LAUNCH = "ExecutorState::ProcessAsync::Start"


def test_an_xla_kernel_is_one_op_and_its_nested_events_are_not_counted_again(profile, tmp_path):
    scoped = {"name": "electra_discriminator/encoder/transformer_layer/PartitionedCall",
              "kernel_type": "PartitionedCall"}
    unscoped = {"name": "PartitionedCall_3", "kernel_type": "PartitionedCall"}
    write_trace(str(tmp_path), {
        "tf_Compute/1": [
            ("ExecutorState::Process", 0, 1000, {}),  # the executor's wrapper around ops
            ("electra_discriminator/encoder/transformer_layer/qkv/MatMul:_MklMatMul", 10, 300, {}),
            ("MemoryAllocation", 20, 0, {}),
            (XLA_LAUNCH, 400, 120, scoped),
            ("CpuExecutable::ExecuteAsyncOnStream", 405, 110, {}),
            ("ThunkExecutor::Execute", 410, 100, {}),
            ("select_add_fusion", 412, 40, {}),
            ("end: select_add_fusion", 452, 0, {}),
            ("ynn_fusion", 455, 50, {}),
            (XLA_LAUNCH, 600, 80, unscoped),
            ("CpuExecutable::ExecuteAsyncOnStream", 605, 70, {}),
            ("ThunkExecutor::Execute", 606, 60, {}),
        ],
        "tf_Compute/2": [
            ("AdamW/mul:Mul", 0, 30, {}),
            (XLA_LAUNCH, 50, 20, {"name": "IteratorGetNext", "kernel_type": "IteratorGetNext"}),
        ],
        "python": [("train_function", 0, 5000, {})],  # not an executor thread
    })
    by_type, by_part = profile.op_times(str(tmp_path), steps=2)
    assert dict(by_type) == pytest.approx(
        {"_MklMatMul": 0.15, "XLA kernel": 0.1, "Mul": 0.015, "IteratorGetNext": 0.01})
    assert by_part["discriminator/forward/xla"] == pytest.approx(0.06)
    assert by_part["step/backward/xla"] == pytest.approx(0.04)  # unscoped: a custom gradient's
    assert by_part["discriminator/forward/qkv"] == pytest.approx(0.15)
    assert sum(by_part.values()) == pytest.approx(sum(by_type.values()))


def test_the_budget_for_75_percent_of_peak(profile):
    # 144 GFLOP of matmuls at 250 GFLOP/s a core: 75% of 2 cores' peak is 768 ms of core
    # time; the matmuls take 640 of it, leaving 128 for the rest against 2 × 475 - 640 now.
    budget = profile.target_budget(144, 640, 250, cores=2, wall_ms=475)
    assert budget["target_core_ms"] == pytest.approx(768)
    assert budget["other_ms_allowed"] == pytest.approx(128)
    assert budget["other_ms_now"] == pytest.approx(310)
    assert budget["step_share_of_peak"] == pytest.approx(144 / 0.475 / 500)
