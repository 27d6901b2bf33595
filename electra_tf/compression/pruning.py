"""Magnitude pruning of an ElectraClassifier with tensorflow-model-optimization.

tfmot's `prune_low_magnitude` wraps layers of Sequential and functional
models only, and our models are subclassed. So the classifier's own layers
(the very same objects, hence the same weights) are wired into a functional
tf-keras model, `functional_classifier`; the dense layers and the
`TransformerLayer`s (which are tfmot `PrunableLayer`s: their four dense
kernels) are wrapped by `prune_low_magnitude` on the way. Fine-tuning that
model with `UpdatePruningStep` on a `PolynomialDecay` schedule zeroes the
smallest kernel entries step by step; `strip_pruning` then hands back the
unwrapped layers, which are the classifier's: the classifier itself holds the
sparse kernels and saves, loads and exports as usual.

The embedding tables, biases and LayerNorms are not pruned (the issue asks
for the encoder and head kernels; embedding rows of rare words are read
too seldom for magnitude pruning to judge them).
"""

import math

import numpy as np
import tensorflow as tf
import tf_keras as keras

from electra_tf.layers.transformer_layer import TransformerLayer, attention_bias_from_mask, gelu
from electra_tf.models.electra_encoder import INPUT_KEYS
from electra_tf.tasks.electra_classifier import (
    ElectraClassifier,
    classification_keras_metrics,
    classification_loss,
)

# Fraction of the training steps over which sparsity ramps up to its target;
# the rest fine-tunes at the final sparsity so accuracy can recover.
RAMP_FRACTION = 0.7
# Mask updates along the ramp: often enough for a smooth ramp, rarely enough
# that the weights adapt between updates (tfmot's default frequency of 100
# steps would prune nothing in a short run).
MASK_UPDATES = 10


def copy_classifier(classifier):
    """A new `ElectraClassifier` with the same config and (copied) weights.

    >>> from electra_tf import ElectraEncoder
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=16)
    >>> original = ElectraClassifier(encoder, num_classes=2)
    >>> copy = copy_classifier(original)
    >>> copy is original, np.array_equal(copy.logits.kernel.numpy(), original.logits.kernel.numpy())
    (False, True)
    """
    copy = ElectraClassifier.from_config(classifier.get_config())
    copy.set_weights(classifier.get_weights())
    return copy


def functional_classifier(classifier, wrap=None):
    """A functional tf-keras model running `classifier`'s own layers (shared weights).

    Args:
        classifier: an `ElectraClassifier`.
        wrap: optional function layer -> layer, applied to each layer with
            kernels (the embedding projection, the transformer layers, the
            head's dense layers), e.g. tfmot's `prune_low_magnitude`.

    Returns:
        A `keras.Model` from `{"input_word_ids", "input_mask",
        "input_type_ids"}` (int32, (batch, seq)) to float32 logits
        (batch, num_classes), equal to `classifier`'s outputs.

    >>> from electra_tf import ElectraEncoder
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=16)
    >>> classifier = ElectraClassifier(encoder, num_classes=2)
    >>> inputs = {"input_word_ids": tf.constant([[2, 5, 3]]), "input_mask": tf.ones((1, 3), tf.int32),
    ...           "input_type_ids": tf.zeros((1, 3), tf.int32)}
    >>> model = functional_classifier(classifier)
    >>> np.allclose(model(inputs), classifier(inputs), atol=1e-6)
    True
    """
    if not isinstance(classifier, ElectraClassifier):
        raise ValueError(
            f"Expected an ElectraClassifier; received {type(classifier).__name__}."
        )
    wrap = wrap or (lambda layer: layer)
    encoder = classifier.encoder
    inputs = {key: keras.Input(shape=(None,), dtype=tf.int32, name=key) for key in INPUT_KEYS}
    # The same steps as ElectraEncoder.call and ElectraClassifier.call; a test
    # checks that both give the same logits.
    x = encoder.embedding_layer(inputs["input_word_ids"], inputs["input_type_ids"])  # (B, T, E)
    if encoder.embedding_projection is not None:
        x = wrap(encoder.embedding_projection)(x)  # (B, T, H)
    attention_bias = attention_bias_from_mask(inputs["input_mask"], x.dtype)  # (B, 1, 1, T)
    for layer in encoder.transformer_layers:
        x = wrap(layer)(x, attention_bias=attention_bias)  # (B, T, H)
    x = classifier.dropout(x[:, 0, :])  # (B, H), [CLS]
    if classifier.dense is not None:
        x = classifier.dropout(gelu(wrap(classifier.dense)(x)))
    logits = tf.cast(wrap(classifier.logits)(x), tf.float32)  # (B, num_classes)
    return keras.Model(inputs, logits, name=f"{classifier.name}_functional")


