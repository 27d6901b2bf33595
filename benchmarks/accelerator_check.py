"""Accelerator check: ELECTRA-Small on a GPU, against transformers/torch AMP on the same GPU.

    python benchmarks/accelerator_check.py [--steps 300] [--batch-size 128] [--max-seq-length 128]
    python benchmarks/accelerator_check.py --cpu-smoke --output-dir /tmp/check   # the code path, on CPU

One short script for the day a GPU machine is lent (about 5 minutes on one
modern GPU). In order, it measures and checks:

1. pretraining throughput, batch 128 × seq 128 per GPU (the paper's Small
   batch), generator 1/4 wide, tied embeddings: ours in float32, in
   mixed_float16 and in mixed_float16 with XLA, against the transformers/torch
   loop doing the same work (benchmarks/pretrain_throughput.py) in float32 and
   with AMP (autocast float16 + GradScaler). Tokens/s and the ratio. (The
   --cpu-smoke run leaves out the XLA row, whose compile alone takes a minute
   on a CPU, and uses torch's bfloat16 autocast.)
2. numerical health: `run_pretraining` for `--steps` steps (default 300) on the
   packaged corpus in mixed_float16; every logged loss must be finite.
3. MirroredStrategy over all visible GPUs: tokens/s with the global batch
   (batch per GPU × GPUs) and the scaling efficiency against one GPU.
4. a GLUE-sized fine-tune: `run_finetuning` on an SST-2-sized training file
   (67,349 rows, the packaged reviews repeated) for one epoch in
   mixed_float16, from the discriminator of step 2; examples/s and a finite loss.

Writes `OUTPUT/results.json` (default benchmarks/results/accelerator_check)
with the machine (CPU, GPUs, library versions) and every figure, and exits 1
if a health check fails. On a machine without a GPU it says so and exits 0:
nothing is measured there (`--cpu-smoke` runs every step on the CPU with a
tiny model, to check that the script itself works; CI does that).
"""

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pretrain_throughput  # noqa: E402  (benchmarks/, next to this file)

SST2_TRAIN_ROWS = 67_349


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="pretraining steps of the health check")
    parser.add_argument("--timed-steps", type=int, default=20, help="steps timed per throughput figure")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128, help="pretraining batch per GPU")
    parser.add_argument("--max-seq-length", "--seq-length", dest="max_seq_length", type=int,
                        default=128, help="packed input length (--seq-length: its earlier name)")
    parser.add_argument("--finetune-rows", type=int, default=SST2_TRAIN_ROWS)
    parser.add_argument("--output-dir", "--output", dest="output_dir",  # --output: its earlier name
                        default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             "results", "accelerator_check"))
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="no GPU needed: every step on the CPU with the tiny preset and few steps")
    args = parser.parse_args(argv)
    for name in ("steps", "timed_steps", "batch_size", "max_seq_length", "finetune_rows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1; received {getattr(args, name)}.")
    if args.cpu_smoke:
        args.steps, args.timed_steps, args.warmup = min(args.steps, 12), min(args.timed_steps, 2), 1
        args.batch_size, args.max_seq_length = min(args.batch_size, 4), min(args.max_seq_length, 32)
        args.finetune_rows = min(args.finetune_rows, 64)
    return args


def gpu_names(tf):
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return names


