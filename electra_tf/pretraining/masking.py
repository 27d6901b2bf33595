"""Moved to `electra_tf.preprocessing.masking`: masking runs in the input pipeline
(`electra_tf.data`) as well as in the train step. This old path re-exports it.

>>> from electra_tf.preprocessing import masking
>>> mask_tokens is masking.mask_tokens
True
"""

from electra_tf.preprocessing.masking import (  # noqa: F401
    MASK_TOKEN_PROBABILITY,
    mask_tokens,
    max_predictions_per_seq,
    positions_to_mask,
    scatter_update,
)