def prunable_kernels(classifier):
    """`(name, variable)` for every kernel that pruning touches, in model order."""
    encoder = classifier.encoder
    kernels = []
    if encoder.embedding_projection is not None:
        kernels.append(encoder.embedding_projection.kernel)
    for layer in encoder.transformer_layers:
        kernels.extend(layer.get_prunable_weights())
    if classifier.dense is not None:
        kernels.append(classifier.dense.kernel)
    kernels.append(classifier.logits.kernel)
    return [(kernel.name.split(":")[0], kernel) for kernel in kernels]


def sparsity_report(classifier):
    """The fraction of exact zeros in each prunable kernel, and over all of them.

    Returns:
        `{"layers": [{"name", "shape", "zeros", "size", "sparsity"}, ...],
        "overall_sparsity": zeros / size over those kernels,
        "model_sparsity": zeros / size over all the model's weights}`.

    >>> from electra_tf import ElectraEncoder
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=16)
    >>> report = sparsity_report(ElectraClassifier(encoder, num_classes=2))
    >>> len(report["layers"]), report["overall_sparsity"]
    (5, 0.0)
    """
    layers = []
    for name, kernel in prunable_kernels(classifier):
        values = kernel.numpy()
        zeros = int(np.sum(values == 0))
        layers.append({"name": name, "shape": list(values.shape), "zeros": zeros,
                       "size": int(values.size), "sparsity": zeros / values.size})
    model_zeros = sum(int(np.sum(w == 0)) for w in classifier.get_weights())
    model_size = sum(int(w.size) for w in classifier.get_weights())
    return {
        "layers": layers,
        "overall_sparsity": sum(r["zeros"] for r in layers) / sum(r["size"] for r in layers),
        "model_sparsity": model_zeros / model_size,
    }


def format_sparsity_table(report):
    """`sparsity_report` as a text table, one kernel per row."""
    width = max(len(row["name"]) for row in report["layers"])
    lines = [f"{'kernel':<{width}}  {'shape':>12}  {'sparsity':>8}"]
    for row in report["layers"]:
        shape = "x".join(str(d) for d in row["shape"])
        lines.append(f"{row['name']:<{width}}  {shape:>12}  {row['sparsity']:>8.1%}")
    lines.append(f"{'all pruned kernels':<{width}}  {'':>12}  {report['overall_sparsity']:>8.1%}")
    lines.append(f"{'whole model':<{width}}  {'':>12}  {report['model_sparsity']:>8.1%}")
    return "\n".join(lines)


