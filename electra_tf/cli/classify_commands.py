"""`electra-tf finetune|evaluate|predict classify`: argument parsing only.

The jobs are `electra_tf.tasks.run_finetuning` (`run_finetuning`,
`evaluate_classifier`, `predict_classifier`).
"""

import json

from electra_tf.cli.config_arguments import (
    add_config_arguments,
    add_skip_bad_examples_argument,
    config_kwargs,
)


def add_finetune(subparsers):
    """Adds `classify` to the `finetune` task subparsers: the fields of `FinetuningConfig`."""
    from electra_tf.tasks.run_finetuning import FinetuningConfig

    parser = subparsers.add_parser(
        "classify",
        help="fine-tune a classifier (or regressor) on labelled CSV/TSV/JSONL files",
        description="Fine-tune an ElectraClassifier from a Hugging Face or electra_tf encoder "
        "directory with ELECTRA's recipe (AdamW, layer-wise learning-rate decay, 10%% warmup, "
        "linear decay). Writes OUTPUT_DIR/model and OUTPUT_DIR/results.json. Options left out "
        "keep the defaults of electra_tf.tasks.run_finetuning.FinetuningConfig.",
    )
    add_config_arguments(parser, FinetuningConfig, required=("encoder", "train"))
    parser.set_defaults(run=_run_finetune)


def _run_finetune(args):
    from electra_tf.tasks.run_finetuning import FinetuningConfig, format_summary, run_finetuning

    summary = run_finetuning(FinetuningConfig(**config_kwargs(args, FinetuningConfig)))
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
                        help="OUTPUT_DIR of `finetune classify` (or its model/)")
    parser.add_argument("--data", required=True, help="labelled .csv/.tsv/.jsonl file")
    parser.add_argument("--text-column", help="default: the one the model was trained with")
    parser.add_argument("--text-b-column")
    parser.add_argument("--label-column")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int,
                        help="tokens per packed input (default: the model's, from task.json)")
    add_skip_bad_examples_argument(
        parser, "skip and count bad rows instead of stopping at the first")
    parser.add_argument("--output", help="write the metrics to this JSON file")
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args):
    from electra_tf.tasks.run_finetuning import evaluate_classifier
    from electra_tf.utils.json_files import write_json

    metrics = evaluate_classifier(
        args.model, args.data, text_column=args.text_column, text_b_column=args.text_b_column,
        label_column=args.label_column, batch_size=args.batch_size,
        max_seq_length=args.max_seq_length, errors=args.errors,
    )
    for name, value in metrics.items():
        if isinstance(value, float):
            print(f"{name}: {value:.4f}")
    print(json.dumps(metrics))
    if args.output:
        write_json(args.output, metrics)


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
                        help="OUTPUT_DIR of `finetune classify` (or its model/)")
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
