"""fused_kernels: the encoder's element-wise training work as XLA kernels on CPU hosts."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from electra_tf.layers import fused_kernels
from electra_tf.layers.dropout import Dropout
from electra_tf.layers.fused_kernels import (
    bias_gelu, dropout_add_layer_norm, fuses_kernels, unfused_kernels)
from electra_tf.layers.transformer_layer import TransformerLayer, attention_bias_from_mask

FUSED = [True, False]


def _in_mode(fused, function):
    if fused:
        return function()
    with unfused_kernels():
        return function()


def _gradients(function, inputs, dy):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        y = function(*inputs)
        loss = tf.reduce_sum(tf.cast(y, tf.float64) * tf.cast(dy, tf.float64))
    return y, tape.gradient(loss, inputs)


def _exact_gelu(h):
    return tf.nn.gelu(h, approximate=False)


def test_kernels_are_fused_on_this_cpu_host_and_not_inside_the_switch():
    assert not fused_kernels.has_accelerator()  # CI runs on CPUs
    assert fuses_kernels()
    with unfused_kernels():
        assert not fuses_kernels()
    assert fuses_kernels()


@pytest.mark.parametrize("fused", FUSED)
def test_bias_gelu_matches_float64_gelu_in_value_and_both_gradients(fused):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(scale=4, size=(64, 48)), tf.float32)
    bias = tf.constant(rng.normal(size=48), tf.float32)
    dy = tf.constant(rng.normal(size=(64, 48)), tf.float32)
    y, (dx, dbias) = _in_mode(fused, lambda: _gradients(bias_gelu, [x, bias], dy))
    x64, bias64, dy64 = (tf.cast(t, tf.float64) for t in (x, bias, dy))
    y64, (dx64, dbias64) = _gradients(lambda a, b: _exact_gelu(a + b), [x64, bias64], dy64)
    assert y.dtype == tf.float32 and dx.dtype == tf.float32 and dbias.dtype == tf.float32
    np.testing.assert_allclose(y, y64, rtol=1e-6, atol=2e-6)
    np.testing.assert_allclose(dx, dx64, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(dbias, dbias64, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("fused", FUSED)
def test_bias_gelu_keeps_bfloat16_within_one_rounding(fused):
    rng = np.random.default_rng(1)
    x = tf.cast(rng.normal(scale=3, size=(32, 16)), tf.bfloat16)
    bias = tf.cast(rng.normal(size=16), tf.bfloat16)
    y = _in_mode(fused, lambda: bias_gelu(x, bias))
    assert y.dtype == tf.bfloat16
    reference = _exact_gelu(tf.cast(x, tf.float64) + tf.cast(bias, tf.float64))
    error = np.abs(tf.cast(y, tf.float64) - reference)
    # One rounding of x·Φ(x) to bfloat16 (the sum x + bias is exact in float32).
    assert (error <= 2.0 ** -8 * np.abs(reference) + 1e-6).all()


def _reference_dropout_add_layer_norm(x, branch, bias, keep, scale, gamma, beta, epsilon):
    """The unfused reference, as tf-keras' LayerNormalization computes it (in x's dtype)."""
    total = x + tf.where(keep, (branch + bias) * scale, tf.zeros_like(branch))
    mean, variance = tf.nn.moments(total, axes=[-1], keepdims=True)
    return tf.nn.batch_normalization(total, mean, variance, beta, gamma, epsilon)


def _layer_norm_case(seed=0, shape=(3, 5, 16)):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(scale=2, size=shape) + 1, tf.float32)
    branch = tf.constant(rng.normal(size=shape), tf.float32)
    bias = tf.constant(rng.normal(size=shape[-1:]), tf.float32)
    keep = tf.constant(rng.random(shape) > 0.3)
    gamma = tf.constant(rng.normal(size=shape[-1:]) + 1, tf.float32)
    beta = tf.constant(rng.normal(size=shape[-1:]), tf.float32)
    dy = tf.constant(rng.normal(size=shape), tf.float32)
    return x, branch, bias, keep, gamma, beta, dy


@pytest.mark.parametrize("fused", FUSED)
def test_dropout_add_layer_norm_matches_keras_layer_norm_in_value_and_every_gradient(fused):
    x, branch, bias, keep, gamma, beta, dy = _layer_norm_case()
    scale = 1 / 0.7

    def fused_kernel(x, branch, bias, gamma, beta):
        return dropout_add_layer_norm(x, branch, bias, keep, scale, gamma, beta, 1e-12)

    def reference(x, branch, bias, gamma, beta):
        return _reference_dropout_add_layer_norm(x, branch, bias, keep, scale, gamma, beta, 1e-12)

    inputs = [x, branch, bias, gamma, beta]
    y, gradients = _in_mode(fused, lambda: _gradients(fused_kernel, inputs, dy))
    y_ref, gradients_ref = _gradients(reference, [tf.cast(t, tf.float64) for t in inputs], dy)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=2e-6)
    norm = keras.layers.LayerNormalization(epsilon=1e-12)  # the layer the encoder keeps
    norm.build(x.shape)
    norm.set_weights([gamma.numpy(), beta.numpy()])
    np.testing.assert_allclose(y, norm(x + tf.where(keep, (branch + bias) * scale, 0.0)),
                               rtol=1e-5, atol=2e-6)
    for name, gradient, expected in zip(("x", "branch", "bias", "gamma", "beta"), gradients,
                                        gradients_ref):
        assert gradient.dtype == tf.float32, name
        np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-5, err_msg=name)
    # Dropped units pass no gradient back into the branch.
    assert np.all(gradients[1].numpy()[~keep.numpy()] == 0)
    assert np.any(gradients[1].numpy()[keep.numpy()] != 0)


@pytest.mark.parametrize("fused", FUSED)
def test_dropout_add_layer_norm_without_dropout_or_bias(fused):
    x, branch, _, _, gamma, beta, dy = _layer_norm_case(seed=1)
    y, (dx, dbranch, dbias) = _in_mode(fused, lambda: _gradients(
        lambda x, branch, bias: dropout_add_layer_norm(x, branch, bias, True, 1.0, gamma, beta,
                                                       1e-12),
        [x, branch, tf.zeros([])], dy))
    norm = keras.layers.LayerNormalization(epsilon=1e-12)
    norm.build(x.shape)
    norm.set_weights([gamma.numpy(), beta.numpy()])
    np.testing.assert_allclose(y, norm(x + branch), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(dx, dbranch, atol=0)
    assert dbias.shape == ()


def test_dropout_add_layer_norm_in_bfloat16_normalises_in_float32():
    x, branch, bias, keep, gamma, beta, _ = _layer_norm_case(seed=2)
    x16, branch16 = tf.cast(x, tf.bfloat16), tf.cast(branch, tf.bfloat16)
    y = dropout_add_layer_norm(x16, branch16, bias, keep, 2.0, gamma, beta, 1e-12)
    assert y.dtype == tf.bfloat16
    expected = _reference_dropout_add_layer_norm(
        tf.cast(x16, tf.float64), tf.cast(branch16, tf.float64), tf.cast(bias, tf.float64), keep,
        2.0, tf.cast(gamma, tf.float64), tf.cast(beta, tf.float64), 1e-12)
    error = np.abs(tf.cast(y, tf.float64) - expected)
    assert (error <= 2.0 ** -8 * np.abs(expected) + 1e-5).all()  # one rounding, at the end


def test_dropout_training_keep_mask_is_the_mask_the_layer_applies():
    x = tf.random.stateless_normal([8, 500], seed=[0, 2])
    tf.random.set_seed(7)  # the stateful draw of each call's seed starts over
    applied = Dropout(0.3, seed=5)(x, training=True)
    tf.random.set_seed(7)
    keep, scale = Dropout(0.3, seed=5).training_keep_mask(x)
    np.testing.assert_allclose(applied, tf.where(keep, x * scale, 0.0), rtol=1e-6)
    assert abs(float(tf.reduce_mean(tf.cast(keep, tf.float32))) - 0.7) < 0.02
    keep, scale = Dropout(0.0).training_keep_mask(x)
    assert keep.shape == () and bool(keep) and scale == 1.0
    assert Dropout(0.3, noise_shape=[8, 1]).training_keep_mask(x) is None  # Keras' own dropout


def _xla_calls(graph):
    """Names of the functions that `graph`'s call ops run with `_XlaMustCompile`."""
    library = {f.signature.name: f for f in graph.as_graph_def().library.function}
    compiled = {name for name, f in library.items() if f.attr["_XlaMustCompile"].b}
    return {op.get_attr("f").name for op in graph.get_operations()
            if op.type in ("PartitionedCall", "StatefulPartitionedCall")} & compiled


