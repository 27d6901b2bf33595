"""Hugging Face `ElectraForTokenClassification` ⇄ `ElectraTokenClassifier`: the file format.
`ElectraTokenClassifier.from_huggingface` builds the tagger from what this module reads; this
module builds no model.

The encoder goes through `electra_tf.checkpoint_formats.huggingface` (under the
`electra.` prefix); the head is one linear layer:

    classifier.weight, .bias    logits (hidden → num_labels), weight transposed

transformers drops out with `classifier_dropout`, or `hidden_dropout_prob`
when that is unset; so do we.
"""

import json
import os

import numpy as np

from electra_tf.checkpoint_formats.huggingface import (
    CONFIG_NAME,
    huggingface_config,
    huggingface_state_dict,
    read_huggingface_checkpoint,
    write_huggingface_directory,
)
from electra_tf.checkpoint_formats.weight_slots import HEAD, Slot, assign_slots

ARCHITECTURE = "ElectraForTokenClassification"
# Torch key of each head variable; both are stored (out, in) / (out,) by torch.
_HEAD_KEYS = {"kernel": "classifier.weight", "bias": "classifier.bias"}


def _head_slots(tagger):
    return [
        Slot(tagger.logits.kernel, (_HEAD_KEYS["kernel"],), HEAD),
        Slot(tagger.logits.bias, (_HEAD_KEYS["bias"],), HEAD),
    ]


def read_label_names(path):
    """The checkpoint's tag names in id order, from config.json's `id2label`.

    >>> import json, tempfile
    >>> path = tempfile.mkdtemp()
    >>> _ = open(path + "/config.json", "w").write(json.dumps(
    ...     {"id2label": {"1": "B-PER", "0": "O", "2": "I-PER"}}))
    >>> read_label_names(path)
    ['O', 'B-PER', 'I-PER']
    """
    with open(os.path.join(path, CONFIG_NAME)) as f:
        raw = json.load(f)
    id2label = raw.get("id2label")
    if not id2label:
        return [f"LABEL_{i}" for i in range(int(raw.get("num_labels", 2)))]
    return [id2label[key] for key in sorted(id2label, key=int)]


def read_token_classifier_checkpoint(path):
    """Reads an `ElectraForTokenClassification` directory for
    `ElectraTokenClassifier.from_huggingface`.

    Returns:
        (the read `HuggingFaceCheckpoint`, the `ElectraTokenClassifier` keyword arguments
        besides the encoder: `num_classes`, `dropout_rate`).

    Raises:
        ValueError: `path` is not an ELECTRA checkpoint or has no `classifier` weights.
    """
    if not os.path.isdir(path):
        raise ValueError(f"Expected a Hugging Face checkpoint directory; {path!r} is not one.")
    config_path = os.path.join(path, CONFIG_NAME)
    checkpoint = read_huggingface_checkpoint(path)
    family, raw, state = checkpoint.family, checkpoint.config, checkpoint.state
    if family != "electra":
        raise ValueError(
            f"{config_path} has model_type={family!r}: only {ARCHITECTURE} checkpoints load "
            "into an ElectraTokenClassifier. Load the encoder with "
            "ElectraEncoder.from_huggingface and wrap it in a new ElectraTokenClassifier."
        )
    missing = [key for key in _HEAD_KEYS.values() if key not in state]
    if missing:
        raise ValueError(
            f"{path!r} has no token-classification head: missing keys {missing}. Expected an "
            f"{ARCHITECTURE} checkpoint; a bare or pretraining checkpoint loads with "
            "ElectraEncoder.from_huggingface."
        )
    if state[_HEAD_KEYS["kernel"]].ndim != 2:
        raise ValueError(
            f"{path!r}: classifier.weight has shape {state[_HEAD_KEYS['kernel']].shape}; "
            f"expected (num_labels, hidden_size) as in {ARCHITECTURE} (a sequence classifier "
            "has classifier.dense and classifier.out_proj instead)."
        )
    dropout = raw.get("classifier_dropout")
    dropout = raw.get("hidden_dropout_prob", 0.1) if dropout is None else dropout
    return checkpoint, dict(num_classes=len(read_label_names(path)), dropout_rate=dropout)


def assign_token_classifier_head(tagger, checkpoint):
    """Copies the head of a `read_token_classifier_checkpoint` checkpoint into `tagger`.

    Raises:
        ValueError naming each head weight whose shape differs from the tagger's.
    """
    state = checkpoint.state
    assign_slots(
        _head_slots(tagger),
        lambda slot: [state[slot.names[0]].T if slot.names[0] == _HEAD_KEYS["kernel"]
                      else state[slot.names[0]]],
    )


def save_huggingface_token_classifier(tagger, path, label_names=None, overwrite=False):
    """Writes `tagger` as an `ElectraForTokenClassification` directory, atomically."""
    if label_names is None:
        label_names = [f"LABEL_{i}" for i in range(tagger.num_classes)]
    label_names = [str(name) for name in label_names]
    if len(label_names) != tagger.num_classes or len(set(label_names)) != len(label_names):
        raise ValueError(
            f"`label_names` must be {tagger.num_classes} distinct names, one per label id; "
            f"received {label_names}."
        )
    config = huggingface_config(tagger.encoder)
    config.update(
        architectures=[ARCHITECTURE],
        id2label={str(i): name for i, name in enumerate(label_names)},
        label2id={name: i for i, name in enumerate(label_names)},
        classifier_dropout=tagger.dropout_rate,
    )
    state = {
        f"electra.{key}": value for key, value in huggingface_state_dict(tagger.encoder).items()
    }
    state[_HEAD_KEYS["kernel"]] = np.ascontiguousarray(tagger.logits.kernel.numpy().T)
    state[_HEAD_KEYS["bias"]] = tagger.logits.bias.numpy()
    write_huggingface_directory(config, state, path, overwrite=overwrite)
