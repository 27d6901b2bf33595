"""keras-hub ELECTRA presets → electra_tf models, for callers without a class in hand.

The file format (the preset's files, the weight layout, what keras-hub computes differently)
is `electra_tf.checkpoint_formats.keras_hub`, re-exported here; `ElectraEncoder.from_keras_hub`
builds the encoder from it. This module adds `load_keras_hub(path, model_kind)`, which picks
the class.

>>> import tempfile, electra_tf
>>> path = tempfile.mkdtemp() + "/preset"
>>> save_keras_hub(electra_tf.ElectraEncoder.from_preset("tiny"), path)
>>> load_keras_hub(path).num_layers
2
"""

from electra_tf.checkpoint_formats.keras_hub import (  # noqa: F401  (their old home)
    BACKBONE_CLASS,
    BACKBONE_CLASSES,
    CONFIG_NAME,
    KERAS_HUB_LAYER_NORM_EPSILON,
    KERAS_HUB_VERSION,
    KERAS_VERSION,
    METADATA_NAME,
    SHARDED_WEIGHTS_NAME,
    TOKENIZER_CLASS,
    TOKENIZER_NAME,
    VOCABULARY_PATH,
    WEIGHTS_NAME,
    keras_hub_config,
    keras_hub_location,
    keras_hub_tokenizer_config,
    keras_hub_weights,
    load_keras_hub_tokenizer,
    read_keras_hub_config,
    save_keras_hub,
)
from electra_tf.models.presets import model_class
from electra_tf.preprocessing.keras_hub_vocabulary import keras_hub_vocabulary  # noqa: F401


def load_keras_hub(path, model_kind="encoder"):
    """Builds an `ElectraEncoder` from a keras-hub ELECTRA preset directory:
    `model_class(model_kind).from_keras_hub(path)`.

    The weights are copied exactly; the pooler is dropped (ELECTRA has none).
    The tokenizer: `load_keras_hub_tokenizer(path)`.

    Raises:
        ValueError: `path` is not a keras-hub ELECTRA preset, a weight is
            missing, unexpected, misplaced or wrongly shaped (all are named),
            or `model_kind` is not "encoder" (presets hold no heads).
    """
    return model_class(model_kind).from_keras_hub(path)