def _layer_and_inputs(dropout_rate=0.0):
    layer = TransformerLayer(hidden_size=16, num_heads=2, intermediate_size=32,
                             dropout_rate=dropout_rate)
    x = tf.random.stateless_normal([2, 5, 16], seed=[0, 1])
    bias = attention_bias_from_mask(tf.constant([[1] * 5, [1, 1, 1, 0, 0]]), layer.compute_dtype)
    layer(x, bias)
    return layer, x, bias


def _traced_graph(layer, x, bias, training):
    def forward_and_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, bias, training=training)
        return tape.gradient(y, [x] + layer.trainable_variables)

    return tf.function(forward_and_backward).get_concrete_function(x).graph


def test_transformer_layer_trains_through_the_kernels_and_infers_without_them():
    layer, x, bias = _layer_and_inputs()
    # Forward and backward: bias + GELU once, dropout + add + LayerNorm twice (shared functions).
    assert len(_xla_calls(_traced_graph(layer, x, bias, True))) >= 4
    assert not _xla_calls(_traced_graph(layer, x, bias, False))
    with unfused_kernels():
        assert not _xla_calls(_traced_graph(layer, x, bias, True))


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_transformer_layer_fused_training_equals_the_keras_layers(policy):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        layer, x, bias = _layer_and_inputs()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    weights = tf.sin(tf.range(16, dtype=tf.float32))

    def run():
        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, bias, training=True)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
            return y, tape.gradient(loss, [x] + layer.trainable_variables)
        return step(x)

    y, gradients = run()
    with unfused_kernels():
        y_ref, gradients_ref = run()
    # float32: rounding only; bfloat16: the fused adds are in float32, Keras' in bfloat16.
    tolerance = {"float32": 1e-5, "mixed_bfloat16": 0.05}[policy]
    np.testing.assert_allclose(tf.cast(y, tf.float32), tf.cast(y_ref, tf.float32),
                               atol=tolerance * 2)
    for variable, gradient, expected in zip([None] + layer.trainable_variables, gradients,
                                            gradients_ref):
        name = variable.name if variable is not None else "x"
        scale = float(tf.reduce_max(tf.abs(tf.cast(expected, tf.float32))))
        np.testing.assert_allclose(tf.cast(gradient, tf.float32), tf.cast(expected, tf.float32),
                                   atol=tolerance * max(scale, 1.0), err_msg=name)


