"""`electra-tf finetune|evaluate|predict classify`: argument parsing only.

The jobs are `electra_tf.tasks.run_finetuning` (and its evaluate/predict).
"""


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
    parser.set_defaults(run=_run_finetune)


def _run_finetune(args):
    from electra_tf.tasks.run_finetuning import FinetuningConfig, format_summary, run_finetuning

    options = {key: value for key, value in vars(args).items()
               if value is not None and key not in ("command", "task", "run")}
    summary = run_finetuning(FinetuningConfig(**options))
    print(format_summary(summary))


def add_evaluate(subparsers):
    """Adds `classify` to the `evaluate` task subparsers. (Being written.)"""
    parser = subparsers.add_parser("classify", help="(not implemented yet)")
    parser.set_defaults(run=_not_yet)


def add_predict(subparsers):
    """Adds `classify` to the `predict` task subparsers. (Being written.)"""
    parser = subparsers.add_parser("classify", help="(not implemented yet)")
    parser.set_defaults(run=_not_yet)


def _not_yet(args):
    raise ValueError("this command is not implemented yet")
