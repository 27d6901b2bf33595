"""Where the ELECTRA-Small pretraining step's time goes: TensorFlow's profiler, summed by op.

    python benchmarks/profile_pretrain_step.py [--precision float32|bfloat16] [--steps 3]

Builds the step `benchmarks/pretrain_throughput.py` times (batch 16 × 128,
generator 1/4, tied embeddings, AdamW), warms it up, then traces `--steps`
steps with `tf.profiler.experimental` and sums each op's time from the trace
(the XSpace protobuf the profiler writes; no TensorBoard plugin needed):
by op type (`_MklMatMul`, `Mul`, `RandomUniform`, …) and by part of the
model (generator / discriminator, forward / backward, and the layer it sits
in: dropout, layer_norm, qkv, …). Each op is counted once: the training
step's XLA kernels (one `PartitionedCall` each) as "XLA kernel", without
the events the profiler nests inside them (records written before this
counted `ExecuteAsyncOnStream` and the `Execute` inside it both, ~30 ms
of a float32 step twice). Ops run concurrently on the 2 inter-op
threads, so the op times add up to more than the step's wall time; the
shares are what to read. With `--inter-op-threads 1` the ops run one at a
time (each still on all intra-op threads), op times add up to about the wall
time, and the matmuls' op time gives the rate they actually run at inside
the step: the step's matmul FLOPs (as `pretrain_throughput.py` counts them)
over that time, printed as GFLOP/s against the 2048² peak.

    python benchmarks/profile_pretrain_step.py --inter-op-threads 1

`--batch-parts N --intra-op-threads 1 --inter-op-threads N` profiles the step
as `electra-tf pretrain --batch-parts N` runs it: one thread per op, the
batch's N parts at once. Op times then sum each core's busy time: over N ×
the wall time, they give how busy the cores were; the matmul rate is per
core, against the one-core peak (one chain of 2048² products on one thread).

    python benchmarks/profile_pretrain_step.py --batch-parts 2 --intra-op-threads 1 --inter-op-threads 2

In that mode, in float32, it also prints what #19's target, the step at 75%
of the machine's fp32 matmul peak, leaves for everything but the matmuls: the step's
core time at that share, less the matmuls' own time at the rate measured,
against the rest of the core time now (every other op and any idle time).

Writes results.json (the tables, the step's wall time, the machine) and
keeps the raw trace under --output-dir/trace (open it in TensorBoard's
profile tab).
"""

import argparse
import collections
import glob
import itertools
import os
import re
import time

import pretrain_throughput  # benchmarks/, next to this file

MATMUL_OPS = ("_MklMatMul", "_MklNativeFusedMatMul", "_MklBatchMatMulV2", "_MklFusedBatchMatMulV2",
              "_MklEinsum", "MatMul", "BatchMatMulV2", "Einsum")
PARTS = ("dropout", "layer_norm", "qkv", "attention_output", "intermediate", "output",
         "embeddings", "Gelu", "softmax", "MatMul", "Adam", "uniform")


def part_of(op_name):
    """'disc/bwd/dropout'-style label for an op's scoped name."""
    scope = op_name.split(":")[0]
    model = ("generator" if "generator" in scope else
             "discriminator" if "discriminator" in scope else "step")
    direction = "backward" if "gradient" in scope.lower() else "forward"
    part = next((p for p in PARTS if p.lower() in scope.lower()), "other")
    return f"{model}/{direction}/{part}"


XLA_KERNEL = "XLA kernel"  # the op type an async op running a compiled XLA program is counted as


def op_events(space):
    """(op name, op type, duration in ps) of each op the executor ran, once.

    An op is an event named "scope/op:OpType" on a `tf_Compute` line, or an
    async op's "ExecutorState::ProcessAsync::Start" (op name and type in its
    stats): the `tf.function(jit_compile=True)` kernels of the training step
    run that way, as a PartitionedCall whose XLA program shows as events
    nested inside it (CpuExecutable::ExecuteAsyncOnStream, ThunkExecutor::Execute,
    each fusion). Those are counted as one "XLA kernel" op and their nested
    events not again; nor is anything else nested in an op counted.
    """
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        names = {key: value.name for key, value in plane.stat_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):  # the executor's threads
                continue
            events = sorted(line.events, key=lambda e: (e.offset_ps, -e.duration_ps))
            open_until = -1  # the end of the op being counted: events before it are inside it
            for index, event in enumerate(events):
                name = plane.event_metadata[event.metadata_id].name
                if event.offset_ps < open_until or event.duration_ps == 0:
                    continue
                if name.endswith("ProcessAsync::Start"):
                    stats = {names.get(s.metadata_id): s for s in event.stats}
                    op_name = names.get(stats["name"].ref_value, "?") if "name" in stats else "?"
                    end = event.offset_ps + event.duration_ps
                    nested = (plane.event_metadata[e.metadata_id].name for e in itertools.takewhile(
                        lambda e: e.offset_ps < end, events[index + 1:]))
                    op_type = (XLA_KERNEL if any(n.startswith("CpuExecutable") for n in nested)
                               else names.get(stats["kernel_type"].ref_value, "?")
                               if "kernel_type" in stats else "?")
                elif ":" in name and not name.startswith(("Executor", "Threadpool", "end:")) \
                        and "::" not in name:
                    op_name, op_type = name.rsplit(":", 1)
                else:
                    continue  # the executor's own events (Process, regions), allocations
                open_until = event.offset_ps + event.duration_ps
                yield op_name, op_type, event.duration_ps