def test_transformer_layer_fused_training_is_inference_plus_dropout():
    layer, x, bias = _layer_and_inputs(dropout_rate=0.0)
    # Without dropout, training (the XLA kernels) computes what inference (the Keras layers) does.
    np.testing.assert_allclose(layer(x, bias, training=True), layer(x, bias, training=False),
                               atol=1e-5)
    layer, x, bias = _layer_and_inputs(dropout_rate=0.5)
    first, second = layer(x, bias, training=True), layer(x, bias, training=True)
    assert not np.allclose(first, second)  # a new mask each call
    assert not np.allclose(first, layer(x, bias, training=False))


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("shape", [(3, 5, 97), (7, 11)])
def test_sparse_softmax_cross_entropy_matches_tensorflows_in_value_and_gradient(fused, shape):
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(0.0, 4.0, shape), tf.float32)
    labels = tf.constant(rng.integers(0, shape[-1], shape[:-1]), tf.int64)
    dnll = tf.constant(rng.normal(size=shape[:-1]), tf.float32)

    def both(function):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            nll = function()
            loss = tf.reduce_sum(nll * dnll)
        return nll, tape.gradient(loss, logits)

    nll, gradient = _in_mode(fused, lambda: both(
        lambda: fused_kernels.sparse_softmax_cross_entropy(logits, labels)))
    expected_nll, expected_gradient = both(lambda: tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits))
    assert nll.dtype == tf.float32 and nll.shape == shape[:-1]
    np.testing.assert_allclose(nll.numpy(), expected_nll.numpy(), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(gradient.numpy(), expected_gradient.numpy(), rtol=1e-5, atol=1e-6)
    # And against float64 arithmetic done by hand.
    log_probabilities = tf.nn.log_softmax(tf.cast(logits, tf.float64))
    picked = tf.gather(log_probabilities, labels[..., None], batch_dims=len(shape) - 1)[..., 0]
    np.testing.assert_allclose(nll.numpy(), -picked.numpy(), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("fused", FUSED)
def test_sparse_softmax_cross_entropy_of_bfloat16_logits_is_float32_with_a_bfloat16_gradient(fused):
    rng = np.random.default_rng(1)
    logits32 = tf.constant(rng.normal(0.0, 3.0, (4, 6, 50)), tf.float32)
    logits = tf.cast(logits32, tf.bfloat16)
    labels = tf.constant(rng.integers(0, 50, (4, 6)), tf.int32)

    def run():
        with tf.GradientTape() as tape:
            tape.watch(logits)
            nll = fused_kernels.sparse_softmax_cross_entropy(logits, labels)
            loss = tf.reduce_sum(nll)
        return nll, tape.gradient(loss, logits)

    nll, gradient = _in_mode(fused, run)
    assert nll.dtype == tf.float32 and gradient.dtype == tf.bfloat16
    # The loss of the bfloat16 logits, computed in float32: exact up to float32 rounding.
    expected = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=tf.cast(logits, tf.float32))
    np.testing.assert_allclose(nll.numpy(), expected.numpy(), rtol=1e-6, atol=1e-5)
    probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
    expected_gradient = probabilities - tf.one_hot(labels, 50)
    np.testing.assert_allclose(tf.cast(gradient, tf.float32).numpy(), expected_gradient.numpy(),
                               atol=4e-3)  # one bfloat16 rounding of values in [-1, 1]


def test_masked_lm_loss_runs_the_fused_cross_entropy_in_a_traced_training_step():
    from electra_tf.pretraining.losses import masked_lm_loss

    logits = tf.Variable(tf.random.stateless_normal((2, 3, 40), seed=[1, 2]))
    ids = tf.constant([[1, 5, 39], [0, 7, 2]])
    weights = tf.constant([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            total, count = masked_lm_loss(logits, ids, weights)
            loss = total / count
        return loss, tape.gradient(loss, logits)

    loss, gradient = step()
    op_types = {op.type for op in step.get_concrete_function().graph.get_operations()}
    assert "SparseSoftmaxCrossEntropyWithLogits" not in op_types  # the XLA kernels ran instead
    expected_nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=logits)
    expected = float(tf.reduce_sum(expected_nll * weights) / tf.reduce_sum(weights))
    assert abs(float(loss) - expected) < 1e-5
    expected_gradient = (tf.nn.softmax(logits) - tf.one_hot(ids, 40)) * weights[..., None] / 5.0
    np.testing.assert_allclose(gradient.numpy(), expected_gradient.numpy(), atol=1e-6)


def _plain_softmax_dropout(scores, bias, keep, scale):
    probs = tf.nn.softmax(tf.cast(scores, tf.float64) + tf.cast(bias, tf.float64), axis=-1)
    return tf.where(keep, probs * scale, tf.zeros_like(probs))


@pytest.mark.parametrize("fused", FUSED)
def test_softmax_dropout_matches_float64_in_value_and_gradient(fused):
    rng = np.random.default_rng(2)
    scores = tf.constant(rng.normal(0.0, 3.0, (2, 3, 5, 5)), tf.float32)
    bias = tf.constant([[[[0.0, 0.0, 0.0, -10000.0, -10000.0]]], [[[0.0] * 5]]], tf.float32)
    keep = tf.constant(rng.random((2, 3, 5, 5)) > 0.3)
    dy = tf.constant(rng.normal(size=(2, 3, 5, 5)), tf.float32)
    y, (gradient,) = _in_mode(fused, lambda: _gradients(
        lambda s: fused_kernels.softmax_dropout(s, bias, keep, 1 / 0.7), [scores], dy))
    y_ref, (gradient_ref,) = _gradients(
        lambda s: _plain_softmax_dropout(s, bias, keep, 1 / 0.7), [tf.cast(scores, tf.float64)],
        tf.cast(dy, tf.float64))
    assert y.dtype == tf.float32 and gradient.dtype == tf.float32
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), atol=1e-6)
    np.testing.assert_allclose(gradient.numpy(), gradient_ref.numpy(), atol=1e-5)
    assert float(tf.reduce_max(tf.abs(y[0, :, :, 3:]))) == 0.0  # padding gets probability 0
    assert float(tf.reduce_max(tf.abs(gradient[0, :, :, 3:]))) == 0.0
    np.testing.assert_array_equal(y.numpy() == 0.0, ~keep.numpy() | (y_ref.numpy() == 0.0))


