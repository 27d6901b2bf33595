"""Structured pruning that pays: the MiniLM sentiment classifier with heads and FFN neurons removed.

Each of the 6 layers keeps --num-heads of its 12 heads (default 8: a third
removed) and --intermediate-size of its 1,536 feed-forward neurons (default
768: half), ranked by --importance ("taylor": Michel et al. 2019's gradient
scores on --importance-batches training batches; "magnitude": weight norms).
The smaller model then learns from the unpruned classifier's soft targets and
the labels (`ElectraDistiller`) for --distill-steps batches at each of
--learning-rates; the rate that scores best on the last --validation
training reviews (which distillation does not train on) is kept, and only
that model is scored on the dev reviews (movie_dev.tsv, 1,068 reviews at
128 tokens).

Speed: the unpruned and the pruned classifier as end-to-end SavedModels
(strings in) and as TFLite fp32 files, at batch 1 and batch 32 × 128 tokens,
2 threads, the two models taking turns (--latency-rounds) so that both see
the same background load; each turn starts with untimed calls
(`WARMUP_CALLS`), so that each model is timed in its steady state, as a
server running it alone would see it. The targets (issue #19): >= 1.6x as
fast in all four, <= 1 point below the unpruned model's dev accuracy.

The SavedModels are timed under each of `SAVED_MODEL_SETTINGS`, each in a
process of its own (TensorFlow sizes its thread pools once, before its first
op): TensorFlow's default threads (every op split over both cores); one
thread for everything; and one thread per op with a batch run as two parts
at once (`export_task_saved_model(..., batch_parts=2)`, served by
`electra-tf serve --intra-op-threads 1 --inter-op-threads 2`). The
"saved_model" figures take each model's fastest setting, as a deployment
tuned for it would; "saved_model_default_threads" are TensorFlow's defaults.

What pruning cannot remove: a third model takes turns with the two, the
classifier pruned to one head and one neuron per layer (the "floor"): the
tokenizer, embeddings, LayerNorms, the per-call cost of every kernel, all
that does not shrink with width. Each format and batch size then reports the
floor's share of the unpruned model's time and the speed-up to expect were
the time above the floor to shrink in proportion to the prunable weights kept
(`proportional_speedup`): with the floor at 30% of the time, keeping 54% of
those weights gives 1.47x, not 1.84x. Not a hard bound: narrower matmuls can
run more or less efficiently than wide ones.

    python benchmarks/structured_pruning.py --classifier benchmarks/results/finetune_sentiment/model --seed 0

Repeat with other --seed values, then

    python benchmarks/structured_pruning.py --median-of RUN_DIR RUN_DIR RUN_DIR --output-dir DIR

writes the median of each figure (and each run's) to DIR/results.json.

    python benchmarks/structured_pruning.py --retime RUN_DIR RUN_DIR RUN_DIR --output-dir DIR

measures speed again, nothing else: the --classifier and each run's
pruned_model/, exported by the code checked out now (SavedModel and TFLite,
batch 1 and 32, as above), and writes each run's and the median speed-ups to
DIR/results.json with the commit timed: a speed change in the library, or a
quieter machine, measured on the same models.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import electra_tf  # sets TF_USE_LEGACY_KERAS before TensorFlow is imported
import tensorflow as tf
from compression import DATA_DIR, DEFAULT_CLASSIFIER, THREADS, ensure_classifier, pack
from tflite_int8_profile import interleaved_latency

from electra_tf import (
    ElectraDistiller,
    ElectraTokenizer,
    accuracy_from_logits,
    create_finetuning_optimizer,
    export_task_saved_model,
    export_tflite,
    head_and_neuron_importance,
    make_classification_dataset,
    prune_heads_and_neurons,
    read_classification_file,
)

MODELS = ("unpruned", "pruned", "floor")
# Untimed calls that start each model's turn, by batch size. A server runs one model; here
# three take turns, and right after the others ran a model's weights are out of the CPU
# caches: at batch 1 (SavedModel, Xeon with AMX) its first ~10 calls ran up to 30% slower
# than its steady state (pruned 9.0 ms falling to 7.0, unpruned 12.4 to 10.0), which
# timing 3 calls a turn (until 2026-12-05) counted. At batch 32 the turns made no difference.
WARMUP_CALLS = {1: 10, 32: 2}
# How the SavedModels are timed, each setting in a fresh process: TensorFlow's thread pools
# (0: its default, all cores) and the parts a batch runs in (`batch_parts`). On 2 cores
# (Xeon with AMX, 2026-12-05) one thread ran the batch-1 calls ~10% (unpruned) to 30%
# (pruned) faster than two: with two, every op wakes a second thread and waits for it; and
# one thread per op with a batch of 32 in two parts at once ~10% faster than every op on two.
SAVED_MODEL_SETTINGS = {
    "default_threads": {"intra_op_threads": 0, "inter_op_threads": 0, "batch_parts": 1},
    "one_thread": {"intra_op_threads": 1, "inter_op_threads": 1, "batch_parts": 1},
    "two_parts": {"intra_op_threads": 1, "inter_op_threads": THREADS, "batch_parts": THREADS},
}


def floor_model(classifier):
    """`classifier` pruned to one head and one neuron per layer: the time no pruning removes."""
    return prune_heads_and_neurons(classifier, num_heads=1, intermediate_size=1)


def proportional_speedup(ms, parameters):
    """The speed-up of pruning to `parameters["pruned"]` were time to scale with weights.

    `ms` and `parameters` hold "unpruned", "pruned" and "floor" (the floor
    model's time and size). The floor's time stays; the rest shrinks in
    proportion to the prunable weights left:
    unpruned / (floor + (unpruned - floor) * kept), where kept is
    (pruned - floor) / (unpruned - floor) in parameters.

    >>> proportional_speedup({"unpruned": 10.0, "pruned": 7.0, "floor": 4.0},
    ...                      {"unpruned": 300, "pruned": 200, "floor": 100})
    1.4285714285714286
    """
    kept = ((parameters["pruned"] - parameters["floor"])
            / (parameters["unpruned"] - parameters["floor"]))
    return ms["unpruned"] / (ms["floor"] + (ms["unpruned"] - ms["floor"]) * kept)


def speed_summary(ms, parameters):
    """{"speedup", "floor_share", "proportional_speedup"} of one format and batch size."""
    return {"speedup": ms["unpruned"] / ms["pruned"], "floor_share": ms["floor"] / ms["unpruned"],
            "proportional_speedup": proportional_speedup(ms, parameters)}


def speed_figures(speed, parameters):
    """{"<format>_batch_<n>_speedup" | "_floor_share" | "_proportional_speedup": value}."""
    return {f"{fmt}_{batch}_{figure}": value
            for fmt, batches in speed.items() for batch, ms in batches.items()
            for figure, value in speed_summary(ms, parameters).items()}


def print_speed(speed, parameters):
    for fmt, batches in speed.items():
        for batch, ms in batches.items():
            summary = speed_summary(ms, parameters)
            print(f"{fmt:27} {batch:8}: {ms['unpruned']:8.1f} ms -> {ms['pruned']:8.1f} ms = "
                  f"{summary['speedup']:.2f}x as fast (target >= 1.6); floor "
                  f"{ms['floor']:.1f} ms ({summary['floor_share']:.0%} of unpruned), "
                  f"proportional {summary['proportional_speedup']:.2f}x", flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default=DEFAULT_CLASSIFIER,
                        help="ElectraClassifier directory (save_pretrained)")
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--output-dir",
                        default=os.path.join("benchmarks", "results", "structured_pruning"))
    parser.add_argument("--num-heads", type=int, default=8, help="heads each layer keeps")
    parser.add_argument("--intermediate-size", type=int, default=768,
                        help="feed-forward neurons each layer keeps")
    parser.add_argument("--importance", choices=["taylor", "magnitude"], default="taylor")
    parser.add_argument("--importance-batches", type=int, default=32)
    parser.add_argument("--distill-steps", type=int, default=250)
    parser.add_argument("--learning-rates", default="1e-4,2e-4",
                        help="comma-separated; the best on the validation reviews is kept")
    parser.add_argument("--alpha", type=float, default=0.5,
                        help="weight of the unpruned model's soft targets (1-alpha: labels)")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--validation", type=int, default=400,
                        help="training reviews held out to choose the learning rate")
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--train-seq-length", type=int, default=64,
                        help="tokens per example while distilling (reviews are short)")
    parser.add_argument("--train-batch-size", type=int, default=32)
    parser.add_argument("--latency-rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dev-limit", type=int, default=None,
                        help="score the first N dev reviews only (quick trials)")
    parser.add_argument("--median-of", nargs="+", metavar="RUN_DIR", default=None,
                        help="measure nothing: write the median of these runs' figures")
    parser.add_argument("--retime", nargs="+", metavar="RUN_DIR", default=None,
                        help="measure nothing but the speed of --classifier and these runs' "
                             "pruned_model/, with the code checked out now")
    return parser.parse_args()


def interleaved_calls(functions, rounds, calls=3, warmup=0):
    """Median ms of each function, the functions taking turns (as `interleaved_latency`).

    Each turn first makes `warmup` calls untimed, then times `calls`.
    """
    for function in functions:
        function()  # warm-up: tracing, weight packing
    times = [[] for _ in functions]
    for _ in range(rounds):
        for function, record in zip(functions, times):
            for _ in range(warmup):
                function()
            for _ in range(calls):
                start = time.perf_counter()
                function()
                record.append(time.perf_counter() - start)
    return [1e3 * float(np.median(record)) for record in times]


def time_saved_models(setting, paths, texts, rounds):
    """Times the SavedModels at `paths` ({model: directory}) under `setting`; run it in a fresh
    process (`in_new_process`), whose TensorFlow has not started yet.

    Returns {"batch_1"|"batch_32": {model: ms}, "threads": [intra, inter] as set}.
    """
    electra_tf.set_tensorflow_threads(setting["intra_op_threads"], setting["inter_op_threads"])
    threading = tf.config.threading
    serves = {name: tf.saved_model.load(path).signatures["serving_default"]
              for name, path in paths.items()}
    result = {"threads": [threading.get_intra_op_parallelism_threads(),
                          threading.get_inter_op_parallelism_threads()]}
    for batch in (1, 32):
        strings = tf.constant(texts[:batch])
        times = interleaved_calls([lambda s=serves[n]: s(text=strings) for n in MODELS],
                                  rounds, warmup=WARMUP_CALLS[batch])
        result[f"batch_{batch}"] = dict(zip(MODELS, times))
    return result


def in_new_process(function_name, *arguments, script=__file__):
    """`function_name(*arguments)` of `script` (default: this one) in a new Python process,
    whose TensorFlow starts afresh; arguments and result travel as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs, result = os.path.join(tmp, "arguments.json"), os.path.join(tmp, "result.json")
        with open(inputs, "w") as f:
            json.dump(arguments, f)
        code = ("import json, runpy, sys; sys.path.insert(0, sys.argv[1]); "
                "script = runpy.run_path(sys.argv[2]); "
                "result = script[sys.argv[3]](*json.load(open(sys.argv[4]))); "
                "json.dump(result, open(sys.argv[5], 'w'))")
        script = os.path.abspath(script)
        subprocess.run([sys.executable, "-c", code, os.path.dirname(script), script,
                        function_name, inputs, result], check=True)
        with open(result) as f:
            return json.load(f)


def fastest_setting(timings):
    """{setting: {batch: {model: ms}}} -> ({batch: {model: fastest ms}}, {batch: {model: setting}}).

    >>> fastest_setting({"a": {"batch_1": {"x": 2.0, "y": 5.0}},
    ...                  "b": {"batch_1": {"x": 3.0, "y": 4.0}}})
    ({'batch_1': {'x': 2.0, 'y': 4.0}}, {'batch_1': {'x': 'a', 'y': 'b'}})
    """
    batches = next(iter(timings.values()))
    chosen = {batch: {model: min(timings, key=lambda s: timings[s][batch][model])
                      for model in batches[batch]} for batch in batches}
    fastest = {batch: {model: timings[setting][batch][model]
                       for model, setting in models.items()} for batch, models in chosen.items()}
    return fastest, chosen


def measure_speed(models, tokenizer, texts, args, out, export=MODELS):
    """Latency of `MODELS` in ms, and how the SavedModels were timed.

    The models named in `export` are exported first (SavedModels and TFLite
    files under `out`); the others are timed from the files an earlier call
    wrote there: `--retime` exports the unpruned and floor models, which
    every run shares, once, and each run's pruned model.

    Returns (speed, saved_model_timings): speed is {"saved_model" (each model
    in its fastest setting) | "saved_model_default_threads" | "tflite":
    {"batch_1"|"batch_32": {model: ms}}}; saved_model_timings is {setting:
    {"batch_1"|"batch_32": {model: ms}, "threads": [intra, inter],
    "fastest": ...}} for each of `SAVED_MODEL_SETTINGS`.
    """
    speed = {"saved_model": {}, "saved_model_default_threads": {}, "tflite": {}}
    for parts in sorted({setting["batch_parts"] for setting in SAVED_MODEL_SETTINGS.values()}):
        for name in export:
            export_task_saved_model(models[name], out(saved_model_name(name, parts)), tokenizer,
                                    max_seq_length=args.seq_length, overwrite=True,
                                    batch_parts=parts)
    timings = {}
    for key, setting in SAVED_MODEL_SETTINGS.items():
        paths = {name: out(saved_model_name(name, setting["batch_parts"])) for name in MODELS}
        timings[key] = in_new_process("time_saved_models", setting, paths, list(texts[:32]),
                                      args.latency_rounds)
        print(f"SavedModels, {key} {setting}: "
              + "; ".join(f"{batch} " + ", ".join(f"{n} {timings[key][batch][n]:.1f} ms"
                                                   for n in MODELS)
                          for batch in ("batch_1", "batch_32")), flush=True)
    batch_timings = {key: {b: timing[b] for b in ("batch_1", "batch_32")}
                     for key, timing in timings.items()}
    speed["saved_model"], chosen = fastest_setting(batch_timings)
    speed["saved_model_default_threads"] = batch_timings["default_threads"]
    timings["fastest"] = chosen
    for batch in (1, 32):
        warmup = WARMUP_CALLS[batch]
        features = {k: v[:batch].astype(np.int32)
                    for k, v in pack(tokenizer, texts[:batch], args.seq_length).items()}
        paths = [out(f"{name}_batch{batch}.tflite") for name in MODELS]
        for name, path in zip(MODELS, paths):
            if name in export:
                export_tflite(models[name], path, max_seq_length=args.seq_length,
                              batch_size=batch, overwrite=True)
        times = interleaved_latency(paths, features, THREADS, args.latency_rounds,
                                    warmup=warmup)
        speed["tflite"][f"batch_{batch}"] = {n: median for n, (median, _) in zip(MODELS, times)}
    return speed, timings


def saved_model_name(model, batch_parts):
    """The directory a model's SavedModel is exported to, by its `batch_parts`."""
    return f"{model}_saved_model" + (f"_{batch_parts}_parts" if batch_parts > 1 else "")


def main(args):
    os.makedirs(args.output_dir, exist_ok=True)
    out = lambda name: os.path.join(args.output_dir, name)  # noqa: E731
    start = time.perf_counter()
    tf.keras.utils.set_random_seed(args.seed)
    teacher = ensure_classifier(args.classifier, args.data_dir)
    tokenizer = ElectraTokenizer()
    dev, _ = read_classification_file(os.path.join(args.data_dir, "movie_dev.tsv"), num_classes=2)
    train, _ = read_classification_file(os.path.join(args.data_dir, "movie_train.tsv"),
                                        num_classes=2)
    texts, labels = dev["text"][:args.dev_limit], np.array(dev["label"][:args.dev_limit])
    dev_features = pack(tokenizer, texts, args.seq_length)
    held = args.validation
    fit = {k: v[:-held] if isinstance(v, list) else v for k, v in train.items()}
    validation = {k: v[-held:] if isinstance(v, list) else v for k, v in train.items()}
    validation_features = pack(tokenizer, validation["text"], args.train_seq_length)
    fit_data = make_classification_dataset(fit, tokenizer, args.train_seq_length,
                                           args.train_batch_size, shuffle=True,
                                           seed=args.seed).repeat()

    def accuracy(model, features, gold):
        return accuracy_from_logits(np.asarray(gold), model.predict(features, batch_size=64,
                                                                    verbose=0))

    figures = {"unpruned_dev_accuracy": accuracy(teacher, dev_features, labels)}
    t = time.perf_counter()
    scores = head_and_neuron_importance(teacher, fit_data, batches=args.importance_batches,
                                        method=args.importance)
    notes = {"importance_seconds": round(time.perf_counter() - t, 1),
             "head_importance": scores["heads"].tolist()}
    pruned = prune_heads_and_neurons(teacher, args.num_heads, args.intermediate_size, scores)
    notes["parameters"] = {"unpruned": int(teacher.count_params()),
                           "pruned": int(pruned.count_params())}
    figures["pruned_before_distillation_dev_accuracy"] = accuracy(pruned, dev_features, labels)
    print(f"pruned to {args.num_heads} heads and {args.intermediate_size} neurons per layer: "
          f"{notes['parameters']['unpruned']:,} -> {notes['parameters']['pruned']:,} parameters; "
          f"dev accuracy before distillation "
          f"{figures['pruned_before_distillation_dev_accuracy']:.4f}", flush=True)

    choices, best = {}, None
    for rate in [float(r) for r in args.learning_rates.split(",")]:
        t = time.perf_counter()
        student = prune_heads_and_neurons(teacher, args.num_heads, args.intermediate_size, scores)
        distiller = ElectraDistiller(teacher, student, temperature=args.temperature,
                                     alpha=args.alpha)
        distiller.compile(optimizer=create_finetuning_optimizer(
            rate, args.distill_steps, num_layers=student.encoder.num_layers))
        distiller.fit(fit_data, epochs=1, steps_per_epoch=args.distill_steps, verbose=2)
        score = accuracy(student, validation_features, validation["label"])
        choices[f"{rate:g}"] = {"validation_accuracy": score,
                                "train_seconds": round(time.perf_counter() - t, 1)}
        print(f"  learning rate {rate:g}: validation accuracy {score:.4f}", flush=True)
        if best is None or score > choices[best[0]]["validation_accuracy"]:
            best = (f"{rate:g}", student)
    notes["learning_rates"], notes["chosen_learning_rate"] = choices, best[0]
    student = best[1]
    student.save_pretrained(out("pruned_model"), overwrite=True)
    figures["pruned_dev_accuracy"] = accuracy(student, dev_features, labels)
    figures["accuracy_change_points"] = 100 * (figures["pruned_dev_accuracy"]
                                               - figures["unpruned_dev_accuracy"])

    floor = floor_model(teacher)
    notes["parameters"]["floor"] = int(floor.count_params())
    speed, saved_model_timings = measure_speed(
        {"unpruned": teacher, "pruned": student, "floor": floor}, tokenizer, texts, args, out)
    figures.update(speed_figures(speed, notes["parameters"]))
    print(f"\ndev accuracy: unpruned {figures['unpruned_dev_accuracy']:.4f}, pruned + distilled "
          f"{figures['pruned_dev_accuracy']:.4f} ({figures['accuracy_change_points']:+.2f} "
          "points; target >= -1)")
    print_speed(speed, notes["parameters"])
    electra_tf.write_benchmark_results(args.output_dir, {
        "benchmark": "structured_pruning", "args": vars(args), "figures": figures,
        "latency_ms": speed, "warmup_calls": WARMUP_CALLS,
        "saved_model_settings": SAVED_MODEL_SETTINGS, "saved_model_timings": saved_model_timings,
        "notes": notes,
        "total_seconds": round(time.perf_counter() - start, 1)})
    print(f"wrote {out('results.json')} ({time.perf_counter() - start:.0f}s in all)")


def median_of_runs(run_dirs, output_dir):
    """The median of each figure over several runs' results.json, with each run's value."""
    runs = []
    for run_dir in run_dirs:
        with open(os.path.join(run_dir, "results.json")) as f:
            runs.append(json.load(f))
    settings = [{k: v for k, v in run["args"].items()
                 if k not in ("seed", "output_dir", "median_of")} for run in runs]
    if any(s != settings[0] for s in settings):
        raise SystemExit("--median-of: the runs differ in more than their seed: "
                         f"{settings}")
    figures = {key: float(np.median([run["figures"][key] for run in runs]))
               for key in runs[0]["figures"]}
    per_run = {key: [run["figures"][key] for run in runs] for key in figures}
    for key, value in figures.items():
        print(f"{key}: median {value:.4f}, runs {', '.join(f'{v:.4f}' for v in per_run[key])}")
    electra_tf.write_benchmark_results(output_dir, {
        "benchmark": "structured_pruning", "median_of": list(run_dirs),
        "seeds": [run["args"]["seed"] for run in runs], "settings": settings[0],
        "figures": figures, "per_run": per_run})


def retime(args):
    """The speed of --classifier and each run's pruned_model/, with the code checked out now."""
    from electra_tf import ElectraClassifier

    teacher = ensure_classifier(args.classifier, args.data_dir)
    tokenizer = ElectraTokenizer()
    dev, _ = read_classification_file(os.path.join(args.data_dir, "movie_dev.tsv"), num_classes=2)
    os.makedirs(args.output_dir, exist_ok=True)
    out = lambda name: os.path.join(args.output_dir, name)  # noqa: E731
    floor = floor_model(teacher)
    runs, sizes, timings = {}, {}, {}
    for run_dir in args.retime:
        student = ElectraClassifier.from_pretrained(os.path.join(run_dir, "pruned_model"))
        parameters = {name: int(model.count_params()) for name, model in
                      (("unpruned", teacher), ("pruned", student), ("floor", floor))}
        speed, timings[run_dir] = measure_speed(
            {"unpruned": teacher, "pruned": student, "floor": floor}, tokenizer, dev["text"],
            args, out, export=MODELS if not runs else ("pruned",))  # the others: as exported
        sizes[run_dir] = parameters
        print(run_dir)
        print_speed(speed, parameters)
        runs[run_dir] = {f"{fmt}_{batch}": {**ms, **speed_summary(ms, parameters)}
                         for fmt, batches in speed.items() for batch, ms in batches.items()}
    figures = {f"{key}_{figure}": float(np.median([run[key][figure] for run in runs.values()]))
               for key in next(iter(runs.values()))
               for figure in ("speedup", "floor_share", "proportional_speedup")}
    for key, value in figures.items():
        print(f"{key}: median {value:.2f}")
    electra_tf.write_benchmark_results(args.output_dir, {  # its "code": the commit timed
        "benchmark": "structured_pruning", "retime_of": list(args.retime),
        "latency_rounds": args.latency_rounds, "warmup_calls": WARMUP_CALLS,
        "saved_model_settings": SAVED_MODEL_SETTINGS, "saved_model_timings": timings,
        "figures": figures, "runs": runs,
        "parameters": sizes})


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.retime:
        retime(arguments)
    elif arguments.median_of:
        median_of_runs(arguments.median_of, arguments.output_dir)
    else:
        main(arguments)
