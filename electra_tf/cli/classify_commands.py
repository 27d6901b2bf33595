"""`electra-tf finetune|evaluate|predict classify`: argument parsing only.

The jobs are `electra_tf.tasks.run_finetuning` (`run_finetuning`,
`evaluate_classifier`, `predict_classifier`).
"""

import json

from electra_tf.cli.training_arguments import add_training_arguments


def add_finetune(subparsers):
    """Adds `classify` to the `finetune` task subparsers."""
    parser = subparsers.add_parser(
        "classify",
        help="fine-tune a classifier (or regressor) on labelled CSV/TSV/JSONL files",
        description="Fine-tune an ElectraClassifier from a Hugging Face or electra_tf encoder "
        "directory with ELECTRA's recipe (AdamW, layer-wise learning-rate decay, 10%% warmup, "
        "linear decay). Writes OUTPUT_DIR/classifier and OUTPUT_DIR/results.json.",
    )
    parser.add_argument("--encoder", required=True,
                        help="Hugging Face (config.json + weights) or electra_tf model directory")
    parser.add_argument("--train", required=True, help="training file: .csv/.tsv/.jsonl")
    parser.add_argument("--dev", help="evaluation file, same format")
    parser.add_argument("--output-dir", default="finetune_output")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--text-b-column", help="second text column, for sentence pairs")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--problem-type", default="single_label",
                        choices=["single_label", "multi_label", "regression"])
    parser.add_argument("--num-classes", type=int)
    parser.add_argument("--label-names", type=lambda text: text.split(","),
                        help="comma-separated class names in id order, e.g. negative,positive")
    parser.add_argument("--head", default="electra", choices=["electra", "huggingface"])
    parser.add_argument("--vocab", dest="vocab_path",
                        help="vocabulary file (default: the encoder's vocab.txt, else BERT uncased)")
    parser.add_argument("--no-lower-case", dest="lower_case", action="store_false")
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--layer-decay", type=float)
    parser.add_argument("--dropout-rate", type=float)
    parser.add_argument("--skip-bad-rows", dest="errors", action="store_const", const="skip",
                        help="skip and count bad rows instead of stopping at the first")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--log-every", type=int, help="steps between TensorBoard/CSV rows")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    add_training_arguments(parser)  # --strategy, --mixed-precision, --gradient-accumulation-steps
    parser.set_defaults(run=_run_finetune)


def _run_finetune(args):
    from electra_tf.tasks.run_finetuning import FinetuningConfig, format_summary, run_finetuning

    options = {key: value for key, value in vars(args).items()
               if value is not None and key not in ("command", "task", "run")}
    summary = run_finetuning(FinetuningConfig(**options))
    print(format_summary(summary))


def add_evaluate(subparsers):
    """Adds `classify` to the `evaluate` task subparsers."""
    parser = subparsers.add_parser(
        "classify",
        help="metrics of a fine-tuned classifier on a labelled CSV/TSV/JSONL file",
        description="Classify a labelled file with a model written by `finetune classify` and "
        "print its metrics (accuracy, F1, Matthews correlation; Pearson/Spearman for "
        "regression), also as JSON, and to --output when given.",
    )
    parser.add_argument("--model", required=True,
                        help="OUTPUT_DIR/classifier of `finetune classify`")
    parser.add_argument("--data", required=True, help="labelled .csv/.tsv/.jsonl file")
    parser.add_argument("--text-column", help="default: the one the model was trained with")
    parser.add_argument("--text-b-column")
    parser.add_argument("--label-column")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int,
                        help="tokens per packed input (default: the model's, from task.json)")
    parser.add_argument("--skip-bad-rows", dest="errors", action="store_const", const="skip",
                        default="raise")
    parser.add_argument("--output", help="write the metrics to this JSON file")
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args):
    from electra_tf.tasks.run_finetuning import evaluate_classifier, write_json_atomically

    metrics = evaluate_classifier(
        args.model, args.data, text_column=args.text_column, text_b_column=args.text_b_column,
        label_column=args.label_column, batch_size=args.batch_size, max_seq_length=args.max_seq_length, errors=args.errors,
    )
    for name, value in metrics.items():
        if isinstance(value, float):
            print(f"{name}: {value:.4f}")
    print(json.dumps(metrics))
    if args.output:
        write_json_atomically(metrics, args.output)


def add_predict(subparsers):
    """Adds `classify` to the `predict` task subparsers."""
    parser = subparsers.add_parser(
        "classify",
        help="classify text with a fine-tuned classifier",
        description="Classify each line of --input (plain text, or JSON lines with \"text\" "
        "and, for sentence pairs, \"text_b\") and write JSON lines with the label and the "
        "probabilities to --output (default: standard output).",
    )
    parser.add_argument("--model", required=True,
                        help="OUTPUT_DIR/classifier of `finetune classify`")
    parser.add_argument("--input", required=True, help="text or JSON-lines file")
    parser.add_argument("--output", help="JSON-lines file to write (default: print)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int,
                        help="tokens per packed input (default: the model's, from task.json)")
    parser.set_defaults(run=_run_predict)


def _run_predict(args):
    from electra_tf.tasks.run_finetuning import predict_classifier

    predictions = predict_classifier(args.model, args.input, args.output,
                                     batch_size=args.batch_size, max_seq_length=args.max_seq_length)
    if args.output:
        print(f"wrote {len(predictions)} predictions to {args.output}")
    else:
        for prediction in predictions:
            print(json.dumps(prediction, ensure_ascii=False))
