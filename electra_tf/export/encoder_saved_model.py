"""A TF-Hub style encoder SavedModel: reusable and fine-tunable with `hub.KerasLayer`.

The TF-Hub BERT encoder convention:

    encoder = hub.KerasLayer(path, trainable=True)   # inside a tf-keras model
    outputs = encoder({"input_word_ids": ..., "input_mask": ..., "input_type_ids": ...})
    outputs["pooled_output"]     # (batch, hidden_size), the [CLS] vector ("default" too)
    outputs["sequence_output"]   # (batch, seq, hidden_size)
    outputs["encoder_outputs"]   # list of num_layers (batch, seq, hidden_size)

It is a "reusable SavedModel" (tensorflow.org/hub/reusable_saved_models):
`__call__(inputs, training)` traced for training True (dropout on) and False,
plus `variables`, `trainable_variables` and `regularization_losses`, which is
what `hub.KerasLayer` looks for to fine-tune. The `serving_default`
signature returns the same tensors, `encoder_outputs` flattened to
`encoder_outputs_0` ... `encoder_outputs_{num_layers - 1}` (a signature
returns a flat dict). Only TensorFlow ops: reloading needs no electra_tf.
"""

import tensorflow as tf
import tf_keras as keras

from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.utils.atomic_directory import atomic_directory


def find_encoder(model):
    """The `ElectraEncoder` of `model`: itself, or its `.encoder` (discriminator, classifier...).

    Raises `ValueError` for an unbuilt Keras model or one without an ElectraEncoder.
    """
    if isinstance(model, keras.Model) and not model.built:
        raise ValueError(
            f"{type(model).__name__} was never built, so it has no weights to export: "
            "call it on inputs (or load it with from_pretrained) first."
        )
    encoder = model if isinstance(model, ElectraEncoder) else getattr(model, "encoder", None)
    if not isinstance(encoder, ElectraEncoder):
        raise ValueError(
            "Expected an ElectraEncoder or a model with one in `.encoder` "
            "(ElectraDiscriminator, ElectraClassifier, ...); received "
            f"{type(model).__name__}."
        )
    return encoder


def build_encoder_module(encoder):
    """The object that `export_encoder_saved_model` saves: TF-Hub's reusable SavedModel API."""

    def call(inputs, training=False):
        outputs = encoder(inputs, training=training)
        return {
            "pooled_output": outputs["pooled_output"],
            "sequence_output": outputs["sequence_output"],
            "encoder_outputs": list(outputs["encoder_outputs"]),
            "default": outputs["pooled_output"],  # TF-Hub's name for the main output
        }

    input_spec = {
        key: tf.TensorSpec([None, None], tf.int32, name=key)
        for key in ("input_word_ids", "input_mask", "input_type_ids")
    }
    # No autograph: the graph has no Python control flow on tensors, and converting
    # every Keras call made exports several times slower.
    reusable_call = tf.function(call, autograph=False)
    for training in (True, False):
        reusable_call.get_concrete_function(input_spec, training)

    @tf.function(input_signature=[input_spec], autograph=False)
    def serving_default(inputs):
        outputs = call(inputs, training=False)
        layers = outputs.pop("encoder_outputs")
        outputs.update({f"encoder_outputs_{i}": layer for i, layer in enumerate(layers)})
        return outputs

    # tf.train.Checkpoint is a plain trackable object; tf.Module would not do,
    # it reserves `variables` and `trainable_variables` for read-only properties.
    module = tf.train.Checkpoint()
    module.__call__ = reusable_call
    module.serving_default = serving_default
    module.variables = list(encoder.variables)
    module.trainable_variables = list(encoder.trainable_variables)
    module.regularization_losses = []  # no weight penalties; AdamW decays weights itself
    return module


def save_encoder(encoder, path):
    """Writes the encoder SavedModel into the (new, empty) directory `path`."""
    module = build_encoder_module(encoder)
    tf.saved_model.save(module, path, signatures={"serving_default": module.serving_default})


def export_encoder_saved_model(model, path, overwrite=False):
    """Exports the encoder of `model` as a TF-Hub style SavedModel (see the module docstring).

    Args:
        model: an `ElectraEncoder`, or a model holding one in `.encoder`
            (its head is left out).
        path: output directory, written atomically.
        overwrite: replace an existing `path`.

    >>> import tempfile
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=2,
    ...                          num_heads=2, intermediate_size=16)
    >>> path = tempfile.mkdtemp() + "/encoder"
    >>> export_encoder_saved_model(encoder, path)
    >>> reloaded = tf.saved_model.load(path)
    >>> ids = tf.constant([[2, 5, 3, 0]])
    >>> outputs = reloaded({"input_word_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32),
    ...                     "input_type_ids": tf.zeros_like(ids)}, training=False)
    >>> outputs["pooled_output"].shape, len(outputs["encoder_outputs"])
    (TensorShape([1, 8]), 2)
    """
    encoder = find_encoder(model)
    with atomic_directory(path, overwrite=overwrite) as tmp:
        save_encoder(encoder, tmp)
