"""Does bfloat16 pretrain like float32? Loss curves of the same job in both precisions.

    python benchmarks/mixed_precision_curves.py [--steps 300] [--batch-size 16]

Runs `electra-tf pretrain`'s job (`run_pretraining`: ELECTRA-Small on the
packaged corpus, warmup then linear decay) three times for `--steps` steps:

* float32, seed 0 and float32, seed 1: the run-to-run noise of float32 (other
  initial weights, data order, masks, samples and dropout);
* bfloat16 (`mixed_precision="bfloat16"`), seed 0: the same batches, masks
  and initial weights as the first float32 run.

Each step's total loss (MLM + 50 · RTD, as the job logs it) is smoothed over
`--window` steps, and the curves are compared after the warmup: the
bfloat16 curve passes when its mean distance from float32 on the same seed is
no larger than the distance between the two float32 seeds. Each run is saved
as it finishes (`runs/<name>.json`), so an interrupted benchmark picks up
where it stopped. Writes `results.json` and `loss_curves.png` to
`--output-dir` (default `benchmarks/results/mixed_precision_curves`).

bfloat16 is fast only on CPUs with bfloat16 units (AVX512_BF16 or AMX: Intel
Cooper Lake, Sapphire Rapids and later, AMD Zen 4 and later) and on TPUs; the
numbers here do not depend on that, only the time does.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

RUNS = {  # name: (mixed_precision, seed)
    "float32_seed0": (None, 0),
    "float32_seed1": (None, 1),
    "bfloat16_seed0": ("bfloat16", 0),
}


def make_loss_recorder():
    """A Keras callback that keeps each step's loss (the pretrainers log every step's own
    values, not running means) and the seconds since training began."""
    import tf_keras as keras

    class LossRecorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses, self.seconds = [], []

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))
            self.seconds.append(time.perf_counter() - self.start)

    return LossRecorder()


def smooth(values, window):
    """Trailing moving average (shorter at the start).

    >>> smooth([1.0, 3.0, 5.0, 7.0], 2)
    [1.0, 2.0, 4.0, 6.0]
    """
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1): i + 1]
        out.append(sum(part) / len(part))
    return out


def mean_distance(a, b, start):
    """Mean |a - b| from index `start` on."""
    pairs = list(zip(a, b))[start:]
    if not pairs:
        raise ValueError(f"No steps to compare from step {start}; received curves of {len(a)} steps.")
    return sum(abs(x - y) for x, y in pairs) / len(pairs)


def one_run(name, args, runs_dir):
    """Trains one run in this process and writes runs/<name>.json."""
    import electra_tf

    precision, seed = RUNS[name]
    recorder = make_loss_recorder()
    with tempfile.TemporaryDirectory() as output_dir:
        config = electra_tf.PretrainingConfig(
            corpus=os.path.join(electra_tf.PACKAGED_DATA_DIR, "*.txt.gz"),
            output_dir=output_dir, preset="small", steps=args.steps, batch_size=args.batch_size,
            max_seq_length=args.max_seq_length, seed=seed, mixed_precision=precision,
            checkpoint_every=args.steps, log_every=args.steps, progress=False)
        electra_tf.run_pretraining(config, callbacks=[recorder])
    record = {"name": name, "mixed_precision": precision, "seed": seed,
              "loss": recorder.losses,
              "seconds_per_step": recorder.seconds[-1] / len(recorder.seconds)}
    path = os.path.join(runs_dir, f"{name}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(record, f)
    os.replace(path + ".tmp", path)


def plot(curves, png_path, warmup):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, values in curves.items():
        axis.plot(range(1, len(values) + 1), values, label=name,
                  linestyle="--" if "bfloat16" in name else "-")
    axis.axvline(warmup, color="grey", linewidth=0.8)
    axis.set_xlabel("step")
    axis.set_ylabel("loss (MLM + 50·RTD), smoothed")
    axis.set_title("ELECTRA-Small pretraining: bfloat16 vs float32")
    axis.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--window", type=int, default=25, help="smoothing window (steps)")
    parser.add_argument("--output-dir", default=os.path.join(
        "benchmarks", "results", "mixed_precision_curves"))
    parser.add_argument("--one-run", choices=list(RUNS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 2 * args.window:
        raise ValueError(f"--steps must be at least twice --window ({2 * args.window}); "
                         f"received --steps {args.steps}.")
    runs_dir = os.path.join(args.output_dir, "runs")
    os.makedirs(runs_dir, exist_ok=True)
    if args.one_run:
        return one_run(args.one_run, args, runs_dir)

    for name in RUNS:  # each in its own process: a clean global precision policy
        if os.path.exists(os.path.join(runs_dir, f"{name}.json")):
            print(f"{name}: done before, kept")
            continue
        print(f"{name}: training {args.steps} steps ...", flush=True)
        subprocess.run([sys.executable, __file__, "--one-run", name, "--steps", str(args.steps),
                        "--batch-size", str(args.batch_size), "--max-seq-length",
                        str(args.max_seq_length), "--window", str(args.window),
                        "--output-dir", args.output_dir], check=True)
    records = {}
    for name in RUNS:
        with open(os.path.join(runs_dir, f"{name}.json")) as f:
            records[name] = json.load(f)
        if len(records[name]["loss"]) != args.steps:
            raise ValueError(f"{name} has {len(records[name]['loss'])} steps, not --steps "
                             f"{args.steps}: delete {runs_dir} to start again.")
    curves = {name: smooth(r["loss"], args.window) for name, r in records.items()}
    warmup = max(args.steps // 10, args.window)  # the job's 10% warmup
    noise = mean_distance(curves["float32_seed0"], curves["float32_seed1"], warmup)
    gap = mean_distance(curves["bfloat16_seed0"], curves["float32_seed0"], warmup)
    final = {name: sum(r["loss"][-args.window:]) / args.window for name, r in records.items()}
    print(f"\nmean |smoothed loss difference| after step {warmup}:")
    print(f"  float32 seed 0 vs float32 seed 1 (noise): {noise:.4f}")
    print(f"  bfloat16 seed 0 vs float32 seed 0:        {gap:.4f}  → "
          f"{'within' if gap <= noise else 'OUTSIDE'} float32's run-to-run noise")
    for name, value in final.items():
        print(f"  final {args.window}-step mean loss, {name}: {value:.3f}")
    plot(curves, os.path.join(args.output_dir, "loss_curves.png"), warmup)
    import electra_tf

    path = electra_tf.write_benchmark_results(args.output_dir, {
        "benchmark": "mixed_precision_curves", "args": vars(args),
        "compared_from_step": warmup, "float32_seed_noise": noise,
        "bfloat16_vs_float32_same_seed": gap, "bfloat16_within_noise": gap <= noise,
        "final_mean_loss": final,
        # Informational only (one run each, on a machine that may have been busy): the step
        # speeds are measured by pretrain_throughput.py.
        "seconds_per_step": {name: r["seconds_per_step"] for name, r in records.items()}})
    print(f"wrote {path} and loss_curves.png")


if __name__ == "__main__":
    main()
