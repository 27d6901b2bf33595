"""A fine-tuned model directory that `electra-tf evaluate|predict` can use on its own.

What `save_pretrained` writes (config.json + model.weights.h5), plus what
turns raw text into the model's inputs and its outputs back into names:

    vocab.txt    the WordPiece vocabulary the model was fine-tuned with
    task.json    {"task": "classify" | "tag" | "qa", "label_names", "max_seq_length",
                  "lower_case", ...}: the preprocessing and the label names

The directory is written all at once (`atomic_directory`), and the model
still loads with `ElectraClassifier.from_pretrained(path)` (or the tagger's).
"""

import json
import os
import shutil

import tf_keras as keras

from electra_tf.models.model_io import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    load_pretrained,
    save_model_weights,
)
from electra_tf.preprocessing.electra_tokenizer import DEFAULT_VOCAB_PATH, ElectraTokenizer
from electra_tf.utils.atomic_directory import atomic_directory

TASK_NAME = "task.json"
VOCAB_NAME = "vocab.txt"
TASKS = ("classify", "tag", "qa")


def save_task_model(model, path, task, tokenizer, max_seq_length, label_names,
                    extra=None, overwrite=False):
    """Writes `model` with its vocabulary and task.json to the directory `path`.

    Args:
        model: a fine-tuned `ElectraClassifier`, `ElectraTokenClassifier` or
            `ElectraQuestionAnswering`.
        path: the directory to write.
        task: "classify", "tag" or "qa".
        tokenizer: the `ElectraTokenizer` the model was trained with.
        max_seq_length: the packed length it was trained with.
        label_names: class or tag names in id order (None for regression).
        extra: more JSON-able settings for task.json (e.g. "problem_type").
        overwrite: replace an existing directory (only once the new one is complete).

    >>> import tempfile, electra_tf
    >>> from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    >>> encoder = electra_tf.ElectraEncoder(vocab_size=30522, hidden_size=8, num_layers=1,
    ...                                     num_heads=2, intermediate_size=16)
    >>> path = tempfile.mkdtemp() + "/tagger"
    >>> save_task_model(electra_tf.ElectraTokenClassifier(encoder, 3), path, "tag",
    ...                 ElectraTokenizer(), 64, ["O", "B-PER", "I-PER"])
    >>> model, tokenizer, task = load_task_model(path, "tag")
    >>> task["label_names"], task["max_seq_length"], tokenizer.vocab_size
    (['O', 'B-PER', 'I-PER'], 64, 30522)
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {list(TASKS)}; received task={task!r}.")
    info = {
        "task": task,
        "model_class": type(model).__name__,
        "label_names": None if label_names is None else [str(n) for n in label_names],
        "max_seq_length": int(max_seq_length),
        "lower_case": bool(tokenizer.lower_case),
        "vocab": VOCAB_NAME,
        **(extra or {}),
    }
    with atomic_directory(path, overwrite=overwrite) as tmp:
        with open(os.path.join(tmp, CONFIG_NAME), "w") as f:
            json.dump(keras.layers.serialize(model), f, indent=2)
        save_model_weights(model, os.path.join(tmp, WEIGHTS_NAME))
        shutil.copyfile(tokenizer.vocab_path or DEFAULT_VOCAB_PATH, os.path.join(tmp, VOCAB_NAME))
        with open(os.path.join(tmp, TASK_NAME), "w") as f:
            json.dump(info, f, indent=2)


def read_task_info(path):
    """The directory's task.json as a dict, or None when it has none.

    >>> import tempfile
    >>> read_task_info(tempfile.mkdtemp()) is None
    True
    """
    task_path = os.path.join(path, TASK_NAME)
    if not os.path.isfile(task_path):
        return None
    with open(task_path) as f:
        try:
            info = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{task_path} is not valid JSON: {error}") from error
    if not isinstance(info, dict):
        raise ValueError(f"{task_path} holds a JSON {type(info).__name__}; expected an object.")
    return info


def resolve_max_seq_length(task_info, max_seq_length, model):
    """The packed length to run `model` at: `max_seq_length` when given, else task.json's.

    A model fine-tuned at 48 pieces can be scored on whole sentences at 128:
    any length up to its encoder's `max_sequence_length` works.

    >>> class Encoder: max_sequence_length = 512
    >>> class Model: encoder = Encoder()
    >>> (resolve_max_seq_length({"max_seq_length": 48}, None, Model()),
    ...  resolve_max_seq_length({"max_seq_length": 48}, 128, Model()))
    (48, 128)
    """
    if max_seq_length is None:
        return int(task_info["max_seq_length"])
    limit = model.encoder.max_sequence_length
    if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) \
            or not 3 <= max_seq_length <= limit:
        raise ValueError(
            f"`max_seq_length` (--max-seq-length) must be an integer in [3, {limit}] (the "
            f"encoder's max_sequence_length); received {max_seq_length!r}."
        )
    return max_seq_length


def load_task_model(path, task):
    """Loads a directory written by `save_task_model`: `(model, tokenizer, task_info)`.

    Raises:
        ValueError: `path` has no task.json (not written by a fine-tuning
            job) or holds a model for another task.
    """
    info = read_task_info(path)
    if info is None:
        raise ValueError(
            f"{path!r} has no {TASK_NAME}: expected a model directory written by "
            f"`electra-tf finetune {task}` (its --output-dir holds one), which records the "
            "vocabulary, max_seq_length and label names that prediction needs."
        )
    if info.get("task") != task:
        raise ValueError(
            f"{path!r} holds a model for task {info.get('task')!r}; expected a {task!r} model "
            f"(use `electra-tf ... {info.get('task')}`)."
        )
    model = load_pretrained(path)
    tokenizer = ElectraTokenizer(os.path.join(path, info["vocab"]), lower_case=info["lower_case"])
    return model, tokenizer, info
