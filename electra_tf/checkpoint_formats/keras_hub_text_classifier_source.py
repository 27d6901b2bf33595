"""The Keras 3 file that `save_keras_hub` writes into a preset: a keras-hub `ElectraTextClassifier`.

keras-hub 0.32 has no ELECTRA task: `keras_hub.models.TextClassifier.from_preset`
looks for a registered `TextClassifier` subclass whose `backbone_cls` is
`ElectraBackbone` and fails without one. The preset therefore carries
`electra_text_classifier.py`, which registers one; a Keras 3 user imports it
from the preset directory and needs nothing of ours.

It is kept here as text, not as a module of this package: electra_tf runs
tf-keras, and this code needs Keras 3 and keras-hub (every module of the
package is imported by the tf-keras test suite). The tests run it, in a Keras 3
subprocess, through `TextClassifier.from_preset` and a training step.

The text parses as Python and defines the two classes keras-hub looks up:

>>> import ast
>>> tree = ast.parse(TEXT_CLASSIFIER_SOURCE, TEXT_CLASSIFIER_MODULE_NAME)
>>> [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
['ElectraTextClassifierPreprocessor', 'ElectraTextClassifier']
"""

TEXT_CLASSIFIER_MODULE_NAME = "electra_text_classifier.py"

TEXT_CLASSIFIER_SOURCE = '''"""ELECTRA text classification for keras-hub (Keras 3), shipped with presets that electra_tf writes.

keras-hub 0.32 has `ElectraBackbone` and `ElectraTokenizer` but no ELECTRA task,
so `keras_hub.models.TextClassifier.from_preset(preset)` finds no class for an
ELECTRA preset. Importing this file registers one:

    import sys
    sys.path.insert(0, "my_preset")            # the preset directory
    import electra_text_classifier             # noqa: F401  (registers the classes)
    classifier = keras_hub.models.TextClassifier.from_preset("my_preset", num_classes=2)

Run it under Keras 3 (`KERAS_BACKEND` of your choice); it needs keras-hub only.
"""

import keras
import keras_hub

# Registered under our package name: keras-hub's own classes keep theirs.
_PACKAGE = "electra_tf"
# The released models were fine-tuned on at most 512 tokens.
_MAX_SEQUENCE_LENGTH = 512


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ElectraTextClassifierPreprocessor(keras_hub.models.TextClassifierPreprocessor):
    """Tokenizes and packs text for `ElectraTextClassifier`: [CLS] a [SEP] (b [SEP]), padded.

    From a preset, `sequence_length` defaults to the backbone's
    `max_sequence_length` (at most 512) rather than keras-hub's fixed 512,
    which a model with fewer positions cannot take.
    """

    backbone_cls = keras_hub.models.ElectraBackbone
    tokenizer_cls = keras_hub.models.ElectraTokenizer

    @classmethod
    def _add_missing_kwargs(cls, loader, kwargs):
        kwargs = super()._add_missing_kwargs(loader, kwargs)
        backbone_config = getattr(loader, "config", {}).get("config", {})
        if "sequence_length" not in kwargs and "max_sequence_length" in backbone_config:
            kwargs["sequence_length"] = min(_MAX_SEQUENCE_LENGTH,
                                            backbone_config["max_sequence_length"])
        return kwargs


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ElectraTextClassifier(keras_hub.models.TextClassifier):
    """ELECTRA's classifier: dropout and a dense layer on the last layer's [CLS] vector.

    ELECTRA has no pooler; google-research/electra classifies from [CLS]
    directly. keras-hub's `pooled_output` passes [CLS] through a tanh dense
    layer that ELECTRA checkpoints do not have, so it is not used here.

    Args:
        backbone: a `keras_hub.models.ElectraBackbone`.
        num_classes: number of classes.
        preprocessor: an `ElectraTextClassifierPreprocessor`, or None for
            token-id inputs.
        activation: activation of the logits layer; None gives logits.
        dropout: dropout rate before the logits layer (0.1, as in the paper).
    """

    backbone_cls = keras_hub.models.ElectraBackbone
    preprocessor_cls = ElectraTextClassifierPreprocessor

    def __init__(self, backbone, num_classes, preprocessor=None, activation=None, dropout=0.1,
                 **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="classifier_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            activation=activation,
            dtype=backbone.dtype_policy,
            name="logits",
        )

        # === Functional Model ===
        inputs = backbone.input
        x = backbone(inputs)["sequence_output"][:, 0, :]  # (B, H): [CLS]
        outputs = self.output_dense(self.output_dropout(x))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.dropout = dropout

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes,
            "activation": keras.activations.serialize(self.activation),
            "dropout": self.dropout,
        })
        return config
'''
