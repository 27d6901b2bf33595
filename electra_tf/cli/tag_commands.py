"""`electra-tf finetune|evaluate|predict tag`: argument parsing only.

The jobs are `electra_tf.tasks.run_tagging` (`run_tagging`, `evaluate_tagger`,
`predict_tags`).
"""

import json

from electra_tf.cli.config_arguments import (
    add_config_arguments,
    add_skip_bad_examples_argument,
    config_kwargs,
)


def add_finetune(subparsers):
    """Adds `tag` to the `finetune` task subparsers: the fields of `TaggingConfig`."""
    from electra_tf.tasks.run_tagging import TaggingConfig

    parser = subparsers.add_parser(
        "tag",
        help="fine-tune a tagger (NER, chunking, POS) on CoNLL files",
        description="Fine-tune an ElectraTokenClassifier from a Hugging Face or electra_tf "
        "encoder directory on CoNLL files (`word ... tag` lines, a blank line between "
        "sentences), with ELECTRA's recipe. Writes OUTPUT_DIR/model (for `evaluate tag` and "
        "`predict tag`), OUTPUT_DIR/model_hf (ElectraForTokenClassification), TensorBoard logs, "
        "learning_curves.png and results.json. Options left out keep the defaults of "
        "electra_tf.tasks.run_tagging.TaggingConfig.",
    )
    add_config_arguments(parser, TaggingConfig, required=("encoder", "train"))
    parser.set_defaults(run=_run_finetune)


def _run_finetune(args):
    from electra_tf.tasks.run_tagging import TaggingConfig, format_summary, run_tagging

    print(format_summary(run_tagging(TaggingConfig(**config_kwargs(args, TaggingConfig)))))


def add_evaluate(subparsers):
    """Adds `tag` to the `evaluate` task subparsers."""
    parser = subparsers.add_parser(
        "tag",
        help="entity-level F1 (seqeval semantics) of a fine-tuned tagger on a CoNLL file",
        description="Tag a CoNLL file with a model written by `finetune tag` and print entity "
        "precision/recall/F1 (seqeval's default mode), word accuracy and per-type F1; the "
        "metrics are also printed as JSON and written to --output when given.",
    )
    parser.add_argument("--model", required=True,
                        help="OUTPUT_DIR of `finetune tag` (or its model/)")
    parser.add_argument("--data", required=True, help="labelled CoNLL file")
    parser.add_argument("--label-column", default="-1",
                        help="tag column: an index or ner, chunk, pos (default: the last)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int,
                        help="tokens per packed input (default: the model's, from task.json)")
    add_skip_bad_examples_argument(
        parser, "skip and count bad sentences instead of stopping at the first")
    parser.add_argument("--output", help="write the metrics to this JSON file")
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args):
    from electra_tf.tasks.run_tagging import evaluate_tagger, format_tagging_metrics
    from electra_tf.utils.json_files import write_json

    column = args.label_column
    column = int(column) if column.lstrip("-").isdigit() else column
    metrics = evaluate_tagger(args.model, args.data, label_column=column,
                              batch_size=args.batch_size, max_seq_length=args.max_seq_length,
                              errors=args.errors)
    print(format_tagging_metrics(metrics))
    print(json.dumps(metrics))
    if args.output:
        write_json(args.output, metrics)


def add_predict(subparsers):
    """Adds `tag` to the `predict` task subparsers."""
    parser = subparsers.add_parser(
        "tag",
        help="tag text with a fine-tuned tagger",
        description="Tag each line of --input (plain text, or JSON lines with \"text\" or "
        "\"tokens\") and write JSON lines with tokens, tags, probabilities and entities to "
        "--output (default: standard output).",
    )
    parser.add_argument("--model", required=True,
                        help="OUTPUT_DIR of `finetune tag` (or its model/)")
    parser.add_argument("--input", required=True, help="text or JSON-lines file")
    parser.add_argument("--output", help="JSON-lines file to write (default: print)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int,
                        help="tokens per packed input (default: the model's, from task.json)")
    parser.set_defaults(run=_run_predict)


def _run_predict(args):
    from electra_tf.tasks.run_tagging import predict_tags

    predictions = predict_tags(args.model, args.input, args.output, batch_size=args.batch_size,
                               max_seq_length=args.max_seq_length)
    if args.output:
        print(f"wrote {len(predictions)} predictions to {args.output}")
    else:
        for prediction in predictions:
            print(json.dumps(prediction, ensure_ascii=False))