def pretraining_throughput(args, preset, num_gpus, results):
    """Step 1: ours (fp32, mixed_float16, + XLA) and torch (fp32, AMP), tokens/s on one device."""
    import torch

    device = "cpu" if args.cpu_smoke else "cuda"
    amp_dtype = torch.bfloat16 if args.cpu_smoke else torch.float16  # fp16 autocast is a GPU thing
    batch = pretrain_throughput.make_batch(args.batch_size, args.max_seq_length)
    tokens = args.batch_size * args.max_seq_length
    timing = dict(steps=args.timed_steps, warmup=args.warmup)
    seconds = {
        "electra_tf float32": pretrain_throughput.electra_tf_step_time(
            batch, jit_compile=False, preset=preset, **timing),
        "electra_tf mixed_float16": pretrain_throughput.electra_tf_step_time(
            batch, jit_compile=False, preset=preset, policy="mixed_float16", **timing),
        "torch float32": pretrain_throughput.torch_step_time(
            batch, masked_positions_only=True, preset=preset, device=device, **timing),
        f"torch AMP ({str(amp_dtype).split('.')[-1]})": pretrain_throughput.torch_step_time(
            batch, masked_positions_only=True, preset=preset, device=device, autocast_dtype=amp_dtype,
            **timing),
    }
    if not args.cpu_smoke:  # XLA's compile of the step takes a minute on a CPU: GPU runs only
        seconds["electra_tf mixed_float16 + XLA"] = pretrain_throughput.electra_tf_step_time(
            batch, jit_compile=True, preset=preset, policy="mixed_float16", **timing)
    rows = {name: {"ms_per_step": 1000 * s, "tokens_per_s": tokens / s} for name, s in seconds.items()}
    best_ours = min(v for k, v in seconds.items() if k.startswith("electra_tf mixed"))
    best_torch = min(v for k, v in seconds.items() if k.startswith("torch AMP"))
    results["pretraining_throughput"] = {
        "batch_size": args.batch_size, "seq_length": args.max_seq_length, "rows": rows,
        "ratio_ours_mixed_vs_torch_amp": best_torch / best_ours,
    }
    print(f"\n1. Pretraining step, batch {args.batch_size} × seq {args.max_seq_length}, one device")
    for name, row in rows.items():
        print(f"   {name:34s} {row['ms_per_step']:9.1f} ms {row['tokens_per_s']:11,.0f} tokens/s")
    print(f"   ratio ours (best mixed) / torch AMP: {best_torch / best_ours:.2f}×")


def pretraining_health(args, preset, scratch, results):
    """Step 2: `run_pretraining` in mixed_float16 for `args.steps` steps; every loss finite."""
    from electra_tf import PretrainingConfig, packaged_corpus, run_pretraining

    output_dir = os.path.join(scratch, "pretrain")
    config = PretrainingConfig(
        corpus=packaged_corpus("train"), output_dir=output_dir, preset=preset, generator_width=0.25,
        max_seq_length=args.max_seq_length, batch_size=args.batch_size, steps=args.steps,
        learning_rate=5e-4, mixed_precision="float16", log_every=1, checkpoint_every=args.steps,
        progress=False,
    )
    start = time.perf_counter()
    run_pretraining(config)
    elapsed = time.perf_counter() - start
    with open(os.path.join(output_dir, "history.csv")) as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    finite = bool(losses) and all(math.isfinite(loss) for loss in losses)
    results["pretraining_health"] = {
        "steps": args.steps, "policy": "mixed_float16", "logged_losses": len(losses),
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "all_finite": finite, "wall_seconds": elapsed,
    }
    print(f"\n2. run_pretraining, mixed_float16, {args.steps} steps on the packaged corpus: loss "
          f"{losses[0]:.3f} → {losses[-1]:.3f}, {'all finite' if finite else 'NaN/Inf FOUND'} "
          f"({elapsed:.0f} s)")
    return os.path.join(output_dir, "discriminator"), finite


