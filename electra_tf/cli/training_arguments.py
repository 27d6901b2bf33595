"""Training flags shared by the jobs: argument parsing only.

`add_training_arguments` gives a parser the fields of
`electra_tf.tasks.training_options.TrainingOptions` (`--strategy`,
`--mixed-precision`, `--gradient-accumulation-steps`), derived from the fields
as every fine-tuning flag is (`electra_tf.cli.config_arguments`);
`add_mixed_precision_argument` is also `pretrain`'s `--mixed-precision`. Flags
left out are not passed, so the config's defaults apply.
"""

import dataclasses

from electra_tf.cli.config_arguments import add_config_arguments, flag_name


def add_mixed_precision_argument(parser):
    """`--mixed-precision [float16|bfloat16]`; the bare flag is float16, as `pretrain`'s was."""
    from electra_tf.tasks.training_options import TrainingOptions

    field, = [field for field in dataclasses.fields(TrainingOptions)
              if field.name == "mixed_precision"]
    parser.add_argument(flag_name(field), dest="mixed_precision", nargs="?",
                        const=field.metadata["const"], choices=field.metadata["choices"],
                        default=None, help=field.metadata["help"])


def add_training_arguments(parser):
    """`--strategy`, `--mixed-precision` and `--gradient-accumulation-steps`."""
    from electra_tf.tasks.training_options import TrainingOptions

    add_config_arguments(parser, TrainingOptions)
