"""Mixed precision by name: "float16" or "bfloat16" computation on float32 weights, or None.

One vocabulary for every training job (`PretrainingConfig.mixed_precision`, the
fine-tuning configs' `mixed_precision`, `--mixed-precision` on the command line):

>>> mixed_precision_dtype("bfloat16"), mixed_precision_dtype(None)
('bfloat16', None)
>>> with global_dtype_policy("bfloat16"):
...     keras.mixed_precision.global_policy().name
'mixed_bfloat16'
"""

import contextlib
import warnings

import tf_keras as keras

# Keras' "mixed_<dtype>" policies: float16 (GPUs; needs loss scaling, which `compile` adds by
# wrapping the optimizer in a LossScaleOptimizer) and bfloat16 (TPUs, recent GPUs and CPUs with
# bfloat16 units; float32's exponent range, so no loss scaling).
MIXED_PRECISION_DTYPES = ("float16", "bfloat16")


def mixed_precision_dtype(value):
    """`value` checked: "float16", "bfloat16" or None (float32).

    The booleans of older configs still work, with a DeprecationWarning:
    True was mixed_float16, False float32.

    >>> mixed_precision_dtype("float16")
    'float16'
    >>> mixed_precision_dtype("fp16")
    Traceback (most recent call last):
    ...
    ValueError: `mixed_precision` must be one of 'float16', 'bfloat16' or None (float32);
    received 'fp16'.
    """
    if isinstance(value, bool):
        warnings.warn(
            f"mixed_precision={value} is deprecated; pass "
            f"{'float16' if value else None!r} (or 'bfloat16') instead.",
            DeprecationWarning, stacklevel=3)
        return "float16" if value else None
    if value is None or value in MIXED_PRECISION_DTYPES:
        return value
    raise ValueError(
        "`mixed_precision` must be one of "
        f"{', '.join(map(repr, MIXED_PRECISION_DTYPES))} or None (float32); received {value!r}.")


@contextlib.contextmanager
def global_dtype_policy(mixed_precision):
    """Keras' global policy "mixed_<dtype>" (float32 for None) inside the block; the caller's after.

    Models built inside compute in `mixed_precision` and keep float32 weights;
    the caller's policy comes back even when the block raises.
    """
    previous = keras.mixed_precision.global_policy()
    dtype = mixed_precision_dtype(mixed_precision)
    keras.mixed_precision.set_global_policy(f"mixed_{dtype}" if dtype else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
