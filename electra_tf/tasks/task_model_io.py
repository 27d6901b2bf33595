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
import warnings

import tf_keras as keras

from electra_tf.models.model_io import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    load_pretrained,
    save_model_weights,
)
from electra_tf.preprocessing.electra_tokenizer import DEFAULT_VOCAB_PATH, ElectraTokenizer
from electra_tf.utils.atomic_directory import atomic_directory
from electra_tf.utils.json_files import write_json
from electra_tf.utils.checks import is_integer

TASK_NAME = "task.json"
VOCAB_NAME = "vocab.txt"
TASKS = ("classify", "tag", "qa")
# The one folder name every job (fine-tuning, pruning, distillation) writes its
# task model to, inside its output directory; earlier versions wrote
# classifier/ and tagger/, which are still read (`LEGACY_MODEL_DIRNAMES`).
MODEL_DIRNAME = "model"
LEGACY_MODEL_DIRNAMES = ("classifier", "tagger")



def resolve_model_dir(path):
    """The task-model directory that `path` names: `path` itself, or the model of a run.

    - a directory with config.json: itself;
    - a job's output directory (its --output-dir): its model/, or the
      classifier/ or tagger/ that earlier versions wrote;
    - an OUTPUT/classifier or OUTPUT/tagger path that does not exist while
      OUTPUT/model does (a script written for earlier versions): OUTPUT/model,
      with a DeprecationWarning.

    Anything else comes back unchanged, for the loader to say what is missing.

    >>> import os, tempfile
    >>> run = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(run, MODEL_DIRNAME))
    >>> _ = open(os.path.join(run, MODEL_DIRNAME, CONFIG_NAME), "w").write("{}")
    >>> resolve_model_dir(run) == resolve_model_dir(os.path.join(run, "classifier")) \\
    ...     == os.path.join(run, MODEL_DIRNAME)
    True
    """
    if os.path.isfile(os.path.join(path, CONFIG_NAME)):
        return path
    for name in (MODEL_DIRNAME, *LEGACY_MODEL_DIRNAMES):
        if os.path.isfile(os.path.join(path, name, CONFIG_NAME)):
            return os.path.join(path, name)
    parent, name = os.path.split(os.path.normpath(path))
    renamed = os.path.join(parent, MODEL_DIRNAME)
    if name in LEGACY_MODEL_DIRNAMES and os.path.isfile(os.path.join(renamed, CONFIG_NAME)):
        warnings.warn(
            f"{path!r} does not exist: jobs now write their model to OUTPUT/{MODEL_DIRNAME} "
            f"(earlier versions: OUTPUT/{name}); reading {renamed!r}. Pass the run directory "
            f"or {renamed!r}.", DeprecationWarning, stacklevel=2)
        return renamed
    return path


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
    >>> path = tempfile.mkdtemp() + "/model"
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
        write_json(os.path.join(tmp, CONFIG_NAME), keras.layers.serialize(model))
        save_model_weights(model, os.path.join(tmp, WEIGHTS_NAME))
        shutil.copyfile(tokenizer.vocab_path or DEFAULT_VOCAB_PATH, os.path.join(tmp, VOCAB_NAME))
        write_json(os.path.join(tmp, TASK_NAME), info)


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
    if not is_integer(max_seq_length) or not 3 <= max_seq_length <= limit:
        raise ValueError(
            f"`max_seq_length` (--max-seq-length) must be an integer in [3, {limit}] (the "
            f"encoder's max_sequence_length); received {max_seq_length!r}."
        )
    return max_seq_length


def load_task_model(path, task):
    """Loads a directory written by `save_task_model`: `(model, tokenizer, task_info)`.

    `path` may also be the output directory of the job that wrote it
    (`resolve_model_dir`).

    Raises:
        ValueError: `path` has no task.json (not written by a fine-tuning
            job) or holds a model for another task.
    """
    path = resolve_model_dir(path)
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
