"""electra_tf's own checkpoint format: a directory with config.json + model.weights.h5.

config.json is the Keras serialization of the model (its `get_config`), so
the architecture is rebuilt exactly; the weights are tf-keras HDF5. Writes
go through `atomic_directory`: an existing model is never half-overwritten.
"""

import json
import os

import tf_keras as keras

from electra_tf.utils.atomic_directory import atomic_directory

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.weights.h5"


def save_model_weights(model, filepath):
    """Writes the model's weights, and only those, to a `.weights.h5` file.

    tf-keras' `save_weights` on a `.weights.h5` path writes every trackable
    the model holds, the optimizer included: after fine-tuning with Adam a
    file is three times the size of the weights. The optimizer is detached
    for the write and put back.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        model.optimizer = None
    try:
        model.save_weights(filepath)
    finally:
        if optimizer is not None:
            model.optimizer = optimizer


def save_pretrained(model, path, overwrite=False):
    """Saves `model` (any electra_tf model) to the directory `path`.

    >>> import tempfile, electra_tf
    >>> path = tempfile.mkdtemp() + "/tiny"
    >>> electra_tf.ElectraDiscriminator.from_preset("tiny").save_pretrained(path)
    >>> type(load_pretrained(path)).__name__
    'ElectraDiscriminator'
    """
    if not model.built:
        raise ValueError(f"{type(model).__name__} has no weights yet: build or call it first.")
    with atomic_directory(path, overwrite=overwrite) as tmp:
        with open(os.path.join(tmp, CONFIG_NAME), "w") as f:
            json.dump(keras.layers.serialize(model), f, indent=2)
        save_model_weights(model, os.path.join(tmp, WEIGHTS_NAME))


def load_pretrained(path, expected_class=None):
    """Loads a model saved by `save_pretrained`.

    Raises:
        ValueError: `path` is not such a directory, or holds another class
            than `expected_class`.
    """
    # The classes a directory may hold are registered by electra_tf/__init__.py (it imports the
    # models and task models), which Python has run before it could import this module.
    config_path = os.path.join(path, CONFIG_NAME)
    weights_path = os.path.join(path, WEIGHTS_NAME)
    if not (os.path.isfile(config_path) and os.path.isfile(weights_path)):
        raise ValueError(
            f"{path!r} is not an electra_tf model directory: expected {CONFIG_NAME} and "
            f"{WEIGHTS_NAME} (written by save_pretrained). For Hugging Face checkpoints use "
            "from_huggingface."
        )
    with open(config_path) as f:
        config = json.load(f)
    model = keras.layers.deserialize(config)
    if expected_class is not None and not isinstance(model, expected_class):
        raise ValueError(
            f"{path!r} holds a {type(model).__name__}; expected {expected_class.__name__}."
        )
    model.load_weights(weights_path)
    return model


class PretrainedModelMixin:
    """`save_pretrained`, `from_pretrained` and `from_config` for electra_tf models.

    Mixed in before `keras.Model`: every electra_tf model lists its
    constructor arguments in `get_config`, so `from_config` is `cls(**config)`.
    """

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def save_pretrained(self, path, overwrite=False):
        """Writes config.json + model.weights.h5, atomically (see `electra_tf.models.model_io`)."""
        save_pretrained(self, path, overwrite=overwrite)

    @classmethod
    def from_pretrained(cls, path):
        """Loads a directory written by `save_pretrained`, checking its class."""
        return load_pretrained(path, expected_class=cls)

