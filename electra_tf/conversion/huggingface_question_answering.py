"""Hugging Face `ElectraForQuestionAnswering` ⇄ `ElectraQuestionAnswering(head="simple")`.

The encoder goes through `electra_tf.conversion.huggingface` (under the
`electra.` prefix); the head is one linear layer on `sequence_output`:

    qa_outputs.weight, .bias    qa_outputs (hidden → 2: start, end), transposed

transformers' forward splits its two outputs into start and end logits
with no dropout in between, which is what the "simple" head does.
"""

import os

import numpy as np

from electra_tf.conversion.huggingface import (
    CONFIG_NAME,
    _torch_name,
    huggingface_config,
    huggingface_state_dict,
    load_huggingface,
    read_config,
    read_state_dict,
    write_huggingface_directory,
)
from electra_tf.conversion.weight_slots import HEAD, Slot, assign_slots

ARCHITECTURE = "ElectraForQuestionAnswering"


def _head_slots(model):
    return [
        Slot(model.qa_outputs.kernel, ("qa_outputs/kernel",), HEAD),
        Slot(model.qa_outputs.bias, ("qa_outputs/bias",), HEAD),
    ]


def load_huggingface_question_answering(path):
    """Builds an `ElectraQuestionAnswering(head="simple")` from a transformers directory.

    Raises:
        ValueError: `path` is not an ELECTRA checkpoint, has no `qa_outputs`
            weights, or a shape does not match its config (each is named).
    """
    from electra_tf.tasks.electra_question_answering import ElectraQuestionAnswering

    if not os.path.isdir(path):
        raise ValueError(f"Expected a Hugging Face checkpoint directory; {path!r} is not one.")
    _, family, _ = read_config(path)
    if family != "electra":
        raise ValueError(
            f"{os.path.join(path, CONFIG_NAME)} has model_type={family!r}: only "
            f"{ARCHITECTURE} checkpoints load into an ElectraQuestionAnswering. Load the "
            "encoder with ElectraEncoder.from_huggingface and wrap it in a new "
            "ElectraQuestionAnswering."
        )
    state = read_state_dict(path)
    model = ElectraQuestionAnswering(load_huggingface(path, "encoder"), head="simple")
    slots = _head_slots(model)
    keys = {name: _torch_name(name, HEAD, family) for slot in slots for name in slot.names}
    missing = [key for key, _ in keys.values() if key not in state]
    if missing:
        raise ValueError(
            f"{path!r} has no question-answering head: missing keys {missing}. Expected an "
            f"{ARCHITECTURE} checkpoint; a bare or pretraining checkpoint loads with "
            "ElectraEncoder.from_huggingface."
        )

    def fetch(slot):
        key, transpose = keys[slot.names[0]]
        return [state[key].T if transpose else state[key]]

    assign_slots(slots, fetch)
    return model


def save_huggingface_question_answering(model, path, overwrite=False):
    """Writes `model` as an `ElectraForQuestionAnswering` directory, atomically.

    >>> import json, tempfile, electra_tf
    >>> encoder = electra_tf.ElectraEncoder(vocab_size=30, hidden_size=8, num_layers=1,
    ...                                     num_heads=2, intermediate_size=16)
    >>> model = electra_tf.ElectraQuestionAnswering(encoder, head="simple")
    >>> path = tempfile.mkdtemp() + "/squad_hf"
    >>> save_huggingface_question_answering(model, path)
    >>> sorted(os.listdir(path))
    ['config.json', 'model.safetensors']
    >>> with open(os.path.join(path, "config.json")) as f:
    ...     json.load(f)["architectures"]
    ['ElectraForQuestionAnswering']
    >>> loaded = load_huggingface_question_answering(path)
    >>> loaded.head, tuple(loaded.qa_outputs.kernel.shape)
    ('simple', (8, 2))
    >>> np.array_equal(loaded.qa_outputs.kernel.numpy(), model.qa_outputs.kernel.numpy())
    True
    """
    if model.head != "simple":
        raise ValueError(
            f"save_huggingface needs head='simple' (transformers' {ARCHITECTURE}); received "
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
