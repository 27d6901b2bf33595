"""training_gelu: the encoder's GELU in training graphs (float32 math, written-out gradient)."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.layers.fused_kernels import unfused_kernels
from electra_tf.layers.transformer_layer import TransformerLayer, gelu, training_gelu


def _value_and_gradient(function, x, dy):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = function(x)
        loss = tf.reduce_sum(tf.cast(y, tf.float64) * tf.cast(dy, tf.float64))
    return y, tape.gradient(loss, x)


def test_float32_values_and_gradients_match_exact_gelu_in_float64():
    x = tf.constant(np.linspace(-12, 12, 20001), tf.float32)
    dy = tf.constant(np.random.default_rng(0).normal(size=20001), tf.float32)
    y, gradient = _value_and_gradient(training_gelu, x, dy)
    y64, gradient64 = _value_and_gradient(gelu, tf.cast(x, tf.float64), tf.cast(dy, tf.float64))
    np.testing.assert_allclose(y.numpy(), y64.numpy(), rtol=1e-6, atol=2e-6)
    np.testing.assert_allclose(gradient.numpy(), gradient64.numpy(), rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
def test_low_precision_keeps_its_dtype_and_is_no_worse_than_tf_nn_gelu(dtype):
    x = tf.cast(tf.constant(np.linspace(-8, 8, 4001), tf.float32), dtype)
    dy = tf.cast(tf.constant(np.random.default_rng(1).normal(size=4001), tf.float32), dtype)
    y, gradient = _value_and_gradient(training_gelu, x, dy)
    assert y.dtype == dtype and gradient.dtype == dtype
    y64, gradient64 = _value_and_gradient(gelu, tf.cast(x, tf.float64), tf.cast(dy, tf.float64))
    y_ref, gradient_ref = _value_and_gradient(gelu, x, dy)  # autodiff in `dtype`, as before

    def errors(a, b):
        return np.abs(tf.cast(a, tf.float64).numpy() - b.numpy())

    unit_roundoff = {tf.bfloat16: 2.0 ** -8, tf.float16: 2.0 ** -11}[dtype]
    # One rounding of y to `dtype`, two of the gradient (the derivative, then its product
    # with dy), plus float32's 1 + erf cancellation far left of 0 (below 2e-6).
    assert (errors(y, y64) <= unit_roundoff * np.abs(y64.numpy()) + 2e-6).all()
    assert (errors(gradient, gradient64)
            <= 2 * unit_roundoff * np.abs(gradient64.numpy()) + 2e-6).all()
    # On average no worse than autodiff in `dtype`, which the encoder used before.
    assert np.abs(tf.cast(gradient, tf.float64) - gradient64).mean() <= 1.05 * np.abs(
        tf.cast(gradient_ref, tf.float64) - gradient64).mean()


def test_transformer_layer_uses_it_only_when_training():
    layer = TransformerLayer(hidden_size=8, num_heads=2, intermediate_size=16)
    x = tf.random.stateless_normal([2, 5, 8], seed=[0, 1])
    bias = tf.zeros([2, 1, 1, 5])

    def op_types(training):
        graph = tf.function(lambda x: layer(x, bias, training=training)).get_concrete_function(
            x).graph
        return {op.type for op in graph.get_operations()}

    # (On a CPU host the training graph's GELU is an XLA kernel: test_fused_kernels.py.)
    with unfused_kernels():
        assert "Erf" in op_types(True) and "Erfc" not in op_types(True)
    # Inference keeps tf.nn.gelu: the form TF fuses into MatMul + BiasAdd and TFLite into GELU.
    assert "Erfc" in op_types(False) and "Erf" not in op_types(False)
    layer_eval = layer(x, bias, training=False)
    np.testing.assert_allclose(layer_eval, layer(x, bias, training=None), atol=0)
