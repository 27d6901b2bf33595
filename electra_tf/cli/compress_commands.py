"""`electra-tf compress prune|distill|shrink|qat|quantize`: argument parsing only.

The work is done by `electra_tf.compression.compress` (run_prune,
run_distill, run_shrink, run_qat, run_quantize).
"""

import json
import os
import sys
import warnings

from electra_tf.cli.config_arguments import add_deprecated_alias, add_output_dir_argument
from electra_tf.cli.export_commands import add_quantization_arguments


def add_subcommands(subparsers):
    """Adds `compress` and its subcommands to the top-level subparsers."""
    parser = subparsers.add_parser(
        "compress",
        help="prune, distil or quantize a fine-tuned task model",
        description="Shrink an ElectraClassifier saved by `electra-tf finetune` "
        "(CLASSIFIER_DIR/classifier): magnitude pruning while fine-tuning, distillation into "
        "a shallower student, or TFLite quantization. Outputs are written atomically.",
    )
    commands = parser.add_subparsers(dest="compress_command", required=True)

    prune = commands.add_parser(
        "prune", help="prune kernels to a target sparsity while fine-tuning (tfmot)",
        description="Fine-tune while pruning the encoder and head kernels to --sparsity "
        "(polynomial-decay schedule, tensorflow-model-optimization). The model is any task "
        "directory (`electra-tf finetune classify|tag|qa` writes OUTPUT/model); --train and "
        "--dev are that task's files (CSV/TSV/JSONL, CoNLL, SQuAD JSON), read with the "
        "columns, label names, casing and max_seq_length of its task.json. Writes OUTPUT/model "
        "(a full task directory), sparsity.json, sparsity.txt, TensorBoard logs/ and "
        "summary.json (with the dev score before and after when --dev is given).")
    _add_common(prune, learning_rate=2e-5)
    prune.add_argument("--sparsity", type=float, default=0.5,
                       help="fraction of zeros in each pruned kernel (default: %(default)s)")
    prune.add_argument("--distill-alpha", type=float, default=None,
                       help="learn from the unpruned model's soft predictions too, with "
                       "this weight (e.g. 0.9); 1-alpha weighs the labels (default: labels only)")
    prune.set_defaults(run=_run_prune)

    distill = commands.add_parser(
        "distill", help="distil a classifier, tagger or QA model into a shallower student",
        description="Train a --num-layers student, started from evenly spaced teacher layers, "
        "on the teacher's softened predictions plus the labels. The teacher is any task "
        "directory (`electra-tf finetune classify|tag|qa` writes OUTPUT/model); --train and "
        "--dev are that task's files (CSV/TSV/JSONL, CoNLL, SQuAD JSON), read with the "
        "columns, label names, casing and max_seq_length of its task.json. Writes OUTPUT/model "
        "(the student, a full task directory), TensorBoard logs/ and summary.json (with the "
        "teacher's and the student's dev score when --dev is given).")
    _add_common(distill, learning_rate=1e-4)
    distill.add_argument("--num-layers", type=int, default=2,
                         help="student transformer layers (default: %(default)s)")
    distill.add_argument("--temperature", type=float, default=2.0,
                         help="softmax temperature of the soft targets (default: %(default)s)")
    distill.add_argument("--alpha", type=float, default=0.5,
                         help="weight of the soft-target term; 1-alpha weighs the labels "
                         "(default: %(default)s)")
    distill.set_defaults(run=_run_distill)

    shrink = commands.add_parser(
        "shrink", help="remove whole attention heads and FFN neurons, then distil (faster model)",
        description="Structured pruning: each layer keeps its --num-heads most important "
        "attention heads and --intermediate-size most important feed-forward neurons "
        "(--importance taylor: gradient scores on training batches, Michel et al. 2019; "
        "magnitude: weight norms), so every matmul is smaller and the model runs faster. The "
        "smaller model then learns from the unpruned one's softened predictions plus the labels. "
        "The model is any task directory; --train and --dev are that task's files. Writes "
        "OUTPUT/model (a full task directory), TensorBoard logs/ and summary.json (kept heads, "
        "parameter counts, dev score of the teacher, straight after pruning and after "
        "distillation).")
    _add_common(shrink, learning_rate=1e-4)
    shrink.add_argument("--num-heads", type=int, default=None,
                        help="attention heads each layer keeps (default: all)")
    shrink.add_argument("--intermediate-size", type=int, default=None,
                        help="feed-forward neurons each layer keeps (default: all)")
    shrink.add_argument("--importance", choices=["taylor", "magnitude"], default="taylor",
                        help="how heads and neurons are ranked (default: %(default)s)")
    shrink.add_argument("--importance-batches", type=int, default=32,
                        help="training batches the taylor scores average over "
                        "(default: %(default)s)")
    shrink.add_argument("--temperature", type=float, default=2.0,
                        help="softmax temperature of the soft targets (default: %(default)s)")
    shrink.add_argument("--alpha", type=float, default=0.5,
                        help="weight of the soft-target term; 1-alpha weighs the labels "
                        "(default: %(default)s)")
    shrink.set_defaults(run=_run_shrink)

    qat = commands.add_parser(
        "qat", help="quantization-aware training, then a full-int8 TFLite file",
        description="Fine-tune with int8 fake quantization (tensorflow-model-optimization) on "
        "every dense layer, embedding table and attention matmul, then write the int8 TFLite "
        "file converted with the trained ranges: no dense layer is left in float. The model is "
        "any task directory, pruned (its zeros are kept) or distilled ones too; --train and "
        "--dev are that task's files. Writes OUTPUT/model.tflite, OUTPUT/model (the trained "
        "float weights), TensorBoard logs/ and summary.json (dev score before and in int8, "
        "file size ratio, largest QAT-vs-file output difference).")
    _add_common(qat, learning_rate=2e-5, augment=False)
    qat.add_argument("--distill-alpha", type=float, default=None,
                     help="learn from a teacher's soft predictions too, with this weight "
                     "(1-alpha weighs the labels); the teacher is --teacher or the input model "
                     "in float (default: labels only)")
    qat.add_argument("--teacher", dest="teacher_dir",
                     help="task directory of the teacher for --distill-alpha")
    qat.add_argument("--temperature", type=float, default=2.0,
                     help="softmax temperature of the soft targets (default: %(default)s)")
    qat.add_argument("--calibration-batches", type=int, default=8,
                     help="training batches that set the int8 ranges before training "
                     "(default: %(default)s)")
    qat.set_defaults(run=_run_qat)

    quantize = commands.add_parser(
        "quantize", help="convert to a quantized TFLite file",
        description="Convert the classifier to TFLite with int8 (weights and activations, "
        "calibrated on --calibration-data), dynamic-range int8 weights, or float16 weights.")
    quantize.add_argument("classifier_dir", help="directory written by save_pretrained")
    quantize.add_argument("output", help="the .tflite file to write")
    add_quantization_arguments(quantize, default="int8")  # the same flags as `export`
    quantize.add_argument("--mode", choices=["int8", "dynamic", "float16"],
                          help="deprecated: use --quantize (the flag `export` takes too)")
    length = dict(dest="max_seq_length", type=int,
                  help="fixed sequence length of the TFLite model (default: "
                  "CLASSIFIER_DIR/task.json's max_seq_length, else 128)")
    quantize.add_argument("--max-seq-length", default=None, **length)
    add_deprecated_alias(quantize, "--seq-length", "--max-seq-length", length)  # its old name
    quantize.add_argument("--vocab", dest="vocab_path",
                          help="WordPiece vocabulary (default: CLASSIFIER_DIR/vocab.txt or the "
                          "packaged uncased one)")
    quantize.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    quantize.set_defaults(run=_run_quantize)


