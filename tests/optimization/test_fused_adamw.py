"""FusedAdamW: keras' AdamW step for step, in one ResourceApplyAdam per variable."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import TINY, make_inputs
from electra_tf import ElectraEncoder, create_optimizer
from electra_tf.optimization.fused_adamw import FusedAdamW, fused_adam_step
from electra_tf.optimization.layerwise_decay_adamw import LayerwiseDecayAdamW
from electra_tf.tasks.electra_classifier import ElectraClassifier

NO_DECAY = ["layer_norm", "LayerNorm", "bias"]


def classifier():
    return ElectraClassifier(ElectraEncoder(**TINY), 2)


def train(optimizer, steps=4, strategy=None, policy="float32"):
    """A tiny classifier trained `steps` steps from a fixed start; returns its weights."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        with (strategy or tf.distribute.get_strategy()).scope():
            model = classifier()
            model.compile(optimizer=optimizer(), loss=keras.losses.SparseCategoricalCrossentropy(
                from_logits=True))
        x = make_inputs(batch_size=4, seq_length=6, vocab_size=TINY["vocab_size"])
        y = np.array([0, 1, 1, 0])
        model(x)
        model.start = [v.numpy() for v in model.trainable_variables]
        model.fit(x, y, batch_size=4, epochs=steps, verbose=0, shuffle=False)
        return model, [v.numpy() for v in model.trainable_variables]
    finally:
        keras.mixed_precision.set_global_policy("float32")


def keras_adamw():
    optimizer = keras.optimizers.AdamW(1e-2, weight_decay=0.01, epsilon=1e-6, global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer


def fused_adamw():
    optimizer = FusedAdamW(1e-2, weight_decay=0.01, epsilon=1e-6, global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer


def assert_same_weights(ours, reference):
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_training_matches_keras_adamw(policy):
    """Dense kernels, the sparse (IndexedSlices) embedding table, decayed and undecayed
    weights: after several steps every weight is where keras' AdamW puts it. (One step under
    bfloat16: after it, a float32 rounding difference in a weight can flip a bfloat16 rounding
    of an activation, and the two runs part by bfloat16's resolution, not by a bug.)"""
    steps = 4 if policy == "float32" else 1
    _, reference = train(keras_adamw, steps=steps, policy=policy)
    model, ours = train(fused_adamw, steps=steps, policy=policy)
    assert_same_weights(ours, reference)
    # Every weight moved: the comparison is not of two untrained models.
    assert int(model.optimizer.iterations) == steps
    assert all(not np.allclose(a, b) for a, b in zip(ours, model.start))


def test_training_matches_keras_adamw_under_mirrored_strategy():
    """Inside `strategy.extended.update` each replica's step writes its own copies of the
    variable and its slots."""
    # As electra_tf.utils.strategies builds it on logical CPUs: collective all-reduces here
    # would leave instance keys behind that clash with a later MirroredStrategy in this process.
    strategy = tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
    _, reference = train(keras_adamw, strategy=strategy)
    model, ours = train(fused_adamw, strategy=strategy)
    for variable in model.trainable_variables:  # the replicas agree
        np.testing.assert_array_equal(*[component.numpy() for component in variable.values])
    assert_same_weights(ours, reference)


def test_the_step_is_one_fused_kernel_per_variable():
    """The traced update holds one ResourceApplyAdam per variable and none of keras'
    element-wise chain (its Sqrt and RealDiv over the variable)."""
    model = classifier()
    model(make_inputs(vocab_size=TINY["vocab_size"]))
    variables = model.trainable_variables
    optimizer = FusedAdamW(1e-3, weight_decay=0.0)
    optimizer.build(variables)
    gradients = [tf.ones_like(v) for v in variables]

    graph = tf.function(lambda: optimizer.apply_gradients(zip(gradients, variables))
                        ).get_concrete_function().graph
    op_types = [op.type for op in graph.get_operations()]
    assert op_types.count("ResourceApplyAdam") == len(variables)
    assert "Sqrt" not in op_types and "RealDiv" not in op_types


def test_sparse_gradient_with_repeated_rows_equals_keras():
    """An embedding gradient that names a row twice: the rows are summed, as keras'
    scatter_add sums them, and untouched rows still decay their moments."""
    start = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    gradient = tf.IndexedSlices(tf.constant([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]]),
                                tf.constant([2, 2]), tf.constant([4, 3]))
    results = []
    for optimizer in (keras.optimizers.AdamW(0.1, weight_decay=0.0), FusedAdamW(0.1, weight_decay=0.0)):
        variable = tf.Variable(start)
        for _ in range(3):
            optimizer.apply_gradients([(gradient, variable)])
        results.append(variable.numpy())
    # Rows move by ~lr per step (0.3 in all); they agree to float32 rounding.
    np.testing.assert_allclose(results[1], results[0], atol=1e-5)
    assert not np.allclose(results[1], start)


def test_fused_adam_step_is_adam_by_hand():
    """Two steps checked against Adam's formula written out."""
    lr, b1, b2, eps = 0.05, 0.9, 0.99, 1e-6
    variable = tf.Variable([0.5, -1.0, 2.0])
    m, v = tf.Variable(tf.zeros(3)), tf.Variable(tf.zeros(3))
    expected, em, ev = np.array([0.5, -1.0, 2.0]), np.zeros(3), np.zeros(3)
    for t, g in enumerate([np.array([0.1, -0.2, 0.3]), np.array([1.0, 0.0, -2.0])], start=1):
        fused_adam_step(variable, m, v, tf.constant(g, tf.float32), lr, b1, b2, eps, t)
        em = b1 * em + (1 - b1) * g
        ev = b2 * ev + (1 - b2) * g**2
        expected = expected - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * em / (np.sqrt(ev) + eps)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(m.numpy(), em, rtol=1e-5)
    np.testing.assert_allclose(v.numpy(), ev, rtol=1e-5)


def test_amsgrad_falls_back_to_keras_step():
    results = []
    for cls in (keras.optimizers.AdamW, FusedAdamW):
        variable = tf.Variable([1.0, 2.0])
        optimizer = cls(0.1, weight_decay=0.0, amsgrad=True)
        for g in ([0.5, -0.5], [0.1, 0.2]):
            optimizer.apply_gradients([(tf.constant(g), variable)])
        results.append(variable.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6)


def test_checkpoints_are_keras_adamw_checkpoints(tmp_path):
    """The slots are keras' own: a keras AdamW checkpoint restores into FusedAdamW."""
    variable = tf.Variable([1.0, 2.0])
    keras_optimizer = keras.optimizers.AdamW(0.1)
    keras_optimizer.apply_gradients([(tf.constant([0.5, -0.5]), variable)])
    path = tf.train.Checkpoint(variable=variable, optimizer=keras_optimizer).save(
        str(tmp_path / "ckpt"))

    restored = tf.Variable([0.0, 0.0])
    fused = FusedAdamW(0.1)
    fused.build([restored])
    tf.train.Checkpoint(variable=restored, optimizer=fused).restore(path).assert_consumed()
    np.testing.assert_allclose(fused._momentums[0].numpy(), keras_optimizer._momentums[0].numpy())
    assert int(fused.iterations) == 1


def test_the_library_optimizers_are_fused():
    assert isinstance(create_optimizer(1e-3, 100, 10), FusedAdamW)
    assert issubclass(LayerwiseDecayAdamW, FusedAdamW)
    config = FusedAdamW(1e-3, weight_decay=0.02).get_config()
    assert FusedAdamW.from_config(config).get_config() == config
