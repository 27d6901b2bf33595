"""LayerwiseDecayAdamW: multipliers by the formula, the original's quirk, exact steps, fit."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import TINY, make_inputs
from electra_tf import ElectraEncoder
from electra_tf.optimization.layerwise_decay_adamw import (
    LayerwiseDecayAdamW,
    create_finetuning_optimizer,
    layer_depth,
    layer_multiplier,
)
from electra_tf.tasks.electra_classifier import ElectraClassifier

NUM_LAYERS = 3


def classifier(head="huggingface"):
    # E != H: the embedding projection must count as embeddings.
    return ElectraClassifier(ElectraEncoder(**{**TINY, "num_layers": NUM_LAYERS}), 2, head=head)


def expected_multiplier(variable, encoder, decay, original):
    """The formula, from object identity rather than names."""
    shift = 1 if original else 0
    embedding_weights = encoder.embedding_layer.weights + (
        encoder.embedding_projection.weights if encoder.embedding_projection else [])
    if any(variable is w for w in embedding_weights):
        return decay ** (NUM_LAYERS + 1 + shift)
    for i, layer in enumerate(encoder.transformer_layers):
        if any(variable is w for w in layer.weights):
            return decay ** (NUM_LAYERS - i + shift)
    return 1.0  # the head


@pytest.mark.parametrize("original", [False, True], ids=["paper", "original_code"])
def test_multipliers_follow_the_formula(original):
    model = classifier()
    optimizer = LayerwiseDecayAdamW(1e-3, num_layers=NUM_LAYERS, layer_decay=0.8,
                                    original_top_layer_decay=original)
    optimizer.build(model.trainable_variables)
    seen = set()
    for variable in model.trainable_variables:
        multiplier = optimizer.learning_rate_multiplier(variable)
        assert multiplier == pytest.approx(expected_multiplier(variable, model.encoder, 0.8, original))
        seen.add(round(multiplier, 8))
    # head, 3 layers, embeddings: five distinct rates.
    assert len(seen) == NUM_LAYERS + 2


def test_the_quirk_reproduces_google_research_electra():
    """google-research/electra `_get_layer_lrs`: depth(embeddings) = 0, depth(layer i) = i + 1,
    depth(task head) = n + 2, rate = lr * decay ** (n + 2 - depth)."""
    n, decay = 12, 0.8
    original_depths = {"/embeddings/": 0, "task_specific/": n + 2,
                       **{f"encoder/layer_{i}/": i + 1 for i in range(n)}}
    ours = {"/embeddings/": "electra_encoder/embeddings/word_embeddings:0",
            "task_specific/": "logits/kernel:0",
            **{f"encoder/layer_{i}/": f"electra_encoder/transformer_layer_{i}/qkv/kernel:0"
               for i in range(n)}}
    for key, depth in original_depths.items():
        assert layer_multiplier(ours[key], n, decay, original_top_layer_decay=True) == (
            pytest.approx(decay ** (n + 2 - depth)))
    # The top layer gets decay², and the documented rule gives it decay¹.
    top = ours[f"encoder/layer_{n - 1}/"]
    assert layer_multiplier(top, n, decay, original_top_layer_decay=True) == pytest.approx(0.64)
    assert layer_multiplier(top, n, decay) == pytest.approx(0.8)


def test_layer_depth_reads_our_variable_names():
    model = classifier()
    names = [v.name for v in model.trainable_variables]
    assert any("embeddings_project" in name for name in names)
    depths = [layer_depth(name) for name in names]
    assert set(depths) == {None, 0, 1, 2, 3}
    assert layer_depth("electra_encoder/transformer_layer_11/output/bias:0") == 12
    assert layer_depth("my_transformer_layer_1/kernel:0") is None  # whole path parts only


def test_num_layers_is_inferred_when_not_given():
    model = classifier()
    optimizer = LayerwiseDecayAdamW(1e-3)
    optimizer.build(model.trainable_variables)
    assert optimizer.num_layers == NUM_LAYERS


def test_too_small_num_layers_is_an_error():
    optimizer = LayerwiseDecayAdamW(1e-3, num_layers=1)
    with pytest.raises(ValueError, match="transformer_layer_1.*belongs to transformer layer 1.*num_layers=1"):
        optimizer.build(classifier().trainable_variables)


def test_one_step_equals_adamw_at_the_scaled_rate():
    """Each variable moves as plain AdamW at learning_rate * multiplier would move it,
    weight decay (only on kernels and tables) included."""
    model = classifier()
    variables = model.trainable_variables
    x = make_inputs(batch_size=4, seq_length=6, vocab_size=TINY["vocab_size"])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=False) ** 2)
    gradients = tape.gradient(loss, variables)
    start = [v.numpy() for v in variables]

    optimizer = LayerwiseDecayAdamW(1e-2, num_layers=NUM_LAYERS, layer_decay=0.5,
                                    global_clipnorm=None)
    optimizer.apply_gradients(zip(gradients, variables))
    for variable, gradient, initial in zip(variables, gradients, start):
        if gradient is None:
            continue
        copy = tf.Variable(initial, name=variable.name.split(":")[0])
        reference = keras.optimizers.AdamW(
            1e-2 * optimizer.learning_rate_multiplier(variable), weight_decay=0.01, epsilon=1e-6)
        reference.exclude_from_weight_decay(var_names=["layer_norm", "LayerNorm", "bias"])
        reference.apply_gradients([(tf.convert_to_tensor(gradient), copy)])
        np.testing.assert_allclose(variable.numpy(), copy.numpy(), rtol=1e-5, atol=1e-7,
                                   err_msg=variable.name)


def test_weight_decay_skips_layer_norm_and_biases():
    model = classifier()
    optimizer = LayerwiseDecayAdamW(1.0, num_layers=NUM_LAYERS, weight_decay=0.1)
    variables = model.trainable_variables
    start = [v.numpy() for v in variables]
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in variables])  # decay only
    for variable, initial in zip(variables, start):
        name = variable.name
        if "layer_norm" in name or "bias" in name:
            np.testing.assert_array_equal(variable.numpy(), initial, err_msg=name)
        else:
            factor = 1 - 0.1 * optimizer.learning_rate_multiplier(variable)
            np.testing.assert_allclose(variable.numpy(), initial * factor, rtol=1e-6,
                                       err_msg=name)


def test_config_round_trip():
    optimizer = create_finetuning_optimizer(3e-4, num_train_steps=100, num_layers=12,
                                            layer_decay=0.9, original_top_layer_decay=True)
    config = optimizer.get_config()
    clone = LayerwiseDecayAdamW.from_config(dict(config))
    assert (clone.num_layers, clone.layer_decay, clone.original_top_layer_decay) == (12, 0.9, True)
    assert clone.epsilon == 1e-6 and clone.global_clipnorm == 1.0
    schedule = clone._learning_rate
    assert (schedule.warmup_steps, schedule.decay_steps) == (10, 100)  # 10% warmup
    assert keras.optimizers.deserialize(
        keras.optimizers.serialize(optimizer)).layer_decay == 0.9


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(layer_decay=0.0), "layer_decay=0.0"), (dict(layer_decay=1.5), r"\(0, 1\]"),
     (dict(num_layers=0), "num_layers=0")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LayerwiseDecayAdamW(1e-3, **kwargs)
    with pytest.raises(ValueError, match="warmup_proportion"):
        create_finetuning_optimizer(1e-3, 100, warmup_proportion=1.5)


def fit_tiny_classifier(optimizer, epochs=6):
    keras.utils.set_random_seed(1)
    model = classifier(head="electra")
    model.compile(optimizer=optimizer)
    x = make_inputs(batch_size=8, seq_length=6, vocab_size=TINY["vocab_size"])
    data = tf.data.Dataset.from_tensor_slices((x, np.arange(8) % 2)).batch(4)
    return model, model.fit(data, epochs=epochs, verbose=0)


def test_end_to_end_fit_with_warmup_and_decay():
    optimizer = create_finetuning_optimizer(1e-2, num_train_steps=12, num_layers=NUM_LAYERS)
    model, history = fit_tiny_classifier(optimizer)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert int(model.optimizer.iterations) == 12


def test_fit_under_mixed_precision_loss_scaling():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        optimizer = create_finetuning_optimizer(1e-2, num_train_steps=12, num_layers=NUM_LAYERS)
        model, history = fit_tiny_classifier(optimizer)
        assert isinstance(model.optimizer, keras.mixed_precision.LossScaleOptimizer)
        assert model.optimizer.inner_optimizer is optimizer
        assert all(np.isfinite(history.history["loss"]))
        assert history.history["loss"][-1] < history.history["loss"][0]
        # The multipliers were built for the model's (float32) variables.
        kernel = model.logits.kernel
        assert optimizer.learning_rate_multiplier(kernel) == 1.0
    finally:
        keras.mixed_precision.set_global_policy("float32")
