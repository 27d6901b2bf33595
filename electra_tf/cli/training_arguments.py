"""Training flags shared by the jobs: argument parsing only.

`add_training_arguments` gives `finetune classify|qa|tag` the fields of
`electra_tf.tasks.training_options.TrainingOptions`; `add_mixed_precision_argument`
is also `pretrain`'s `--mixed-precision`. Flags left out are None, so the config's
defaults apply.
"""

import argparse

from electra_tf.pretraining.strategies import STRATEGIES
from electra_tf.utils.mixed_precision import MIXED_PRECISION_DTYPES


def add_mixed_precision_argument(parser):
    """`--mixed-precision [float16|bfloat16]`; the bare flag is float16, as `pretrain`'s was."""
    parser.add_argument(
        "--mixed-precision", nargs="?", const="float16", choices=MIXED_PRECISION_DTYPES,
        default=None,
        help="compute in float16 (GPUs; the bare flag) or bfloat16 (TPUs, recent GPUs and CPUs) "
        "with float32 weights (default: float32)")


def add_training_arguments(parser):
    """`--strategy`, `--mixed-precision` and `--gradient-accumulation-steps`."""
    parser.add_argument("--strategy", choices=STRATEGIES,
                        help="auto (default): a configured TPU, TF_CONFIG workers, all GPUs, or "
                        "one device")
    add_mixed_precision_argument(parser)
    parser.add_argument("--gradient-accumulation-steps", type=_at_least_one, metavar="K",
                        help="micro-batches of --batch-size per optimizer update (default 1); "
                        "an update sees K × batch size examples, the memory of one micro-batch")


def _at_least_one(text):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; received {text!r}")
    return value
