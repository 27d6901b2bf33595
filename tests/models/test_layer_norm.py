"""LayerNorm at inference on a CPU host: Keras' function, one oneDNN kernel (electra_tf/layers/layer_norm.py)."""

import collections

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import TINY, executed_ops, make_inputs
from electra_tf import ElectraEncoder
from electra_tf.layers.layer_norm import (
    ONE_KERNEL_MIN_ROWS, apply_layer_norm, choose_layer_norms, layer_norm,
    normalizes_in_one_kernel, one_kernel_layer_norms, plain_layer_norms)
from electra_tf.utils.onednn import onednn_enabled


def keras_layer_norm(epsilon, width, dtype=None):
    norm = keras.layers.LayerNormalization(epsilon=epsilon, dtype=dtype)
    norm.build((None, None, width))
    norm.gamma.assign(tf.random.stateless_normal([width], seed=[1, 2]) + 1.0)
    norm.beta.assign(tf.random.stateless_normal([width], seed=[3, 4]))
    return norm


@pytest.mark.parametrize("epsilon,spread", [(1e-12, 3.0), (1e-3, 0.01)])
def test_layer_norm_is_keras_layer_norm_in_values_and_gradients(epsilon, spread):
    """Values and gradients (x, gamma, beta) of Keras' layer, also where epsilon
    matters (rows with variance 1e-4 against epsilon 1e-3): it is passed through,
    not raised to fused_batch_norm's 1.001e-5 floor."""
    norm = keras_layer_norm(epsilon, 16)
    x = tf.random.stateless_normal([3, 5, 16], seed=[5, 6]) * spread + 2.0
    upstream = tf.random.stateless_normal([3, 5, 16], seed=[7, 8])

    def value_and_gradients(function):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
            loss = tf.reduce_sum(y * upstream)
        return [y] + tape.gradient(loss, [x, norm.gamma, norm.beta])

    ours = value_and_gradients(lambda x: layer_norm(x, norm.gamma, norm.beta, norm.epsilon))
    theirs = value_and_gradients(norm)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
    if epsilon == 1e-3:  # the same rows normalised with epsilon 1e-12 differ plainly
        tight = layer_norm(x, norm.gamma, norm.beta, 1e-12)
        assert float(tf.reduce_max(tf.abs(tight - ours[0]))) > 0.1


def test_layer_norm_in_bfloat16_is_keras_mixed_precision_layer_norm():
    """Under mixed_bfloat16: bfloat16 in and out, as close to the float32 function as
    Keras' own mixed-precision layer (which normalises in float32) is."""
    norm = keras_layer_norm(1e-12, 64, dtype="mixed_bfloat16")
    x32 = tf.random.stateless_normal([4, 8, 64], seed=[9, 10]) * 3.0 + 1.0
    x = tf.cast(x32, tf.bfloat16)
    exact = layer_norm(tf.cast(x, tf.float32), norm.gamma, norm.beta, 1e-12)
    ours = layer_norm(x, norm.gamma, norm.beta, 1e-12)
    theirs = norm(x)
    assert ours.dtype == theirs.dtype == tf.bfloat16
    ours_error = float(tf.reduce_max(tf.abs(tf.cast(ours, tf.float32) - exact)))
    theirs_error = float(tf.reduce_max(tf.abs(tf.cast(theirs, tf.float32) - exact)))
    assert ours_error <= 2 * theirs_error + 1e-2


def test_one_kernel_form_only_for_inference_with_unknown_rows_outside_plain_layer_norms():
    norm = keras_layer_norm(1e-12, 8)
    dynamic = tf.TensorSpec([None, None, 8])
    assert normalizes_in_one_kernel(norm, dynamic, training=False) is onednn_enabled()
    assert normalizes_in_one_kernel(norm, dynamic, training=None) is onednn_enabled()
    assert not normalizes_in_one_kernel(norm, dynamic, training=True)
    assert not normalizes_in_one_kernel(norm, tf.TensorSpec([2, 3, 8]), training=False)
    with plain_layer_norms():
        assert not normalizes_in_one_kernel(norm, dynamic, training=False)
    # A layer that is not Keras' own (here a subclass, as a wrapper would be) runs itself.
    subclass = type("Norm", (keras.layers.LayerNormalization,), {})(epsilon=1e-12)
    subclass.build((None, None, 8))
    assert not normalizes_in_one_kernel(subclass, dynamic, training=False)
    # Normalising over another axis is not this function.
    other_axis = keras.layers.LayerNormalization(axis=1)
    other_axis.build((None, 4, 8))
    assert not normalizes_in_one_kernel(other_axis, tf.TensorSpec([None, 4, 8]), training=False)