@pytest.mark.parametrize("fused", FUSED)
def test_softmax_dropout_in_bfloat16_computes_in_float32_and_without_dropout_is_softmax(fused):
    rng = np.random.default_rng(3)
    scores = tf.cast(tf.constant(rng.normal(0.0, 3.0, (2, 2, 4, 6)), tf.float32), tf.bfloat16)
    bias = tf.zeros([2, 1, 1, 6], tf.bfloat16)
    dy = tf.cast(tf.constant(rng.normal(size=(2, 2, 4, 6)), tf.float32), tf.bfloat16)
    y, (gradient,) = _in_mode(fused, lambda: _gradients(
        lambda s: fused_kernels.softmax_dropout(s, bias, True, 1.0), [scores], dy))
    y_ref, (gradient_ref,) = _gradients(
        lambda s: tf.nn.softmax(s, axis=-1), [tf.cast(scores, tf.float64)], tf.cast(dy, tf.float64))
    assert y.dtype == tf.bfloat16 and gradient.dtype == tf.bfloat16
    # One bfloat16 rounding of the result (8 bits): float32 math inside.
    np.testing.assert_allclose(tf.cast(y, tf.float64), y_ref, rtol=2 ** -8, atol=1e-6)
    np.testing.assert_allclose(tf.cast(gradient, tf.float64), gradient_ref, atol=0.01)