def op_times(trace_dir, steps):
    """{op type: ms per step}, {part: ms per step} summed from the profiler's XSpace file.

    Each op once (see `op_events`); the XLA kernels under "XLA kernel", and by
    part as ".../xla" (those without a model's scope are the custom gradients'
    backward kernels and the loss's, counted as "step/backward/xla").
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = sorted(glob.glob(os.path.join(trace_dir, "plugins", "profile", "*", "*.xplane.pb")))
    if not paths:
        raise ValueError(f"No profiler trace (*.xplane.pb) under {trace_dir}.")
    space = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as file:
        space.ParseFromString(file.read())
    by_type, by_part = collections.Counter(), collections.Counter()
    for op_name, op_type, duration_ps in op_events(space):
        milliseconds = duration_ps / 1e9 / steps
        by_type[op_type] += milliseconds
        by_part[xla_part_of(op_name) if op_type == XLA_KERNEL
                else part_of(re.sub(r"_\d+", "", op_name))] += milliseconds
    return by_type, by_part


def xla_part_of(op_name):
    """'discriminator/forward/xla'-style label for an XLA kernel's op; unscoped ones are gradients."""
    model = part_of(op_name).split("/")[0]
    return f"{model}/forward/xla" if model != "step" else "step/backward/xla"


TARGET_SHARE = 0.75  # #19: the fp32 step at 75% of the machine's matmul peak