def pruning_schedule(target_sparsity, total_steps, initial_sparsity=0.0):
    """tfmot's `PolynomialDecay` from `initial_sparsity` to `target_sparsity`.

    The ramp covers the first 70% of `total_steps` in about 10 mask updates;
    `end_step` falls on an update step, so the target is reached exactly.

    >>> schedule = pruning_schedule(0.5, total_steps=100)
    >>> config = schedule.get_config()["config"]
    >>> config["final_sparsity"], config["end_step"], config["frequency"]
    (0.5, 70, 7)
    """
    import tensorflow_model_optimization as tfmot

    if not 0.0 < target_sparsity < 1.0:
        raise ValueError(f"`target_sparsity` must be in (0, 1); received {target_sparsity!r}.")
    if not 0.0 <= initial_sparsity <= target_sparsity:
        raise ValueError(
            f"`initial_sparsity` must be in [0, target_sparsity={target_sparsity}]; "
            f"received {initial_sparsity!r}."
        )
    if not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"`total_steps` must be a positive integer; received {total_steps!r}.")
    ramp = max(1, int(RAMP_FRACTION * total_steps))
    frequency = max(1, ramp // MASK_UPDATES)
    end_step = frequency * max(1, ramp // frequency)
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=initial_sparsity, final_sparsity=target_sparsity,
        begin_step=0, end_step=end_step, frequency=frequency,
    )


def prune_classifier(
    classifier,
    train_data,
    target_sparsity=0.5,
    epochs=1,
    steps_per_epoch=None,
    learning_rate=2e-5,
    log_dir=None,
    verbose=1,
    teacher=None,
    temperature=2.0,
    alpha=0.9,
):
    """Fine-tunes a copy of `classifier` while pruning its kernels to `target_sparsity`.

    With a `teacher` (typically `classifier` itself, unpruned), the pruned
    model learns from the teacher's soft predictions as well as the labels
    (`ElectraDistiller`'s loss), which keeps it close to the function it had
    before pruning (Sanh et al. 2020 prune with alpha 0.9 and T 2).

    Args:
        classifier: a trained `ElectraClassifier` (left unchanged).
        train_data: a tf.data.Dataset of `(features, labels)` batches, as
            `make_classification_dataset` makes them.
        target_sparsity: the fraction of zeros each pruned kernel ends with.
        epochs: passes over `train_data` (or over `steps_per_epoch` batches).
        steps_per_epoch: batches per epoch; needed when `train_data` has no
            known length, or to prune on part of it.
        learning_rate: peak rate of the fine-tuning optimizer (warmup, linear decay).
        log_dir: TensorBoard directory for loss and per-layer sparsity
            (tfmot's `PruningSummaries`); None: no logs.
        verbose: Keras' progress output (1: a progress bar).
        teacher: optional trained `ElectraClassifier` to distil from while
            pruning; None trains on the labels only.
        temperature: softmax temperature of the teacher's soft targets.
        alpha: weight of the soft (teacher) term; 1 - alpha weighs the labels.

    Returns:
        `(pruned, history)`: a new `ElectraClassifier` whose kernels are
        sparse, and the Keras `History` of the fine-tuning.
    """
    import tensorflow_model_optimization as tfmot
    from electra_tf.optimization.layerwise_decay_adamw import create_finetuning_optimizer

    if not isinstance(train_data, tf.data.Dataset):
        raise ValueError(
            f"`train_data` must be a tf.data.Dataset of (features, labels) batches; received "
            f"{type(train_data).__name__}."
        )
    if steps_per_epoch is None:
        cardinality = int(train_data.cardinality())
        if cardinality < 1:
            raise ValueError(
                "`train_data` has no known number of batches; pass `steps_per_epoch`."
            )
        steps_per_epoch = cardinality
    elif int(train_data.cardinality()) > 0 and steps_per_epoch * epochs > int(
            train_data.cardinality()):
        train_data = train_data.repeat()
    total_steps = int(epochs * steps_per_epoch)
    schedule = pruning_schedule(target_sparsity, total_steps)

    pruned = copy_classifier(classifier)
    model = functional_classifier(
        pruned,
        wrap=lambda layer: tfmot.sparsity.keras.prune_low_magnitude(
            layer, pruning_schedule=schedule),
    )
    optimizer = create_finetuning_optimizer(
        learning_rate, total_steps, num_layers=pruned.encoder.num_layers)
    trainer = model
    if teacher is None:
        model.compile(optimizer=optimizer, loss=classification_loss(pruned.problem_type),
                      metrics=classification_keras_metrics(pruned.problem_type))
    else:
        from electra_tf.compression.electra_distiller import ElectraDistiller

        # UpdatePruningStep finds the pruning wrappers inside the distiller's student.
        trainer = ElectraDistiller(teacher, model, temperature=temperature, alpha=alpha)
        trainer.compile(optimizer=optimizer)
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    if log_dir is not None:
        callbacks.append(tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir, update_freq=max(
            1, math.ceil(total_steps / 50))))
    history = trainer.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                          callbacks=callbacks, verbose=verbose)
    # The wrappers wrap the classifier's own layers, so stripping them gives
    # back exactly those layers: `pruned` now holds the sparse kernels.
    stripped = tfmot.sparsity.keras.strip_pruning(model)
    kept = {id(layer) for layer in stripped.layers}
    if id(pruned.logits) not in kept:
        raise RuntimeError("strip_pruning did not return the classifier's own layers.")
    return pruned, history
