"""One review at a time from an end-to-end SavedModel: each block in width parts, or whole.

    python benchmarks/width_parts_serving.py [--classifier DIR] [--rounds 3]

Exports a sentiment classifier (`--classifier`, a `save_pretrained` directory;
default: a MiniLM-shaped one, 6 layers, hidden 384, 12 heads, 1536 neurons, with
random weights: the speed does not depend on their values) as the end-to-end
SavedModel `electra-tf serve` loads, twice: as it is, and with
`export_task_saved_model(..., width_parts=N)` (each transformer block as N groups
of heads and neurons at once, `electra_tf.width_parts`). Then it times each
export answering the packaged dev reviews one call per review (raw text in,
tokenization in the graph), each setting in a fresh process with its own
TensorFlow threads (fixed at the first op):

    default threads      the plain export, TensorFlow's pools (every op on all cores)
    one thread           the plain export, one thread per op and one inter-op thread
    N width parts        the width-parts export, one thread per op, N inter-op threads

The settings take turns for `--rounds` rounds (a fresh process each turn), so
the machine's drift lands on each alike; each figure is the median over the
rounds of each turn's median latency. Both exports' probabilities are compared
on every review. Writes results.json with the machine it ran on.
"""

import argparse
import os
import shutil
import statistics
import time

import numpy as np

import electra_tf  # sets TF_USE_LEGACY_KERAS before TensorFlow is imported
from structured_pruning import in_new_process  # benchmarks/, next to this file

DATA_DIR = os.path.dirname(electra_tf.packaged_sentiment("train"))  # movie_dev.tsv
MINILM = dict(vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12,
              intermediate_size=1536, embedding_size=384, max_sequence_length=512)
WARMUP_CALLS = 10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default=None,
                        help="ElectraClassifier directory (default: MiniLM-shaped, random weights)")
    parser.add_argument("--reviews", type=int, default=32, help="packaged dev reviews, one a call")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--width-parts", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output-dir", default=os.path.join("benchmarks", "results",
                                                             "width_parts_serving"))
    args = parser.parse_args(argv)
    for name in ("reviews", "max_seq_length", "width_parts", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1; received {getattr(args, name)}")
    return args


def settings(width_parts):
    """{name: (export, intra-op threads, inter-op threads)}; 0 threads: TensorFlow's default."""
    return {"default threads": ("whole", 0, 0), "one thread": ("whole", 1, 1),
            f"{width_parts} width parts": ("width", 1, width_parts)}


def time_export(path, intra, inter, texts):
    """In a fresh process: per-review latencies (ms) of the SavedModel at `path`, its outputs."""
    electra_tf.set_tensorflow_threads(intra, inter)
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops of the export's tokenizer)

    serve = tf.saved_model.load(path).signatures["serving_default"]
    calls = [tf.constant([text]) for text in texts]
    for text in calls[:WARMUP_CALLS]:
        serve(text=text)
    milliseconds, probabilities = [], []
    for text in calls:
        start = time.perf_counter()
        outputs = serve(text=text)["probabilities"].numpy()
        milliseconds.append(1000 * (time.perf_counter() - start))
        probabilities.append(outputs[0].tolist())
    threading = tf.config.threading
    return {"ms": milliseconds, "probabilities": probabilities,
            "threads": [threading.get_intra_op_parallelism_threads(),
                        threading.get_inter_op_parallelism_threads()]}


def main(argv=None):
    args = parse_args(argv)
    from electra_tf import (ElectraClassifier, ElectraEncoder, export_task_saved_model,
                            read_classification_file)

    if args.classifier:
        classifier = ElectraClassifier.from_pretrained(args.classifier)
    else:
        classifier = ElectraClassifier(ElectraEncoder(**MINILM), num_classes=2)
    dev, _ = read_classification_file(os.path.join(DATA_DIR, "movie_dev.tsv"), num_classes=2)
    texts = list(dev["text"][:args.reviews])
    os.makedirs(args.output_dir, exist_ok=True)
    paths = {name: os.path.join(args.output_dir, f"{name}_saved_model") for name in ("whole", "width")}
    for name, parts in (("whole", 1), ("width", args.width_parts)):
        export_task_saved_model(classifier, paths[name], max_seq_length=args.max_seq_length,
                                overwrite=True, width_parts=parts)
    turns = {name: [] for name in settings(args.width_parts)}
    for _ in range(args.rounds):
        for name, (export, intra, inter) in settings(args.width_parts).items():
            turns[name].append(in_new_process("time_export", paths[export], intra, inter,
                                              texts, script=__file__))
            print(f"{name}: {statistics.median(turns[name][-1]['ms']):.2f} ms a review", flush=True)
    figures = {name: {"ms_per_review": statistics.median(statistics.median(t["ms"]) for t in runs),
                      "turn_medians": [statistics.median(t["ms"]) for t in runs],
                      "threads": runs[0]["threads"]}
               for name, runs in turns.items()}
    width = f"{args.width_parts} width parts"
    for name in ("default threads", "one thread"):
        figures[width][f"vs {name}"] = (figures[name]["ms_per_review"]
                                        / figures[width]["ms_per_review"])
    difference = float(np.max(np.abs(np.array(turns[width][0]["probabilities"])
                                      - np.array(turns["one thread"][0]["probabilities"]))))
    encoder = classifier.encoder
    print(f"\n{type(classifier).__name__}, {encoder.num_layers} layers, hidden {encoder.hidden_size}, "
          f"{encoder.num_heads} heads: {len(texts)} packaged dev reviews one a call, "
          f"{os.cpu_count()} cores ({electra_tf.describe_cpu()})")
    for name, figure in figures.items():
        ratios = ", ".join(f"{key} {value:.2f}x" for key, value in figure.items()
                           if key.startswith("vs "))
        print(f"{name:<18} {figure['ms_per_review']:7.2f} ms a review  (threads "
              f"{figure['threads']}) {ratios}")
    print(f"max |probability difference|, width parts vs whole: {difference:.1e}")
    path = electra_tf.write_benchmark_results(args.output_dir, {
        "benchmark": "width_parts_serving", "args": vars(args),
        "model": {"num_layers": encoder.num_layers, "hidden_size": encoder.hidden_size,
                  "num_heads": encoder.num_heads, "intermediate_size": encoder.intermediate_size},
        "figures": figures, "max_abs_probability_difference": difference})
    for export in paths.values():  # large, and re-made by every run
        shutil.rmtree(export)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
