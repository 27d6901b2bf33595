"""Where tfmot's quantization-aware training applies to our layers, and where it cannot.

tfmot annotates layer by layer from a registry of Keras built-ins (Dense,
Conv, ...). A `TransformerLayer` does its attention with raw matmuls, softmax
and LayerNorm inside one custom layer, so tfmot has no quantize config for it
and cannot see the int8 activations that TFLite's full-integer conversion
quantizes inside it. QAT therefore reaches only the plain Dense layers
(embedding projection, classifier head); int8 for the encoder comes from
post-training quantization through the TFLite converter instead.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from conftest import TINY, make_inputs

from electra_tf import ElectraClassifier, ElectraEncoder
from electra_tf.layers.transformer_layer import attention_bias_from_mask, gelu
from electra_tf.models.electra_encoder import INPUT_KEYS


def functional_classifier(classifier, wrap):
    """The classifier's own layers wired into a functional model, each wrapped by `wrap`.

    tfmot's `quantize_apply` takes functional and Sequential models only
    (pruning does not need this: `pruning_wrappers` wraps the subclassed
    model's layers in place). Test-only, and checked against the classifier.
    """
    encoder = classifier.encoder
    inputs = {key: keras.Input(shape=(None,), dtype=tf.int32, name=key) for key in INPUT_KEYS}
    x = encoder.embedding_layer(inputs["input_word_ids"], inputs["input_type_ids"])  # (B, T, E)
    if encoder.embedding_projection is not None:
        x = wrap(encoder.embedding_projection)(x)  # (B, T, H)
    attention_bias = attention_bias_from_mask(inputs["input_mask"], x.dtype)  # (B, 1, 1, T)
    for layer in encoder.transformer_layers:
        x = wrap(layer)(x, attention_bias=attention_bias)  # (B, T, H)
    x = x[:, 0, :]  # (B, H), [CLS]
    if classifier.dense is not None:
        x = gelu(wrap(classifier.dense)(x))
    logits = tf.cast(wrap(classifier.logits)(x), tf.float32)  # (B, num_classes)
    return keras.Model(inputs, logits)


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(0)
    return ElectraClassifier(ElectraEncoder(**TINY), num_classes=2)


def test_the_functional_view_equals_the_classifier(classifier):
    inputs = make_inputs()
    np.testing.assert_allclose(functional_classifier(classifier, wrap=lambda layer: layer)(inputs),
                               classifier(inputs), atol=1e-6)


def test_tfmot_cannot_annotate_the_transformer_layer(classifier):
    model = functional_classifier(classifier, wrap=tfmot.quantization.keras.quantize_annotate_layer)
    with pytest.raises(RuntimeError, match="TransformerLayer'> is not supported"):
        tfmot.quantization.keras.quantize_apply(model)


def test_quantization_aware_training_reaches_the_dense_layers_only(classifier):
    def annotate_dense(layer):
        if type(layer) is keras.layers.Dense:
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        return layer

    model = tfmot.quantization.keras.quantize_apply(
        functional_classifier(classifier, wrap=annotate_dense))
    wrapped = [layer.layer.name for layer in model.layers
               if isinstance(layer, tfmot.quantization.keras.QuantizeWrapperV2)]
    assert {"embeddings_project", "logits"} <= set(wrapped)
    assert not [name for name in wrapped if name.startswith("transformer_layer")]
    # The logits pass an 8-bit fake quantizer: few distinct values, unlike the float model's.
    inputs = make_inputs()
    assert len(np.unique(model(inputs))) < len(np.unique(classifier(inputs)))
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(inputs, np.array([0, 1, 1]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
