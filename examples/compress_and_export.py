"""Compress a fine-tuned classifier three ways, export each to TFLite, and compare them.

    python examples/compress_and_export.py --classifier runs/sentiment/model \
        --train movie_train.tsv --dev movie_dev.tsv --output-dir runs/compressed

1. prune 50% of the encoder and head kernels while fine-tuning (tfmot) on the
   unpruned model's predictions, for the reviews and augmented copies of them;
2. distil the classifier into a 2-layer student started from its own layers;
3. export the original (fp32, dynamic-range int8, full int8), the pruned and
   the distilled model to TFLite, and the pruned one as an end-to-end
   SavedModel (strings in, probabilities out) for TensorFlow Serving;
4. measure dev accuracy, zipped size and latency, print the table and draw
   the trade-off (compression_tradeoff.png).

Uses the public API only; `electra-tf compress prune|distill|quantize` runs
the same steps from the command line.
"""

import argparse
import os

import numpy as np

import electra_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from electra_tf import (
    ElectraDistiller,
    augmented_distillation_dataset,
    export_task_saved_model,
    export_tflite,
    format_compression_table,
    format_sparsity_table,
    load_classifier_and_tokenizer,
    make_classification_dataset,
    measure_tflite,
    plot_compression_tradeoff,
    prune_classifier,
    read_classification_file,
    representative_dataset,
    sparsity_report,
    student_from_teacher,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", required=True, help="ElectraClassifier directory")
    parser.add_argument("--train", required=True, help="labelled training file (TSV/CSV/JSONL)")
    parser.add_argument("--dev", required=True, help="labelled dev file")
    parser.add_argument("--output-dir", "--output", dest="output_dir", required=True,
                        help="directory for everything written (--output: its earlier name)")
    parser.add_argument("--max-seq-length", "--seq-length", dest="max_seq_length", type=int,
                        default=128, help="packed input length (--seq-length: its earlier name)")
    parser.add_argument("--steps", type=int, default=100, help="pruning and distillation steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--augment-copies", type=int, default=3,
                        help="augmented copies of each training text while pruning")
    args = parser.parse_args()
    os.makedirs(args.output_dir, exist_ok=True)

    classifier, tokenizer = load_classifier_and_tokenizer(args.classifier)
    train, _ = read_classification_file(args.train, num_classes=classifier.num_classes)
    dev, _ = read_classification_file(args.dev, num_classes=classifier.num_classes)
    train_data = make_classification_dataset(
        train, tokenizer, args.max_seq_length, args.batch_size, shuffle=True, seed=0).repeat()
    features = tokenizer.pack([tokenizer.tokenize(dev["text"])], args.max_seq_length)
    features = {key: value.numpy() for key, value in features.items()}
    labels = np.array(dev["label"])

    # 1. Pruning: 50% zeros in every encoder and head kernel, learning the unpruned
    #    model's soft predictions on the texts and on augmented copies of them.
    augmented = augmented_distillation_dataset(train, tokenizer, classifier,
                                               copies=args.augment_copies,
                                               batch_size=args.batch_size)
    pruned, _ = prune_classifier(classifier, augmented, target_sparsity=0.5,
                                 steps_per_epoch=args.steps, learning_rate=2e-4,
                                 teacher=classifier, alpha=1.0,
                                 log_dir=os.path.join(args.output_dir, "pruning_logs"))
    print(format_sparsity_table(sparsity_report(pruned)))

    # 2. Distillation into a 2-layer student.
    student = student_from_teacher(classifier, num_layers=2)
    distiller = ElectraDistiller(classifier, student, temperature=2.0, alpha=0.5)
    distiller.compile()
    distiller.fit(train_data, epochs=1, steps_per_epoch=args.steps)

    # 3. Export.
    calibration = representative_dataset(train["text"], tokenizer, args.max_seq_length, count=100)
    variants = [
        ("TFLite fp32", classifier, None, None),
        ("TFLite dynamic-range int8", classifier, "dynamic", None),
        ("TFLite full int8", classifier, "int8", calibration),
        ("50% pruned (TFLite fp32)", pruned, None, None),
        ("2-layer student (TFLite fp32)", student, None, None),
    ]
    rows = []
    for index, (name, model, quantize, representative) in enumerate(variants):
        path = export_tflite(model, os.path.join(args.output_dir, f"model_{index}.tflite"),
                             quantize=quantize, representative_dataset=representative,
                             max_seq_length=args.max_seq_length, overwrite=True)
        rows.append({"name": name, **measure_tflite(path, features, labels)})
    export_task_saved_model(pruned, os.path.join(args.output_dir, "pruned_saved_model"), tokenizer,
                            max_seq_length=args.max_seq_length, overwrite=True)

    # 4. Compare.
    print(format_compression_table(rows))
    png = plot_compression_tradeoff(rows, os.path.join(args.output_dir, "compression_tradeoff.png"))
    print(f"wrote {png} and the models to {args.output_dir}")


if __name__ == "__main__":
    main()
