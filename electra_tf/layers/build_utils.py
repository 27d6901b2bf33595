"""Building sublayers eagerly, under their own name scopes.

Our layers create their weights in `build()` (so presets can be counted and
checkpoints loaded before any call). A sublayer built outside `__call__`
gets no name scope from Keras, and every kernel would be named `kernel:0`;
HDF5 weight files need unique names, so we open the scope ourselves.
"""

import tensorflow as tf


def build_in_scope(layer, input_shape=None):
    """`layer.build(input_shape)` with variables named `<layer.name>/<weight>`."""
    with tf.name_scope(layer.name):
        layer.build(input_shape)
