"""TrainingOptions: a fine-tuning job's strategy, precision and micro-batches per update.

`FinetuningOptions` (and through it every fine-tuning job's config) inherits
these three fields; `training_scope(config)` (or the decorator
`with_training_options` on a job function) applies them around a job; the
command line's flags come from the fields (`electra_tf.cli.config_arguments`).

>>> options = TrainingOptions(mixed_precision="bfloat16", gradient_accumulation_steps=4)
>>> options.strategy, options.mixed_precision, options.gradient_accumulation_steps
('auto', 'bfloat16', 4)
>>> with training_scope(TrainingOptions(strategy="default")) as strategy:
...     strategy.num_replicas_in_sync
1
"""

import contextlib
import dataclasses
import functools

from electra_tf.utils.strategies import STRATEGIES, build_strategy
from electra_tf.utils.config_fields import option
from electra_tf.utils.mixed_precision import (
    MIXED_PRECISION_DTYPES,
    global_dtype_policy,
    mixed_precision_dtype,
)
from electra_tf.utils.checks import is_integer


def check_gradient_accumulation_steps(value):
    """`value` if it is an integer >= 1, else a ValueError saying so.

    >>> check_gradient_accumulation_steps(0)
    Traceback (most recent call last):
    ...
    ValueError: `gradient_accumulation_steps` must be an integer >= 1 (1: no accumulation);
    received 0.
    """
    if not is_integer(value) or value < 1:
        raise ValueError("`gradient_accumulation_steps` must be an integer >= 1 (1: no "
                         f"accumulation); received {value!r}.")
    return value


# kw_only: the fields go after each job's own in `__init__`, so positional arguments keep
# meaning what they did before the jobs inherited these.
@dataclasses.dataclass(kw_only=True)
class TrainingOptions:
    """Distribution strategy, mixed precision and gradient accumulation of a training job.

    A base class for job configs that have a `batch_size`: each optimizer update
    sees `gradient_accumulation_steps` micro-batches of `batch_size` examples
    (`examples_per_update`), run one after another, so the update of a large
    batch costs the activation memory of a small one. Warmup and decay count
    updates, not micro-batches.

    Args:
        strategy: "auto", "default", "mirrored", "multiworker" or "tpu"
            (`electra_tf.utils.strategies.build_strategy`).
        mixed_precision: None (float32), "float16" or "bfloat16": the compute
            dtype; weights stay float32.
        gradient_accumulation_steps: micro-batches per optimizer update (1: none).

    >>> TrainingOptions(mixed_precision="int8")
    Traceback (most recent call last):
    ...
    ValueError: `mixed_precision` must be one of 'float16', 'bfloat16' or None (float32);
    received 'int8'.
    """

    strategy: str = option(
        "auto", "auto: a configured TPU, TF_CONFIG workers, all GPUs, or one device",
        choices=STRATEGIES)
    mixed_precision: str = option(
        None, "compute in float16 (GPUs; the bare flag) or bfloat16 (TPUs, recent GPUs and CPUs) "
        "with float32 weights (default: float32)",
        choices=MIXED_PRECISION_DTYPES, nargs="?", const="float16")
    gradient_accumulation_steps: int = option(
        1, "micro-batches of --batch-size per optimizer update; an update sees K × batch size "
        "examples, the memory of one micro-batch", metavar="K", minimum=1)

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"`strategy` must be one of {', '.join(STRATEGIES)}; received "
                             f"{self.strategy!r}.")
        self.mixed_precision = mixed_precision_dtype(self.mixed_precision)
        check_gradient_accumulation_steps(self.gradient_accumulation_steps)

    @property
    def examples_per_update(self):
        """`batch_size` × `gradient_accumulation_steps`: the batch the training data is cut in."""
        return self.batch_size * self.gradient_accumulation_steps


@contextlib.contextmanager
def training_scope(options):
    """Runs the block as `options` say; yields the `tf.distribute.Strategy`.

    Inside: Keras' global policy is "mixed_<dtype>" (float32 for None), and
    the strategy's scope is entered, so models, optimizers and metrics built
    there are distributed. The caller's policy comes back afterwards. The
    model's `compile(gradient_accumulation_steps=...)` (task models mix in
    `GradientAccumulationMixin`) and a dataset batched by
    `options.examples_per_update` do the accumulation.
    """
    with global_dtype_policy(options.mixed_precision):
        strategy = build_strategy(options.strategy)
        with strategy.scope():
            yield strategy


def with_training_options(job):
    """Makes a job `job(config, ...)` (config: a `TrainingOptions`) run in `training_scope(config)`.

    >>> import tf_keras as keras
    >>> @with_training_options
    ... def job(config):
    ...     return keras.mixed_precision.global_policy().name
    >>> job(TrainingOptions(strategy="default", mixed_precision="bfloat16"))
    'mixed_bfloat16'
    """

    @functools.wraps(job)
    def run_with_training_options(config, *args, **kwargs):
        with training_scope(config):
            return job(config, *args, **kwargs)

    return run_with_training_options