def op_types(concrete_function):
    """Every op type in a traced function's graph, its cond branches' included."""
    graph_def = concrete_function.graph.as_graph_def()
    return ([node.op for node in graph_def.node]
            + [node.op for function in graph_def.library.function for node in function.node_def])


def batch_norm_count(encoder, spec):
    function = tf.function(lambda x: encoder(x, training=False)["sequence_output"])
    return function, op_types(function.get_concrete_function(spec)).count("FusedBatchNormV3")


def input_spec(batch_size=None, seq_length=None):
    return {key: tf.TensorSpec([batch_size, seq_length], tf.int32)
            for key in ("input_word_ids", "input_mask", "input_type_ids")}


@pytest.mark.skipif(not onednn_enabled(), reason="TensorFlow's oneDNN rewrites are off")
@pytest.mark.parametrize("batch_size,seq_length", [(3, 7), (40, 16)])
def test_encoder_layer_norms_at_inference_give_keras_outputs(batch_size, seq_length):
    """Every LayerNorm of the encoder (the embeddings' and 2 per layer) has the one-kernel
    form in a graph with a batch axis of None (in the branch for large batches), none
    inside `plain_layer_norms()` or with fixed shapes (and so none in what the TFLite
    converter traces), and the outputs agree with Keras' layers, padded and padding-free, on
    either side of `ONE_KERNEL_MIN_ROWS` (21 and 640 rows)."""
    from electra_tf.export.tflite_export import _serving_function

    encoder = ElectraEncoder(**TINY)
    inputs = make_inputs(batch_size=batch_size, seq_length=seq_length,
                         vocab_size=TINY["vocab_size"])
    inputs["input_mask"][1, 4:] = 0
    fast, count = batch_norm_count(encoder, input_spec())
    assert count == 1 + 2 * TINY["num_layers"]
    with plain_layer_norms():
        plain, plain_count = batch_norm_count(encoder, input_spec())
    assert plain_count == 0
    assert batch_norm_count(encoder, input_spec(3, 7))[1] == 0
    np.testing.assert_allclose(fast(inputs).numpy(), plain(inputs).numpy(), atol=2e-5)
    padding_free = tf.function(lambda x: encoder(x, training=False, remove_padding=True)[
        "sequence_output"], input_signature=[input_spec()])
    mask = inputs["input_mask"][..., None]
    np.testing.assert_allclose(padding_free(inputs).numpy() * mask, plain(inputs).numpy() * mask,
                               atol=2e-5)
    tflite_ops = op_types(_serving_function(encoder, seq_length, None))
    assert "FusedBatchNormV3" not in tflite_ops


def executed_op_types(function, inputs, log_dir):
    """How many times TensorFlow's executor ran each op type for one `function(inputs)`."""
    ran = collections.Counter()
    for name, count in executed_ops(function, inputs, log_dir).items():
        ran[name.rsplit(":", 1)[-1]] += count
    return ran


@pytest.mark.skipif(not onednn_enabled(), reason="TensorFlow's oneDNN rewrites are off")
@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_tensorflow_runs_large_layer_norms_as_onednn_kernels_and_small_ones_as_keras_ops(
        tmp_path, dtype):
    """What the speed comes from: on `ONE_KERNEL_MIN_ROWS` rows or more grappler's
    remapper has replaced the graph with `_MklLayerNorm` and no mean or squared
    difference runs; on fewer, Keras' ops run (and no `_MklLayerNorm`, whose fixed
    cost per call is larger than theirs)."""
    encoder = ElectraEncoder(**{**TINY, "dtype": dtype})
    function = tf.function(lambda x: encoder(x, training=False)["sequence_output"],
                           input_signature=[input_spec()])
    norms = 1 + 2 * TINY["num_layers"]  # the embeddings' and 2 per layer
    large = make_inputs(batch_size=ONE_KERNEL_MIN_ROWS // 16, seq_length=16,
                        vocab_size=TINY["vocab_size"])
    ran = executed_op_types(function, large, str(tmp_path / "large"))
    assert ran["_MklLayerNorm"] == norms and ran["SquaredDifference"] == 0
    assert not ran["FusedBatchNormV3"] + ran["_MklNativeFusedBatchNormV3"]
    small = make_inputs(batch_size=1, seq_length=9, vocab_size=TINY["vocab_size"])
    small_ran = executed_op_types(function, small, str(tmp_path / "small"))
    assert small_ran["_MklLayerNorm"] == 0 and small_ran["SquaredDifference"] == norms
    with plain_layer_norms():
        plain = tf.function(lambda x: encoder(x, training=False)["sequence_output"],
                            input_signature=[input_spec()])
        plain_ran = executed_op_types(plain, large, str(tmp_path / "plain"))
    assert plain_ran["_MklLayerNorm"] == 0 and plain_ran["SquaredDifference"] == norms


