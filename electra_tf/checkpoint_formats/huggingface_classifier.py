"""Hugging Face `ElectraForSequenceClassification` ⇄ `ElectraClassifier(head="huggingface")`:
the file format. `ElectraClassifier.from_huggingface` builds the classifier from what this
module reads; this module builds no model.

The encoder goes through `electra_tf.checkpoint_formats.huggingface` (under the
`electra.` prefix); the head's four tensors are

    classifier.dense.weight, .bias      dense   (hidden → hidden), transposed
    classifier.out_proj.weight, .bias   logits  (hidden → num_labels), transposed

Problem types map as transformers names them: "single_label_classification",
"multi_label_classification", "regression"; an unset problem type with one
label is regression, as transformers decides at its first loss computation.
"""

import os

import numpy as np

from electra_tf.checkpoint_formats.huggingface import (
    CONFIG_NAME,
    _torch_name,
    huggingface_config,
    huggingface_state_dict,
    read_huggingface_checkpoint,
    write_huggingface_directory,
)
from electra_tf.checkpoint_formats.weight_slots import HEAD, Slot, assign_slots

ARCHITECTURE = "ElectraForSequenceClassification"
# Ours → transformers' `config.problem_type`.
PROBLEM_TYPE_NAMES = {
    "single_label": "single_label_classification",
    "multi_label": "multi_label_classification",
    "regression": "regression",
}


def _head_slots(classifier):
    dense, logits = classifier.dense, classifier.logits
    return [
        Slot(dense.kernel, ("classifier/dense/kernel",), HEAD),
        Slot(dense.bias, ("classifier/dense/bias",), HEAD),
        Slot(logits.kernel, ("classifier/out_proj/kernel",), HEAD),
        Slot(logits.bias, ("classifier/out_proj/bias",), HEAD),
    ]


def _num_labels(raw):
    if "id2label" in raw:
        return len(raw["id2label"])
    return int(raw.get("num_labels", 2))  # transformers' PretrainedConfig default


def _problem_type(raw, num_labels, config_path):
    name = raw.get("problem_type")
    if name is None:
        return "regression" if num_labels == 1 else "single_label"
    for ours, theirs in PROBLEM_TYPE_NAMES.items():
        if name == theirs:
            return ours
    raise ValueError(
        f"{config_path} has problem_type={name!r}; expected one of "
        f"{sorted(PROBLEM_TYPE_NAMES.values())} or none."
    )


def _head_keys(family):
    """Our slot name of each head weight → (torch key, transposed?)."""
    return {name: _torch_name(name, HEAD, family)
            for name in ("classifier/dense/kernel", "classifier/dense/bias",
                         "classifier/out_proj/kernel", "classifier/out_proj/bias")}


def read_classifier_checkpoint(path):
    """Reads an `ElectraForSequenceClassification` directory for `ElectraClassifier.from_huggingface`.

    Returns:
        (the read `HuggingFaceCheckpoint`, the `ElectraClassifier` keyword arguments besides
        the encoder: `num_classes`, `head`, `problem_type`, `dropout_rate`).

    Raises:
        ValueError: `path` is not an ELECTRA checkpoint or has no
            `classifier.dense`/`classifier.out_proj` weights.
    """
    if not os.path.isdir(path):
        raise ValueError(f"Expected a Hugging Face checkpoint directory; {path!r} is not one.")
    config_path = os.path.join(path, CONFIG_NAME)
    checkpoint = read_huggingface_checkpoint(path)
    family, raw = checkpoint.family, checkpoint.config
    if family != "electra":
        raise ValueError(
            f"{config_path} has model_type={family!r}: only ElectraForSequenceClassification "
            "checkpoints load into an ElectraClassifier (BERT's classifier reads a tanh pooler "
            "that ELECTRA has not). Load the encoder with ElectraEncoder.from_huggingface and "
            "wrap it in a new ElectraClassifier."
        )
    num_labels = _num_labels(raw)
    problem_type = _problem_type(raw, num_labels, config_path)
    dropout = raw.get("classifier_dropout")
    dropout = raw.get("hidden_dropout_prob", 0.1) if dropout is None else dropout
    missing = [key for key, _ in _head_keys(family).values() if key not in checkpoint.state]
    if missing:
        raise ValueError(
            f"{path!r} has no sequence-classification head: missing keys {missing}. "
            f"Expected an {ARCHITECTURE} checkpoint; a bare or pretraining checkpoint "
            "loads with ElectraEncoder.from_huggingface."
        )
    return checkpoint, dict(num_classes=num_labels, head="huggingface",
                            problem_type=problem_type, dropout_rate=dropout)


