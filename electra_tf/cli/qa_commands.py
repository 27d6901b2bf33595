"""`electra-tf finetune|evaluate|predict qa`: argument parsing only.

The jobs are `electra_tf.tasks.run_qa` (`run_qa`, `evaluate_qa`, `predict_qa`).
"""

import json
import sys

from electra_tf.cli.config_arguments import (
    add_config_arguments,
    add_skip_bad_examples_argument,
    config_kwargs,
)


def add_finetune(subparsers):
    """Adds `qa` to the `finetune` task subparsers: the fields of `QAConfig`."""
    from electra_tf.tasks.run_qa import QAConfig

    parser = subparsers.add_parser(
        "qa",
        help="fine-tune extractive question answering on SQuAD 1.1/2.0 JSON",
        description="Fine-tune an ElectraQuestionAnswering from a Hugging Face or electra_tf "
        "encoder directory with ELECTRA's SQuAD recipe (windows of 384 word pieces, stride 128; "
        "AdamW, layer-wise learning-rate decay, 10%% warmup, linear decay). Writes "
        "OUTPUT_DIR/model (for `evaluate qa` and `predict qa`), TensorBoard logs, "
        "learning_curves.png and results.json. Options left out keep the defaults of "
        "electra_tf.tasks.run_qa.QAConfig.",
    )
    add_config_arguments(parser, QAConfig, required=("encoder", "train"))
    parser.set_defaults(run=_run_finetune)


def _run_finetune(args):
    from electra_tf.tasks.run_qa import QAConfig, format_summary, run_qa

    print(format_summary(run_qa(QAConfig(**config_kwargs(args, QAConfig)))))


def add_evaluate(subparsers):
    """Adds `qa` to the `evaluate` task subparsers."""
    parser = subparsers.add_parser(
        "qa",
        help="exact match and F1 of a fine-tuned QA model on SQuAD JSON",
        description="Answer every question of a SQuAD file with a model written by "
        "`electra-tf finetune qa` and score it as the official v1.1/v2.0 scripts do.",
    )
    parser.add_argument("--model", required=True,
                        help="OUTPUT_DIR of `finetune qa` (or its model/)")
    parser.add_argument("--data", required=True,
                        help="official SQuAD JSON file, or tfds:squad/v1.1 / tfds:squad/v2.0")
    parser.add_argument("--output", help="JSON file for the metrics and predictions")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int,
                        help="tokens per packed input (default: the model's, from task.json)")
    add_skip_bad_examples_argument(
        parser, "skip and count bad questions instead of stopping at the first")
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args):
    from electra_tf.tasks.run_qa import evaluate_qa

    report = evaluate_qa(args.model, args.data, errors=args.errors, batch_size=args.batch_size,
                         max_seq_length=args.max_seq_length, output=args.output)
    for name, value in report["metrics"].items():
        print(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")
    if report["skipped"]:
        print(f"skipped: {report['skipped']}")


def add_predict(subparsers):
    """Adds `qa` to the `predict` task subparsers."""
    parser = subparsers.add_parser(
        "qa",
        help="answer questions from JSON lines with a fine-tuned QA model",
        description='Reads JSON lines {"question", "context"} (an "id" is passed through) and '
        'writes one JSON line {"answer", "start_char", "score"} per question.',
    )
    parser.add_argument("--model", required=True,
                        help="OUTPUT_DIR of `finetune qa` (or its model/)")
    parser.add_argument("--input", required=True, help="JSON-lines file of questions")
    parser.add_argument("--output", help="JSON-lines file to write (default: standard output)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int,
                        help="tokens per packed input (default: the model's, from task.json)")
    parser.set_defaults(run=_run_predict)


def _run_predict(args):
    from electra_tf.tasks.run_qa import predict_qa, read_jsonl
    from electra_tf.utils.json_files import write_json_lines

    answers = predict_qa(args.model, read_jsonl(args.input), batch_size=args.batch_size,
                         max_seq_length=args.max_seq_length)
    if args.output:
        write_json_lines(args.output, answers)
    else:
        for answer in answers:
            sys.stdout.write(json.dumps(answer) + "\n")