def mirrored_scaling(args, preset, results):
    """Step 3: MirroredStrategy over every visible GPU (over the logical CPUs in a smoke run)."""
    import tensorflow as tf

    devices = None
    if args.cpu_smoke:
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    replicas = strategy.num_replicas_in_sync
    global_batch = pretrain_throughput.make_batch(args.batch_size * replicas, args.max_seq_length)
    seconds = pretrain_throughput.electra_tf_step_time(
        global_batch, args.timed_steps, args.warmup, jit_compile=False, preset=preset,
        policy="mixed_float16", strategy=strategy)
    one = results["pretraining_throughput"]["rows"]["electra_tf mixed_float16"]["tokens_per_s"]
    tokens_per_s = args.batch_size * replicas * args.max_seq_length / seconds
    results["mirrored"] = {"replicas": replicas, "global_batch": args.batch_size * replicas,
                           "tokens_per_s": tokens_per_s, "scaling_efficiency": tokens_per_s / (one * replicas)}
    print(f"\n3. MirroredStrategy, {replicas} replicas, global batch {args.batch_size * replicas}: "
          f"{tokens_per_s:,.0f} tokens/s, scaling efficiency {tokens_per_s / (one * replicas):.0%}")


def glue_sized_finetune(args, encoder_dir, scratch, results):
    """Step 4: one epoch of `run_finetuning` on SST-2-many rows (in memory), mixed_float16."""
    from electra_tf import FinetuningConfig, packaged_sentiment, read_classification_file, run_finetuning

    reviews, _ = read_classification_file(packaged_sentiment("train"), num_classes=2)
    rows = [i % len(reviews["text"]) for i in range(args.finetune_rows)]  # the reviews, repeated
    train = {"text": [reviews["text"][i] for i in rows], "label": [reviews["label"][i] for i in rows],
             "num_classes": 2}
    config = FinetuningConfig(
        encoder=encoder_dir, train=f"packaged reviews × {args.finetune_rows} rows",
        dev=packaged_sentiment("dev"),
        output_dir=os.path.join(scratch, "finetune"), max_seq_length=args.max_seq_length, batch_size=32,
        epochs=1, learning_rate=3e-4, mixed_precision="float16", progress=False,
    )
    summary = run_finetuning(config, train_examples=train)
    elapsed = summary["train_seconds"]
    losses = [float(v) for v in summary.get("history", {}).get("loss", [])]
    finite = all(math.isfinite(loss) for loss in losses)
    results["glue_sized_finetune"] = {
        "train_rows": args.finetune_rows, "epochs": 1, "policy": "mixed_float16",
        "examples_per_s": args.finetune_rows / elapsed, "wall_seconds": elapsed,
        "losses": losses, "all_finite": finite, "dev": summary.get("dev"),
    }
    print(f"\n4. Fine-tune, {args.finetune_rows:,} rows × 1 epoch, mixed_float16: "
          f"{args.finetune_rows / elapsed:,.0f} examples/s "
          f"{'loss finite' if finite else 'NaN/Inf FOUND'}")
    return finite


def main(argv=None):
    args = parse_args(argv)
    import tensorflow as tf

    from electra_tf import describe_machine

    gpus = gpu_names(tf)
    if not gpus and not args.cpu_smoke:
        print("No GPU visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty): "
              "this check needs one, so nothing was measured. Run it on a GPU machine, or pass "
              "--cpu-smoke to exercise the script on the CPU.")
        return 0
    preset = "tiny" if args.cpu_smoke else "small_paper"
    results = {"machine": {**describe_machine(), "gpus": gpus}, "preset": preset,
               "cpu_smoke": args.cpu_smoke}
    print(f"Accelerator check on {', '.join(gpus) or 'CPU (smoke run)'}; preset {preset}")
    with tempfile.TemporaryDirectory() as scratch:
        pretraining_throughput(args, preset, len(gpus), results)
        encoder_dir, pretraining_finite = pretraining_health(args, preset, scratch, results)
        mirrored_scaling(args, preset, results)
        finetune_finite = glue_sized_finetune(args, encoder_dir, scratch, results)
    results["healthy"] = pretraining_finite and finetune_finite
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "results.json")
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
    os.replace(path + ".tmp", path)
    print(f"\nwrote {path}; health checks {'passed' if results['healthy'] else 'FAILED'}")
    return 0 if results["healthy"] else 1


if __name__ == "__main__":
    sys.exit(main())
