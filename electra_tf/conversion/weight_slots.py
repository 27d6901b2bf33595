"""The old home of `electra_tf.checkpoint_formats.weight_slots` (every weight of an electra_tf
model under its TF1 checkpoint name), re-exported for the jobs that import it from here.

>>> from electra_tf.checkpoint_formats import weight_slots
>>> model_slots is weight_slots.model_slots and Slot is weight_slots.Slot
True
"""

from electra_tf.checkpoint_formats.weight_slots import (  # noqa: F401
    ENCODER,
    HEAD,
    Slot,
    assign_slots,
    embedding_slots,
    encoder_slots,
    head_slots,
    model_slots,
)
