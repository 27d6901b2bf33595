"""Hugging Face `ElectraForQuestionAnswering` ⇄ `ElectraQuestionAnswering(head="huggingface")`:
the file format. `ElectraQuestionAnswering.from_huggingface` builds the model from what this
module reads; this module builds no model.

The encoder goes through `electra_tf.checkpoint_formats.huggingface` (under the
`electra.` prefix); the head is one linear layer on `sequence_output`:

    qa_outputs.weight, .bias    qa_outputs (hidden → 2: start, end), transposed

transformers' forward splits its two outputs into start and end logits
with no dropout in between, which is what the "huggingface" head does.
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

ARCHITECTURE = "ElectraForQuestionAnswering"


def _head_slots(model):
    return [
        Slot(model.qa_outputs.kernel, ("qa_outputs/kernel",), HEAD),
        Slot(model.qa_outputs.bias, ("qa_outputs/bias",), HEAD),
    ]


def read_question_answering_checkpoint(path):
    """Reads an `ElectraForQuestionAnswering` directory for
    `ElectraQuestionAnswering.from_huggingface`.

    Returns:
        (the read `HuggingFaceCheckpoint`, the `ElectraQuestionAnswering` keyword arguments
        besides the encoder: `head`).

    Raises:
        ValueError: `path` is not an ELECTRA checkpoint or has no `qa_outputs` weights.
    """
    if not os.path.isdir(path):
        raise ValueError(f"Expected a Hugging Face checkpoint directory; {path!r} is not one.")
    checkpoint = read_huggingface_checkpoint(path)
    family = checkpoint.family
    if family != "electra":
        raise ValueError(
            f"{os.path.join(path, CONFIG_NAME)} has model_type={family!r}: only "
            f"{ARCHITECTURE} checkpoints load into an ElectraQuestionAnswering. Load the "
            "encoder with ElectraEncoder.from_huggingface and wrap it in a new "
            "ElectraQuestionAnswering."
        )
    missing = [key for key in ("qa_outputs.weight", "qa_outputs.bias")
               if key not in checkpoint.state]
    if missing:
        raise ValueError(
            f"{path!r} has no question-answering head: missing keys {missing}. Expected an "
            f"{ARCHITECTURE} checkpoint; a bare or pretraining checkpoint loads with "
            "ElectraEncoder.from_huggingface."
        )
    return checkpoint, dict(head="huggingface")


def assign_question_answering_head(model, checkpoint):
    """Copies the head of a `read_question_answering_checkpoint` checkpoint into `model`.

    Raises:
        ValueError naming each head weight whose shape differs from the model's.
    """

    def fetch(slot):
        key, transpose = _torch_name(slot.names[0], HEAD, checkpoint.family)
        return [checkpoint.state[key].T if transpose else checkpoint.state[key]]

    assign_slots(_head_slots(model), fetch)


def save_huggingface_question_answering(model, path, overwrite=False):
    """Writes `model` as an `ElectraForQuestionAnswering` directory, atomically.

    >>> import json, tempfile, electra_tf
    >>> encoder = electra_tf.ElectraEncoder(vocab_size=30, hidden_size=8, num_layers=1,
    ...                                     num_heads=2, intermediate_size=16)
    >>> model = electra_tf.ElectraQuestionAnswering(encoder, head="huggingface")
    >>> path = tempfile.mkdtemp() + "/squad_hf"
    >>> save_huggingface_question_answering(model, path)
    >>> sorted(os.listdir(path))
    ['config.json', 'model.safetensors']
    >>> with open(os.path.join(path, "config.json")) as f:
    ...     json.load(f)["architectures"]
    ['ElectraForQuestionAnswering']
    >>> loaded = electra_tf.ElectraQuestionAnswering.from_huggingface(path)
    >>> loaded.head, tuple(loaded.qa_outputs.kernel.shape)
    ('huggingface', (8, 2))
    >>> np.array_equal(loaded.qa_outputs.kernel.numpy(), model.qa_outputs.kernel.numpy())
    True
    """
    if model.head != "huggingface":
        raise ValueError(
            f"save_huggingface needs head='huggingface' (transformers' {ARCHITECTURE}); received "
            f"a model with head={model.head!r}, which transformers has no class for. Save it "
            "with save_pretrained instead."
        )
    config = huggingface_config(model.encoder)
    config.update(architectures=[ARCHITECTURE], num_labels=2,
                  id2label={"0": "LABEL_0", "1": "LABEL_1"},
                  label2id={"LABEL_0": 0, "LABEL_1": 1})
    state = {f"electra.{key}": value
             for key, value in huggingface_state_dict(model.encoder).items()}
    for slot in _head_slots(model):
        key, transpose = _torch_name(slot.names[0], HEAD, "electra")
        value = slot.variable.numpy()
        state[key] = np.ascontiguousarray(value.T if transpose else value)
    write_huggingface_directory(config, state, path, overwrite=overwrite)
