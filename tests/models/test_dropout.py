"""electra_tf.layers.dropout: the 16-bit-mask dropout the encoder blocks use."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from electra_tf.layers.dropout import Dropout, dropout, keep_mask
from electra_tf.layers.electra_embeddings import ElectraEmbeddings
from electra_tf.layers.transformer_layer import TransformerLayer


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_mask_keeps_units_at_the_rate_independently(rate):
    mask = keep_mask([400, 1001], rate, seed=[5, 6]).numpy()  # an odd size: half a word unused
    assert mask.shape == (400, 1001)
    assert abs(mask.mean() - (1 - rate)) < 0.003
    # The two 16-bit halves of one random word decide neighbouring units: they must not agree
    # more often than independent draws would.
    pairs = mask.ravel()[: 400 * 1000].reshape(-1, 2)
    assert abs((pairs[:, 0] & pairs[:, 1]).mean() - (1 - rate) ** 2) < 0.004


def test_dropout_keeps_the_expected_value_and_its_gradient_is_the_mask():
    x = tf.random.stateless_normal([64, 1000], seed=[1, 2])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = dropout(x, 0.1, seed=[3, 4])
        loss = tf.reduce_sum(y * 2.0)
    gradient = tape.gradient(loss, x).numpy()
    kept = y.numpy() != 0
    scale = 65536 / (65536 - 6554)  # the rate rounded to 6554/65536
    np.testing.assert_allclose(y.numpy()[kept] / x.numpy()[kept], scale, rtol=1e-6)
    np.testing.assert_array_equal(gradient[kept], np.float32(2 * scale))
    assert not gradient[~kept].any()
    big = dropout(tf.ones([2000, 1000]), 0.1, seed=[7, 8])
    assert abs(float(tf.reduce_mean(big)) - 1.0) < 2e-3


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_layer_drops_in_the_inputs_dtype_and_is_identity_when_not_training(dtype):
    x = tf.ones([8, 300], dtype)
    layer = Dropout(0.25, dtype=dtype)
    y = layer(x, training=True)
    assert y.dtype == dtype
    assert 0.7 < float(tf.reduce_mean(tf.cast(y != 0, tf.float32))) < 0.8
    np.testing.assert_array_equal(layer(x, training=False), x)
    np.testing.assert_array_equal(Dropout(0.0)(x, training=True), x)


def test_layer_repeats_under_a_global_seed_and_differs_between_calls():
    def draw():
        keras.utils.set_random_seed(11)
        layer = Dropout(0.5)
        return [layer(tf.ones([4, 64]), training=True).numpy() for _ in range(2)]

    first, second = draw(), draw()
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])


def test_same_mask_forward_and_backward_under_xla():
    layer = Dropout(0.1)

    @tf.function(jit_compile=True)
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * 3.0)
        return y, tape.gradient(loss, x)

    y, gradient = forward_backward(tf.random.stateless_normal([8, 33, 17], seed=[1, 1]))
    np.testing.assert_array_equal(y.numpy() != 0, gradient.numpy() != 0)
    assert 0.85 < float(tf.reduce_mean(tf.cast(y != 0, tf.float32))) < 0.95


def test_keras_dropout_is_used_where_ours_cannot_follow():
    layer = Dropout(0.5, noise_shape=[None, 1])
    y = layer(tf.ones([3, 200]), training=True).numpy()
    assert all(len(set(row.tolist())) == 1 for row in y)  # one decision per row, Keras' way
    with pytest.raises(ValueError, match="rate"):
        keep_mask([3], 1.0, seed=[0, 0])
    with pytest.raises(ValueError, match=r"\[0, 1\); received 1.0"):
        dropout(tf.ones([3]), 1.0, seed=[0, 0])


def test_layer_round_trips_through_its_config():
    layer = Dropout(0.2, seed=3, name="drop")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone) is Dropout and clone.get_config() == layer.get_config()


def test_encoder_blocks_use_it():
    block = TransformerLayer(hidden_size=8, num_heads=2, intermediate_size=16)
    embeddings = ElectraEmbeddings(vocab_size=10, embedding_size=8, max_sequence_length=16,
                                   type_vocab_size=2)
    assert type(block.dropout) is Dropout and type(embeddings.dropout) is Dropout