def _add_common(parser, learning_rate, augment=True):
    parser.add_argument("classifier_dir", help="directory written by save_pretrained")
    parser.add_argument("--train", required=True,
                        help="labelled training file: CSV/TSV with a header, or JSONL")
    add_output_dir_argument(parser, help="output directory", required=True)
    parser.add_argument("--dev", help="labelled file to report accuracy on")
    parser.add_argument("--epochs", type=int, default=1, help="default: %(default)s")
    parser.add_argument("--max-steps", type=int,
                        help="train exactly this many batches instead of --epochs")
    parser.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    parser.add_argument("--max-seq-length", type=int, default=None,
                        help="default: CLASSIFIER_DIR/task.json's, else 128")
    parser.add_argument("--learning-rate", type=float, default=learning_rate,
                        help="default: %(default)s")
    parser.add_argument("--vocab", dest="vocab_path",
                        help="WordPiece vocabulary (default: CLASSIFIER_DIR/vocab.txt or the "
                        "packaged uncased one)")
    if augment:
        parser.add_argument("--augment-copies", type=int, default=0,
                            help="also train on N augmented copies of each text (words masked "
                            "or swapped for embedding neighbours, cropped to phrases), labelled "
                            "by the unpruned model/teacher only (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output-dir")
    parser.add_argument("--no-progress", dest="verbose", action="store_const", const=2,
                        default=1, help="one line per epoch instead of a progress bar")


def _common_options(args):
    options = dict(epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                   max_seq_length=args.max_seq_length, learning_rate=args.learning_rate,
                   dev=args.dev, vocab_path=args.vocab_path, overwrite=args.overwrite,
                   verbose=args.verbose)
    if hasattr(args, "augment_copies"):
        options["augment_copies"] = args.augment_copies
    return options


