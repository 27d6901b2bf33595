"""`electra-tf finetune glue`: argument parsing only.

The job is `electra_tf.tasks.run_glue.run_glue`. GLUE has no `evaluate` or
`predict` command: `finetune glue` scores the dev set(s) and writes the test
server's submission files itself; each seed's OUTPUT_DIR/seed_<k> (its model/)
also works with `evaluate|predict classify`.
"""

from electra_tf.cli.config_arguments import add_config_arguments, config_kwargs


def add_finetune(subparsers):
    """Adds `glue` to the `finetune` task subparsers: the fields of `GlueConfig`."""
    from electra_tf.tasks.run_glue import GlueConfig

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
    add_config_arguments(parser, GlueConfig, required=("task", "encoder"))
    parser.set_defaults(run=_run_finetune)


def _run_finetune(args):
    from electra_tf.tasks.run_glue import GlueConfig, format_glue_summary, run_glue

    summary = run_glue(GlueConfig(**config_kwargs(args, GlueConfig)))
    print(format_glue_summary(summary))
