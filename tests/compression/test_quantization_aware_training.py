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
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from conftest import TINY, make_inputs

from electra_tf import ElectraClassifier, ElectraEncoder
from electra_tf.compression.pruning import functional_classifier


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(0)
    return ElectraClassifier(ElectraEncoder(**TINY), num_classes=2)


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