def test_transformer_layer_attention_runs_the_softmax_dropout_kernel_when_training():
    layer, x, bias = _layer_and_inputs()
    trained = _traced_graph(layer, x, bias, True)
    op_types = [op.type for op in trained.get_operations()]
    assert "Softmax" not in op_types  # the attention's softmax is inside the XLA kernel
    with unfused_kernels():
        assert "Softmax" in [op.type for op in _traced_graph(layer, x, bias, True).get_operations()]
    assert "Softmax" in [op.type for op in _traced_graph(layer, x, bias, False).get_operations()]


def test_inside_xla_every_bfloat16_widens_to_the_float32_tf_cast_gives():
    every = tf.bitcast(tf.constant(np.arange(2**16, dtype=np.uint16)), tf.bfloat16)  # all 65,536
    widened = tf.function(lambda x: fused_kernels._cast(x, tf.float32), jit_compile=True)(every)
    expected = tf.cast(every, tf.float32)  # eager: TensorFlow's own kernel
    nan = np.isnan(expected.numpy())
    assert widened.dtype == tf.float32 and nan.sum() == 254  # 2 signs × 127 NaN payloads
    np.testing.assert_array_equal(np.isnan(widened.numpy()), nan)
    np.testing.assert_array_equal(  # bit for bit: -0.0, subnormals, infinities
        tf.bitcast(widened, tf.uint32).numpy()[~nan], tf.bitcast(expected, tf.uint32).numpy()[~nan])


def test_inside_xla_float32_rounds_to_the_bfloat16_tf_cast_gives():
    rng = np.random.default_rng(0)
    random_bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    # Ties (dropped bits exactly 0x8000) with an even and an odd kept part, just below and
    # above them, the largest finite float32, infinities, -0.0, subnormals and NaNs whose
    # payload would carry into the exponent if rounded as a number.
    edges = np.array([0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0x7F7FFFFF, 0xFF7FFFFF,
                      0x7F800000, 0xFF800000, 0x80000000, 0x00000001, 0x00008000, 0x807FFFFF,
                      0x7F800001, 0x7FFFFFFF, 0xFFC00000, 0x7FBFFFFF], np.uint32)
    values = tf.bitcast(tf.constant(np.concatenate([random_bits, edges])), tf.float32)
    rounded = tf.function(lambda y: fused_kernels._cast(y, tf.bfloat16), jit_compile=True)(values)
    expected = tf.cast(values, tf.bfloat16)
    nan = np.isnan(tf.cast(expected, tf.float32).numpy())
    assert rounded.dtype == tf.bfloat16 and nan[-4:].all()
    np.testing.assert_array_equal(np.isnan(tf.cast(rounded, tf.float32).numpy()), nan)
    np.testing.assert_array_equal(tf.bitcast(rounded, tf.uint16).numpy()[~nan],
                                  tf.bitcast(expected, tf.uint16).numpy()[~nan])
    # Round to nearest even: 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷ and goes to 1.
    assert tf.cast(rounded[-16], tf.float32).numpy() == 1.0


def test_the_kernels_convert_bfloat16_with_integer_ops_inside_xla_and_tf_cast_outside():
    def cast_ops(function, *args):
        graph = function.get_concrete_function(*args).graph
        return sorted({op.type for op in graph.get_operations()} & {"Cast", "Bitcast"})

    x = tf.zeros([4, 8], tf.bfloat16)
    bias = tf.zeros([8], tf.float32)
    # The XLA kernel: bfloat16 in and out through Bitcast; the only Casts are 16 <-> 32-bit ints.
    graph = fused_kernels._xla_bias_gelu_forward.get_concrete_function(x, bias).graph
    casts = [op for op in graph.get_operations() if op.type == "Cast"]
    assert {op.get_attr("SrcT") for op in casts} | {op.get_attr("DstT") for op in casts} <= {
        tf.uint16, tf.uint32, tf.float32}
    assert "Bitcast" in cast_ops(fused_kernels._xla_bias_gelu_forward, x, bias)
    # The same function traced for the unfused path keeps TensorFlow's Cast.
    plain = tf.function(fused_kernels._bias_gelu_forward, autograph=False)
    assert cast_ops(plain, x, bias) == ["Cast"]
