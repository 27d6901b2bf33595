"""Dropout whose mask costs 16 random bits a unit instead of a float32 uniform.

`tf.nn.dropout` draws a float32 uniform number per unit, compares it with
the rate, scales the input and selects it against a zero tensor: four
passes over the tensor, forward and back. Here a unit is kept when a 16-bit
slice of a random 32-bit word clears a threshold (half the random numbers),
and the kept units are scaled by one multiply with a 0-or-scale mask, which
is also the whole backward pass. Forward and backward over ELECTRA-Small's
attention probabilities (16, 4, 128, 128) took 5.6-5.9 ms against
8.1-8.6 ms for `tf.nn.dropout` on 2 cores (float32; bfloat16 5.7 against
9.3-9.6 ms).

The rate is rounded to a multiple of 1/65536 (0.1 drops 6554/65536 =
0.100006 of the units) and the kept units are scaled by the inverse of the
rounded keep probability, so the expected output is the input exactly.
"""

import tensorflow as tf
import tf_keras as keras

from electra_tf.utils.checks import is_number

_LEVELS = 65536  # a unit's 16 random bits take this many values


def keep_mask(shape, rate, seed):
    """Which units dropout keeps: each with probability 1 - rate (rounded to 1/65536).

    Pure and stateless: the same `seed` gives the same mask.

    Args:
        shape: the input's shape (a 1-D int tensor or list).
        rate: float in [0, 1), the fraction of units to drop.
        seed: (2,) int32 or int64 stateless seed.

    Returns:
        bool tensor of `shape`.

    >>> mask = keep_mask([1000, 100], 0.25, seed=[1, 2])
    >>> round(float(tf.reduce_mean(tf.cast(mask, tf.float32))), 2)
    0.75
    >>> bool(tf.reduce_all(mask == keep_mask([1000, 100], 0.25, seed=[1, 2])))
    True
    """
    _check_rate(rate)
    shape = tf.convert_to_tensor(shape, tf.int32)
    size = tf.reduce_prod(shape)
    words = tf.random.stateless_uniform(  # (ceil(size / 2),) uniform 32-bit words
        [(size + 1) // 2], seed, minval=None, maxval=None, dtype=tf.uint32)
    halves = tf.reshape(tf.bitcast(words, tf.int16), [-1])[:size]  # uniform over [-32768, 32767]
    threshold = tf.constant(_dropped_levels(rate) - _LEVELS // 2, tf.int16)
    return tf.reshape(halves >= threshold, shape)


def dropout(x, rate, seed):
    """`x` with units zeroed with probability `rate` and the rest scaled up to keep the mean.

    Args:
        x: a float tensor.
        rate: float in [0, 1).
        seed: (2,) stateless seed (see `keep_mask`).

    Returns:
        a tensor like `x`. Its gradient is the same mask times the incoming gradient.

    >>> y = dropout(tf.ones([4, 1000]), 0.5, seed=[3, 4])
    >>> sorted(set(y.numpy().ravel().tolist()))
    [0.0, 2.0]
    """
    scale = keep_scale(rate)
    mask = tf.cast(keep_mask(tf.shape(x), rate, seed), x.dtype) * tf.cast(scale, x.dtype)
    return x * mask


def keep_scale(rate):
    """What dropout multiplies the kept units by: 1 / P(keep), for the rate rounded to 1/65536.

    >>> keep_scale(0.5)
    2.0
    """
    _check_rate(rate)  # before dividing: rate 1 would divide by zero
    return _LEVELS / (_LEVELS - _dropped_levels(rate))


def _dropped_levels(rate):
    return int(round(rate * _LEVELS))


def _check_rate(rate):
    if not is_number(rate) or not 0 <= rate < 1:
        raise ValueError(f"The dropout `rate` must be a number in [0, 1); received {rate!r}.")


@keras.utils.register_keras_serializable(package="electra_tf")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` with the cheaper mask of `dropout` when training.

    Same arguments, config and seeding: the layer's seed (or, without one,
    the global seed of `tf.random.set_seed` / `keras.utils.set_random_seed`)
    fixes a stateful draw of each call's stateless seed, so runs repeat as
    with Keras' layer. A `noise_shape`, a tensor rate or Keras' experimental
    `tf.random.Generator` mode fall back to Keras' own dropout.

    >>> layer = Dropout(0.5, seed=0)
    >>> y = layer(tf.ones([2, 1000]), training=True)
    >>> sorted(set(y.numpy().ravel().tolist()))
    [0.0, 2.0]
    >>> bool(tf.reduce_all(layer(tf.ones([2, 3]), training=False) == 1.0))
    True
    """

    def call(self, inputs, training=None):
        if self._falls_back():
            return super().call(inputs, training=training)
        if self.rate == 0:
            return tf.identity(inputs)
        if training is None:
            training = keras.backend.learning_phase()

        def dropped_inputs():
            return dropout(inputs, self.rate, self._call_seed())

        return tf.__internal__.smart_cond.smart_cond(
            training, dropped_inputs, lambda: tf.identity(inputs))

    def training_keep_mask(self, inputs):
        """`(keep, scale)` of a training call on `inputs`, for kernels that apply dropout.

        `inputs * keep * scale` is what `self(inputs, training=True)` returns,
        with a mask drawn as this layer draws it: `keep` is a bool tensor of
        `inputs`' shape (a scalar True at rate 0), `scale` a Python float.
        None where the layer falls back to Keras' dropout (see the class).

        >>> keep, scale = Dropout(0.25, seed=0).training_keep_mask(tf.ones([4, 1000]))
        >>> abs(float(tf.reduce_mean(tf.cast(keep, tf.float32))) - 0.75) < 0.03, round(scale, 3)
        (True, 1.333)
        """
        if self._falls_back():
            return None
        if self.rate == 0:
            return tf.constant(True), 1.0
        return keep_mask(tf.shape(inputs), self.rate, self._call_seed()), keep_scale(self.rate)

    def _falls_back(self):
        """Whether this layer leaves the call to Keras' own dropout."""
        generator = self._random_generator
        return (self.noise_shape is not None or not isinstance(self.rate, (int, float))
                or generator._rng_type != generator.RNG_LEGACY_STATEFUL)

    def _call_seed(self):
        """A stateful draw (seeded like Keras' own dropout op) picks each call's stateless seed."""
        return tf.random.uniform([2], minval=-2**31, maxval=2**31 - 1, dtype=tf.int32,
                                 seed=self._random_generator.make_legacy_seed())