def target_budget(matmul_gflop, matmul_ms, core_peak_gflops, cores, wall_ms):
    """What #19's 75% of peak leaves for everything but the matmuls, in ms of core time a step.

    With one thread per op the machine's peak is `cores` × one core's (the
    pretraining benchmark measures it as that many chains at once), so the
    step at 75% of it takes `matmul_gflop / (0.75 × core_peak)` of core time;
    the matmuls, at the rate the profile measured, take `matmul_ms` of that.

    >>> b = target_budget(150, 600, 250, cores=2, wall_ms=500)
    >>> b["target_core_ms"], b["other_ms_allowed"], b["other_ms_now"], b["step_share_of_peak"]
    (800.0, 200.0, 400, 0.6)
    """
    target_core_ms = 1000 * matmul_gflop / (TARGET_SHARE * core_peak_gflops)
    return {"cores": cores, "target_core_ms": target_core_ms,
            "other_ms_allowed": target_core_ms - matmul_ms,
            "other_ms_now": cores * wall_ms - matmul_ms,
            "step_share_of_peak": matmul_gflop / (wall_ms / 1000) / (cores * core_peak_gflops)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=pretrain_throughput.PRECISIONS, default="float32")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--inter-op-threads", type=int, default=None,
                        help="TensorFlow's inter-op threads (default: its own choice); 1: serial ops")
    parser.add_argument("--intra-op-threads", type=int, default=None,
                        help="TensorFlow's intra-op threads, one op's (default: its own choice)")
    parser.add_argument("--batch-parts", type=int, default=1,
                        help="the step's batch in this many parts (ElectraPretrainer(batch_parts=N))")
    parser.add_argument("--output-dir", default=None,
                        help="default: benchmarks/results/profile_pretrain_step_<precision>")
    args = parser.parse_args(argv)
    if args.steps < 1:
        raise ValueError(f"--steps must be ≥ 1; received {args.steps}.")
    for name in ("inter_op_threads", "intra_op_threads", "batch_parts"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be ≥ 1; received {getattr(args, name)}.")
    output_dir = args.output_dir or os.path.join(
        "benchmarks", "results", f"profile_pretrain_step_{args.precision}")

    import electra_tf  # sets TF_USE_LEGACY_KERAS before TensorFlow is imported
    import tensorflow as tf

    # Before the runtime starts, so before any op runs.
    electra_tf.set_tensorflow_threads(args.intra_op_threads or 0, args.inter_op_threads or 0)
    batch = pretrain_throughput.make_batch(16, 128)
    step = pretrain_throughput.electra_tf_step_function(
        batch, False, policy=pretrain_throughput.KERAS_POLICY[args.precision],
        batch_parts=args.batch_parts)
    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    wall_ms = 1000 * (time.perf_counter() - start) / args.steps
    trace_dir = os.path.join(output_dir, "trace")
    tf.profiler.experimental.start(trace_dir)
    try:
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        profiled_wall_ms = 1000 * (time.perf_counter() - start) / args.steps
    finally:
        tf.profiler.experimental.stop()
    by_type, by_part = op_times(trace_dir, args.steps)
    total = sum(by_type.values())
    matmul = sum(v for k, v in by_type.items() if k in MATMUL_OPS)
    matmul_gflop = pretrain_throughput.small_step_matmul_flops(16, 128) / 1e9
    matmul_gflops = matmul_gflop / (matmul / 1000)  # per second of matmul op time
    peak = pretrain_throughput.matmul_peak_gflops("tensorflow", args.precision)
    threads = args.inter_op_threads or "TensorFlow's default"
    intra = args.intra_op_threads or "TensorFlow's default"
    # One thread per op: op time is core time, so op time / (cores × the profiled steps' wall
    # time) is how busy the cores were.
    busy = (total / (profiled_wall_ms * (args.inter_op_threads or os.cpu_count()))
            if args.intra_op_threads == 1 else None)
    print(f"ELECTRA-Small pretraining step, {args.precision}, batch 16 × 128 in {args.batch_parts} "
          f"part(s), intra-op threads: {intra}, inter-op threads: {threads}: {wall_ms:.0f} ms wall "
          f"(unprofiled; {profiled_wall_ms:.0f} profiled); ops {total:.0f} ms summed over threads, matmuls {matmul / total:.0%} "
          f"({matmul:.0f} ms)" + (f"; the cores busy {busy:.0%} of the wall time" if busy else ""))
    print(f"the step's {matmul_gflop:.0f} GFLOP of matmuls over their op time: {matmul_gflops:.0f} "
          f"GFLOP/s, {matmul_gflops / peak:.0%} of TF's {peak:.0f} GFLOP/s 2048² peak"
          + ("" if args.inter_op_threads == 1 or args.intra_op_threads == 1 else
             " (ops overlap: read this with --inter-op-threads 1)")
          + (" (one thread per op: the rate per core, against the one-core peak)"
             if args.intra_op_threads == 1 else ""))
    budget = (target_budget(matmul_gflop, matmul, peak, args.inter_op_threads or os.cpu_count(),
                            wall_ms)
              if args.intra_op_threads == 1 and args.precision == "float32" else None)
    if budget:
        print(f"the step at {budget['step_share_of_peak']:.0%} of {budget['cores']} cores' peak; "
              f"#19's {TARGET_SHARE:.0%} would be {budget['target_core_ms']:.0f} ms of core time "
              f"({budget['target_core_ms'] / budget['cores']:.0f} ms wall): the matmuls at their "
              f"measured rate take {matmul:.0f} ms of it, leaving {budget['other_ms_allowed']:.0f} ms "
              f"for every other op and any idle time, against {budget['other_ms_now']:.0f} ms now")
    print("\nby op type (ms per step, share of op time):")
    for name, value in by_type.most_common(20):
        print(f"  {name:32s} {value:8.1f} {value / total:6.1%}")
    print("\nby part of the model:")
    for name, value in by_part.most_common(25):
        print(f"  {name:40s} {value:8.1f} {value / total:6.1%}")
    path = electra_tf.write_benchmark_results(output_dir, {
        "benchmark": "profile_pretrain_step", "args": vars(args), "wall_ms_per_step": wall_ms,
        "profiled_wall_ms_per_step": profiled_wall_ms, "busy_share_of_cores": busy,
        "op_ms_per_step_total": total, "matmul_share_of_op_time": matmul / total,
        "matmul_op_ms_per_step": matmul, "step_matmul_gflop": matmul_gflop,
        "matmul_gflops_over_op_time": matmul_gflops, "matmul_peak_gflops": peak,
        "matmul_share_of_peak_over_op_time": matmul_gflops / peak, "target_budget": budget,
        "op_ms_per_step_by_type": dict(by_type.most_common()),
        "op_ms_per_step_by_part": dict(by_part.most_common())})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