def _run_prune(args):
    from electra_tf.compression.compress import run_prune
    from electra_tf.compression.pruning import format_sparsity_table
    from electra_tf.tasks.task_model_io import MODEL_DIRNAME

    summary = run_prune(args.classifier_dir, args.train, args.output_dir,
                        target_sparsity=args.sparsity, distill_alpha=args.distill_alpha,
                        **_common_options(args))
    print(format_sparsity_table(summary["sparsity"]))
    _print_accuracies(summary)
    if "dev_score_name" in summary and "dev_accuracy_after" not in summary:
        print(f"dev {summary['dev_score_name']}: {summary['dev_score_before']:.4f} before, "
              f"{summary['dev_score_after']:.4f} after pruning")
    print(f"wrote {os.path.join(args.output_dir, MODEL_DIRNAME)}, sparsity.json, sparsity.txt, "
          "logs/, summary.json")


def _run_distill(args):
    from electra_tf.compression.compress import run_distill
    from electra_tf.tasks.task_model_io import MODEL_DIRNAME

    summary = run_distill(args.classifier_dir, args.train, args.output_dir,
                          num_layers=args.num_layers, temperature=args.temperature,
                          alpha=args.alpha, **_common_options(args))
    if "dev_score_name" in summary:
        for model in ("teacher", "student"):
            print(f"dev {summary['dev_score_name']} ({model}): "
                  f"{summary[f'dev_score_{model}']:.4f}")
    print(f"wrote the {args.num_layers}-layer student to "
          f"{os.path.join(args.output_dir, MODEL_DIRNAME)} (+ logs/, summary.json)")


def _run_shrink(args):
    from electra_tf.compression.compress import run_shrink
    from electra_tf.tasks.task_model_io import MODEL_DIRNAME

    summary = run_shrink(args.classifier_dir, args.train, args.output_dir,
                         num_heads=args.num_heads, intermediate_size=args.intermediate_size,
                         importance=args.importance, importance_batches=args.importance_batches,
                         temperature=args.temperature, alpha=args.alpha, **_common_options(args))
    print(f"kept {summary['num_heads']} heads and {summary['intermediate_size']} feed-forward "
          f"neurons per layer: {summary['parameters_before']:,} -> "
          f"{summary['parameters_after']:,} parameters")
    if "dev_score_name" in summary:
        name = summary["dev_score_name"]
        print(f"dev {name}: {summary['dev_score_teacher']:.4f} unpruned, "
              f"{summary['dev_score_pruned']:.4f} pruned, {summary['dev_score_student']:.4f} "
              "after distillation")
    print(f"wrote {os.path.join(args.output_dir, MODEL_DIRNAME)} (+ logs/, summary.json)")


def _run_qat(args):
    from electra_tf.compression.compress import run_qat

    summary = run_qat(args.classifier_dir, args.train, args.output_dir,
                      teacher_dir=args.teacher_dir, distill_alpha=args.distill_alpha,
                      temperature=args.temperature, calibration_batches=args.calibration_batches,
                      **_common_options(args))
    if "dev_score_name" in summary:
        print(f"dev {summary['dev_score_name']}: {summary['dev_score_before']:.4f} float, "
              f"{summary['dev_score_int8']:.4f} int8")
    print(f"int8 file: {summary['tflite_bytes'] / 1e6:.2f} MB, {summary['size_ratio']:.2f}x "
          f"smaller than fp32; largest output difference from the QAT model: "
          f"{summary['tflite_max_difference']:.2e}")
    print(f"wrote {os.path.join(args.output_dir, 'model.tflite')}, "
          f"{os.path.join(args.output_dir, 'model')}, logs/, summary.json")


def _run_quantize(args):
    from electra_tf.compression.compress import run_quantize

    if args.mode is not None:
        warnings.warn("`electra-tf compress quantize --mode` is deprecated; use --quantize, the "
                      "flag `electra-tf export` takes too.", DeprecationWarning, stacklevel=2)
        print(f"note: --mode is deprecated; use --quantize {args.mode}", file=sys.stderr)
        args.quantize = args.mode
    result = run_quantize(args.classifier_dir, args.output, quantize=args.quantize,
                          calibration_data=args.calibration_data, max_seq_length=args.max_seq_length,
                          num_calibration_examples=args.num_calibration_examples,
                          vocab_path=args.vocab_path, overwrite=args.overwrite,
                          float_dense_layers=args.float_dense_layers)
    print(json.dumps(result))


def _print_accuracies(summary):
    for key, value in summary.items():
        if key.startswith("dev_accuracy"):
            print(f"{key}: {value:.4f}")
