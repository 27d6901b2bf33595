"""`electra-tf finetune glue`: argument parsing only.

The job is `electra_tf.tasks.run_glue.run_glue`. GLUE has no `evaluate` or
`predict` command: `finetune glue` scores the dev set(s) and writes the test
server's submission files itself; each seed's OUTPUT_DIR/seed_<k>/classifier
also works with `evaluate|predict classify`.
"""

from electra_tf.cli.training_arguments import add_training_arguments


def add_finetune(subparsers):
    """Adds `glue` to the `finetune` task subparsers."""
    parser = subparsers.add_parser(
        "glue",
        help="fine-tune and score a GLUE task from TensorFlow Datasets, over N seeds",
        description="Fine-tune an ElectraClassifier on one GLUE task (glue/<task> from "
        "TensorFlow Datasets) with ELECTRA's recipe: learning rate 3e-4/1e-4/5e-5 for "
        "Small/Base/Large (from the encoder's hidden size), layer-wise decay 0.8 (0.9 Large), "
        "3 epochs (10 for RTE and STS-B), batch 32, 10%% warmup, max_seq_length 128, no weight "
        "decay; flags override them. Writes per-seed dev metrics and their median to "
        "OUTPUT_DIR/results.json and the GLUE server's files, predicted by the seed with the "
        "best dev score, to OUTPUT_DIR/submission.",
    )
    # dest: `task` is already the subcommand's name ("glue").
    parser.add_argument("--task", dest="glue_task", required=True,
                        help="cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte or wnli")
    parser.add_argument("--encoder", required=True,
                        help="Hugging Face (config.json + weights) or electra_tf model directory")
    parser.add_argument("--output-dir", default="glue_output")
    parser.add_argument("--seeds", type=int,
                        help="fine-tune N times (seeds 0..N-1) and report the median (default 1)")
    parser.add_argument("--learning-rate", type=float, help="default: by model size")
    parser.add_argument("--layer-decay", type=float, help="default: 0.8, 0.9 for Large")
    parser.add_argument("--epochs", type=int, help="default: 3, 10 for RTE and STS-B")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--warmup-proportion", type=float)
    parser.add_argument("--dropout-rate", type=float)
    parser.add_argument("--train-limit", type=int,
                        help="train on the first N examples only (quick runs)")
    parser.add_argument("--vocab", dest="vocab_path",
                        help="vocabulary file (default: the encoder's vocab.txt, else BERT's)")
    parser.add_argument("--no-lower-case", dest="lower_case", action="store_false", default=None)
    parser.add_argument("--data-dir", help="TensorFlow Datasets directory")
    parser.add_argument("--no-submission", dest="submission", action="store_false", default=None,
                        help="skip predicting the test split(s)")
    parser.add_argument("--log-every", type=int, help="steps between TensorBoard/CSV rows")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    add_training_arguments(parser)  # --strategy, --mixed-precision, --gradient-accumulation-steps
    parser.set_defaults(run=_run_finetune)


def _run_finetune(args):
    from electra_tf.tasks.run_glue import GlueConfig, format_glue_summary, run_glue

    options = {key: value for key, value in vars(args).items()
               if value is not None and key not in ("command", "task", "glue_task", "run")}
    summary = run_glue(GlueConfig(task=args.glue_task, **options))
    print(format_glue_summary(summary))
