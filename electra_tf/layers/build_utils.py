"""Building sublayers eagerly, under their own name scopes.

Our layers create their weights in `build()` (so presets can be counted and
checkpoints loaded before any call). A sublayer built outside `__call__`
gets no name scope from Keras, and every kernel would be named `kernel:0`;
HDF5 weight files need unique names, so we open the scope ourselves.
"""

import tensorflow as tf


def build_in_scope(layer, input_shape=None):
    """`layer.build(input_shape)` with variables named `<layer.name>/<weight>`.

    >>> import tf_keras as keras
    >>> dense = keras.layers.Dense(3, name="projection")
    >>> build_in_scope(dense, (None, 4))
    >>> [(weight.name, tuple(weight.shape)) for weight in dense.weights]
    [('projection/kernel:0', (4, 3)), ('projection/bias:0', (3,))]
    """
    with tf.name_scope(layer.name):
        layer.build(input_shape)