def assign_classifier_head(classifier, checkpoint):
    """Copies the head of a `read_classifier_checkpoint` checkpoint into `classifier`.

    Raises:
        ValueError naming each head weight whose shape differs from the classifier's.
    """
    keys = _head_keys(checkpoint.family)

    def fetch(slot):
        values = []
        for name in slot.names:
            key, transpose = keys[name]
            value = checkpoint.state[key]
            values.append(value.T if transpose else value)
        return values

    assign_slots(_head_slots(classifier), fetch)


def save_huggingface_classifier(classifier, path, overwrite=False, label_names=None):
    """Writes `classifier` as an `ElectraForSequenceClassification` directory, atomically.

    `label_names` (one per class, in id order) become config.json's `id2label`
    and `label2id`, so transformers' pipelines print them; None writes
    transformers' own defaults, LABEL_0, LABEL_1, ...

    >>> import json, tempfile, electra_tf
    >>> encoder = electra_tf.ElectraEncoder(vocab_size=30, hidden_size=8, num_layers=1,
    ...                                     num_heads=2, intermediate_size=16)
    >>> classifier = electra_tf.ElectraClassifier(encoder, num_classes=3, head="huggingface")
    >>> path = tempfile.mkdtemp() + "/sentiment_hf"
    >>> save_huggingface_classifier(classifier, path, label_names=["neg", "neu", "pos"])
    >>> sorted(os.listdir(path))
    ['config.json', 'model.safetensors']
    >>> with open(os.path.join(path, "config.json")) as f:
    ...     config = json.load(f)
    >>> config["architectures"], config["id2label"], config["problem_type"]
    (['ElectraForSequenceClassification'], {'0': 'neg', '1': 'neu', '2': 'pos'},
     'single_label_classification')
    >>> loaded = electra_tf.ElectraClassifier.from_huggingface(path)
    >>> loaded.num_classes, loaded.head, loaded.problem_type
    (3, 'huggingface', 'single_label')
    >>> np.array_equal(loaded.logits.kernel.numpy(), classifier.logits.kernel.numpy())
    True
    >>> save_huggingface_classifier(electra_tf.ElectraClassifier(encoder, num_classes=3), path)
    Traceback (most recent call last):
    ...
    ValueError: save_huggingface needs head='huggingface' (...); received a classifier with
    head='electra', which transformers has no class for. ...
    """
    if classifier.head != "huggingface":
        raise ValueError(
            f"save_huggingface needs head='huggingface' (transformers' ElectraClassificationHead); "
            f"received a classifier with head={classifier.head!r}, which transformers has no "
            "class for. Save it with save_pretrained instead."
        )
    encoder = classifier.encoder
    config = huggingface_config(encoder)
    if label_names is not None and len(label_names) != classifier.num_classes:
        raise ValueError(
            f"`label_names` must name each of the classifier's {classifier.num_classes} "
            f"classes; received {len(label_names)}: {list(label_names)!r}."
        )
    labels = {i: str(label_names[i]) if label_names is not None else f"LABEL_{i}"
              for i in range(classifier.num_classes)}
    config.update(
        architectures=[ARCHITECTURE],
        id2label={str(i): label for i, label in labels.items()},
        label2id={label: i for i, label in labels.items()},
        problem_type=PROBLEM_TYPE_NAMES[classifier.problem_type],
        classifier_dropout=classifier.dropout_rate,
    )
    state = {f"electra.{key}": value for key, value in huggingface_state_dict(encoder).items()}
    for slot in _head_slots(classifier):
        (name,) = slot.names
        key, transpose = _torch_name(name, HEAD, "electra")
        value = slot.variable.numpy()
        state[key] = np.ascontiguousarray(value.T if transpose else value)
    write_huggingface_directory(config, state, path, overwrite=overwrite)
