"""`electra-tf finetune|evaluate|predict qa`: argument parsing only.

The jobs are `electra_tf.tasks.run_qa` (`run_qa`, `evaluate_qa`, `predict_qa`).
"""

import json
import sys

from electra_tf.cli.training_arguments import add_training_arguments


def add_finetune(subparsers):
    """Adds `qa` to the `finetune` task subparsers."""
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
    parser.add_argument("--encoder", required=True,
                        help="Hugging Face (config.json + weights) or electra_tf model directory")
    parser.add_argument("--train", required=True,
                        help="official SQuAD JSON file, or tfds:squad/v1.1 / tfds:squad/v2.0")
    parser.add_argument("--dev", help="evaluation data, same forms; EM/F1 go to results.json")
    parser.add_argument("--output-dir", default="qa_output")
    parser.add_argument("--head", choices=["simple", "electra"],
                        help="simple: dense start/end (transformers' ElectraForQuestionAnswering); "
                        "electra: the paper's head (beam over starts, answerability classifier)")
    parser.add_argument("--vocab", dest="vocab_path",
                        help="vocabulary file (default: the encoder's vocab.txt, else uncased BERT)")
    parser.add_argument("--no-lower-case", dest="lower_case", action="store_false", default=None)
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--doc-stride", type=int)
    parser.add_argument("--max-query-length", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--layer-decay", type=float)
    parser.add_argument("--beam-size", type=int)
    parser.add_argument("--n-best-size", type=int)
    parser.add_argument("--max-answer-length", type=int)
    parser.add_argument("--null-score-threshold", type=float)
    parser.add_argument("--skip-bad-examples", dest="errors", action="store_const", const="skip",
                        help="skip and count bad questions instead of stopping at the first")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    parser.add_argument("--seed", type=int)
    add_training_arguments(parser)  # --strategy, --mixed-precision, --gradient-accumulation-steps
    parser.set_defaults(run=_run_finetune)


def _run_finetune(args):
    from electra_tf.tasks.run_qa import QAConfig, format_summary, run_qa

    options = {key: value for key, value in vars(args).items()
               if value is not None and key not in ("command", "task", "run")}
    print(format_summary(run_qa(QAConfig(**options))))


def add_evaluate(subparsers):
    """Adds `qa` to the `evaluate` task subparsers."""
    parser = subparsers.add_parser(
        "qa",
        help="exact match and F1 of a fine-tuned QA model on SQuAD JSON",
        description="Answer every question of a SQuAD file with a model written by "
        "`electra-tf finetune qa` and score it as the official v1.1/v2.0 scripts do.",
    )
    parser.add_argument("--model", required=True, help="OUTPUT_DIR/model of `finetune qa`")
    parser.add_argument("--data", required=True,
                        help="official SQuAD JSON file, or tfds:squad/v1.1 / tfds:squad/v2.0")
    parser.add_argument("--output", help="JSON file for the metrics and predictions")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int,
                        help="tokens per packed input (default: the model's, from task.json)")
    parser.add_argument("--skip-bad-examples", dest="errors", action="store_const", const="skip",
                        default="raise")
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args):
    from electra_tf.tasks.run_qa import evaluate_qa

    report = evaluate_qa(args.model, args.data, errors=args.errors, batch_size=args.batch_size, max_seq_length=args.max_seq_length,
                         output=args.output)
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
    parser.add_argument("--model", required=True, help="OUTPUT_DIR/model of `finetune qa`")
    parser.add_argument("--input", required=True, help="JSON-lines file of questions")
    parser.add_argument("--output", help="JSON-lines file to write (default: standard output)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int,
                        help="tokens per packed input (default: the model's, from task.json)")
    parser.set_defaults(run=_run_predict)


def _run_predict(args):
    from electra_tf.tasks.run_qa import predict_qa, read_jsonl, write_jsonl

    answers = predict_qa(args.model, read_jsonl(args.input), batch_size=args.batch_size, max_seq_length=args.max_seq_length)
    if args.output:
        write_jsonl(args.output, answers)
    else:
        for answer in answers:
            sys.stdout.write(json.dumps(answer) + "\n")