def test_gradients_through_an_inference_forward_are_keras_layer_norms():
    """Differentiating a `training=False` forward (saliency, dropout-free fine-tuning)
    gives Keras' gradients."""
    # Seeded: with some weight draws (1 in ~12, before and after the embeddings' norm took
    # the one-kernel form) an embedding gradient summed over the 512 rows cancels to near 0
    # while its partial sums are ~1e4, and the two orders of summation differ by their ulp.
    keras.utils.set_random_seed(0)
    encoder = ElectraEncoder(**TINY)
    inputs = make_inputs(batch_size=ONE_KERNEL_MIN_ROWS // 16, seq_length=16,
                         vocab_size=TINY["vocab_size"])  # the one-kernel branch

    def gradients(plain):
        @tf.function(input_signature=[input_spec()])
        def run(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.sin(encoder(x, training=False)["sequence_output"]))
            return tape.gradient(loss, encoder.trainable_variables)

        if plain:
            with plain_layer_norms():
                run.get_concrete_function()
        return run(inputs)

    for ours, theirs in zip(gradients(False), gradients(True)):
        ours, theirs = (tf.convert_to_tensor(g).numpy() for g in (ours, theirs))
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_apply_layer_norm_is_keras_layer_outside_one_kernel_layer_norms():
    norm = keras.layers.LayerNormalization(epsilon=1e-12)
    x = tf.random.stateless_normal([2, 4, 6], seed=[1, 1])
    first = apply_layer_norm(norm, x, training=False)  # Keras builds it
    assert norm.built and len(norm.weights) == 2
    norm.gamma.assign(tf.fill([6], 2.0))
    spec = tf.TensorSpec([None, 4, 6])

    def traced():
        function = tf.function(lambda x: apply_layer_norm(norm, x, training=False))
        return function, op_types(function.get_concrete_function(spec))

    plain, plain_ops = traced()
    assert "FusedBatchNormV3" not in plain_ops
    with one_kernel_layer_norms():
        fast, fast_ops = traced()
    assert ("FusedBatchNormV3" in fast_ops) is onednn_enabled()
    for function in (plain, fast):
        np.testing.assert_allclose(function(x).numpy(), 2 * first.numpy(), atol=1e-5)


@pytest.mark.skipif(not onednn_enabled(), reason="TensorFlow's oneDNN rewrites are off")
def test_choose_layer_norms_makes_one_run_time_choice_per_forward():
    """One cond for a whole stack of norms, not one per norm (each costs ~50 µs at
    batch 1), with the same values on either side of `ONE_KERNEL_MIN_ROWS`."""
    norms = [keras.layers.LayerNormalization(epsilon=1e-12) for _ in range(3)]
    for norm in norms:
        norm.build((None, None, 8))

    def stack(x):
        for norm in norms:
            x = apply_layer_norm(norm, 2.0 * x + 1.0, training=False)
        return x

    function = tf.function(lambda x: choose_layer_norms(lambda: stack(x), x, norms[0], False))
    ops = op_types(function.get_concrete_function(tf.TensorSpec([None, None, 8])))
    assert sum(op in ("If", "StatelessIf") for op in ops) == 1
    assert ops.count("FusedBatchNormV3") == 3
    for rows in (5, ONE_KERNEL_MIN_ROWS):
        x = tf.random.stateless_normal([1, rows, 8], seed=[rows, 0])
        reference = x
        for norm in norms:
            reference = norm(2.0 * reference + 1.0)
        np.testing.assert_allclose(function(x).numpy(), reference.numpy(), atol=1e-5)
    # Fixed shapes: no choice to make (grappler would fold the kernel's pattern away).
    fixed = tf.function(lambda x: choose_layer_norms(lambda: stack(x), x, norms[0], False))
    fixed_ops = op_types(fixed.get_concrete_function(tf.TensorSpec([1, 5, 8])))
    assert not {"If", "StatelessIf", "FusedBatchNormV3"} & set(fixed_ops)
