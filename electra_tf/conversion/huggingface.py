"""Hugging Face checkpoints → electra_tf models, for callers without a class in hand.

The file format (reading, writing, the name translation) is
`electra_tf.checkpoint_formats.huggingface`, re-exported here; the model classes build
themselves from it (`ElectraEncoder.from_huggingface(path)`, `ElectraDiscriminator...`,
`ElectraGenerator...`). This module adds what needs the classes: `read_config`, which
returns an `ElectraConfig`, and `load_huggingface(path, model_kind)`, which picks the class.

>>> import tempfile, electra_tf
>>> path = tempfile.mkdtemp() + "/tiny_hf"
>>> electra_tf.ElectraDiscriminator.from_preset("tiny").save_huggingface(path)
>>> config, family, _ = read_config(path)
>>> config.num_layers, family
(2, 'electra')
>>> type(load_huggingface(path, "discriminator")).__name__
'ElectraDiscriminator'
"""

from electra_tf.checkpoint_formats.huggingface import (  # noqa: F401  (their old home)
    ARCHITECTURES,
    CONFIG_NAME,
    HUB_FILES,
    PYTORCH_NAME,
    SAFETENSORS_NAME,
    huggingface_config,
    huggingface_state_dict,
    read_encoder_arguments,
    read_state_dict,
    resolve_huggingface_path,
    save_huggingface,
    write_huggingface_directory,
)
from electra_tf.models.presets import ElectraConfig, model_class


def read_config(path):
    """config.json → (ElectraConfig, family "electra"|"bert", raw dict)."""
    arguments, family, raw = read_encoder_arguments(path)
    return ElectraConfig(**arguments), family, raw


def load_huggingface(path, model_kind):
    """Builds an electra_tf model of `model_kind` from a Hugging Face directory (or Hub id):
    `model_class(model_kind).from_huggingface(path)`.

    Raises:
        ValueError: the directory is not a supported checkpoint, a key is
            missing or unexpected (all are listed), or a shape does not match
            the config (the variable and both shapes are named).
    """
    return model_class(model_kind).from_huggingface(path)
