"""Task directories in, training data and dev scores out: what every compression job reads.

    model, tokenizer, task_info = load_task_model_and_tokenizer("runs/ner/model")
    train = task_dataset(task_info, model, tokenizer, "train.conll", None, 32, shuffle=True)
    metrics = task_metrics(model, tokenizer, task_info, "dev.conll")  # metrics["score"]

The three tasks, one contract (`electra_tf.tasks.task_model_io`):

    task      model                      data files                      score
    classify  ElectraClassifier          CSV/TSV/JSONL (task.json cols)  accuracy (or pearson)
    tag       ElectraTokenClassifier     CoNLL                           entity F1
    qa        ElectraQuestionAnswering   SQuAD JSON                      F1 (and exact_match)

API (stable):
    load_task_model_and_tokenizer(model_dir, vocab_path=None) -> (model, tokenizer, task_info)
        Any task directory; a classifier directory without task.json (older
        ones) loads as a classifier with defaults.
    task_dataset(task_info, model, tokenizer, path, max_seq_length=None, batch_size=32,
                 shuffle=False, seed=0, errors="raise") -> tf.data.Dataset
        `(features, labels)` batches in the form the task model's own `fit` takes.
    task_metrics(model, tokenizer, task_info, path, max_seq_length=None, batch_size=32,
                 errors="raise") -> dict
        The task's evaluation metrics, plus "score" (the headline number) and
        "score_name" ("accuracy", "pearson", "f1").
    task_info_at_length(task_info, model, max_seq_length=None) -> dict
        task.json's settings at the packed length a job runs at (QA windows follow).
    save_compressed_model(model, path, tokenizer, task_info, compressed_from,
                          max_seq_length=None)
        A compressed model as a full task directory: task.json keeps the
        input's label names, columns and settings and records `compressed_from`.
"""

import os

from electra_tf.data.classification_dataset import (
    FORMATS as CLASSIFICATION_FORMATS,
    make_classification_dataset,
    read_classification_file,
)
from electra_tf.models.model_io import CONFIG_NAME, load_pretrained
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.electra_classifier import ElectraClassifier  # noqa: F401  (docstring examples)
from electra_tf.tasks.task_models import TASK_MODEL_CLASSES  # noqa: F401  (re-exported)
from electra_tf.tasks.task_model_io import (
    MODEL_DIRNAME,
    TASK_NAME,
    TASKS,
    VOCAB_NAME,
    read_task_info,
    resolve_max_seq_length,
    resolve_model_dir,
    save_task_model,
)

DEFAULT_MAX_SEQ_LENGTH = 128  # for a classifier directory without task.json
# The data files each task reads, for error messages.
TASK_DATA_FORMATS = {
    "classify": "a CSV/TSV file with a header row or JSON lines (`read_classification_file`)",
    "tag": "a CoNLL file: `word ... tag` lines, a blank line between sentences",
    "qa": "an official SQuAD v1.1/v2.0 JSON file",
}
# task.json keys that `save_task_model` writes itself; every other key is
# carried over to a compressed model's task.json.
_OWN_KEYS = ("task", "model_class", "label_names", "max_seq_length", "lower_case", "vocab")


def _check_model_directory(model_dir):
    if not os.path.isfile(os.path.join(model_dir, CONFIG_NAME)):
        raise ValueError(
            f"{model_dir!r} is not an electra_tf model directory: expected config.json, "
            f"model.weights.h5, {VOCAB_NAME} and {TASK_NAME} (what `electra-tf finetune "
            f"classify|tag|qa` writes to OUTPUT/{MODEL_DIRNAME}), or the OUTPUT directory itself."
        )


def load_task_model_and_tokenizer(model_dir, vocab_path=None):
    """The task model saved in `model_dir`, a tokenizer that fits it, and its task.json.

    `model_dir` may also be the output directory of the job that wrote the
    model (its model/, or the classifier/ or tagger/ of earlier versions;
    `resolve_model_dir`). The tokenizer reads `vocab_path`, else
    `model_dir/vocab.txt` when present, else the packaged uncased BERT
    vocabulary; it is cased when task.json says so. A directory without
    task.json (written by `save_pretrained` only) must hold an
    `ElectraClassifier`; its task info gets the defaults of
    `classifier_task_info`.

    Returns:
        `(model, tokenizer, task_info)`; `task_info` always has "task" and
        "max_seq_length", and "label_names" for classifiers and taggers.

    >>> import tempfile
    >>> load_task_model_and_tokenizer(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    ValueError: '...' is not an electra_tf model directory: expected config.json,
    model.weights.h5, vocab.txt and task.json (what `electra-tf finetune classify|tag|qa`
    writes to OUTPUT/model), or the OUTPUT directory itself.
    """
    model_dir = resolve_model_dir(model_dir)
    _check_model_directory(model_dir)
    info = read_task_info(model_dir)
    task = (info or {}).get("task", "classify")
    if task not in TASKS:
        raise ValueError(f"{os.path.join(model_dir, TASK_NAME)} names the task {task!r}; "
                         f"expected one of {list(TASKS)}.")
    model = load_pretrained(model_dir)
    expected = TASK_MODEL_CLASSES[task]
    if not isinstance(model, expected):
        raise ValueError(
            f"{model_dir!r} holds a {type(model).__name__}; its {TASK_NAME} says task "
            f"{task!r}, which expects an {expected.__name__}"
            + ("" if info else f" (a directory without {TASK_NAME} is read as a classifier)")
            + "."
        )
    info = dict(info or {})
    if vocab_path is None:
        vocab_name = info.get("vocab", VOCAB_NAME)
        if os.path.isfile(os.path.join(model_dir, vocab_name)):
            vocab_path = os.path.join(model_dir, vocab_name)
    tokenizer = ElectraTokenizer(vocab_path, lower_case=info.get("lower_case", True))
    if tokenizer.vocab_size != model.encoder.vocab_size:
        raise ValueError(
            f"The vocabulary has {tokenizer.vocab_size} tokens but the model's encoder "
            f"{model.encoder.vocab_size}; pass the model's vocab.txt as vocab_path (--vocab)."
        )
    if task == "classify":
        info = classifier_task_info(model_dir, model)
    info.setdefault("task", task)
    info.setdefault("max_seq_length", DEFAULT_MAX_SEQ_LENGTH)
    return model, tokenizer, info


def load_classifier_and_tokenizer(classifier_dir, vocab_path=None):
    """The `ElectraClassifier` saved in `classifier_dir` and a tokenizer whose vocabulary fits it.

    The classifier-only form of `load_task_model_and_tokenizer`: a tagger or
    QA directory raises a ValueError.

    >>> import tempfile
    >>> load_classifier_and_tokenizer(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    ValueError: '...' is not an electra_tf model directory: ...
    """
    model, tokenizer, info = load_task_model_and_tokenizer(classifier_dir, vocab_path)
    if info["task"] != "classify":
        raise ValueError(f"{classifier_dir!r} holds a {info['task']!r} model; expected a "
                         "classifier (`electra-tf finetune classify`).")
    return model, tokenizer


def classifier_task_info(classifier_dir, classifier):
    """What the classifier's directory records (task.json), with defaults for one that has none.

    The compression jobs read their defaults from it (max_seq_length, the text
    and label columns, label names; without task.json, max_seq_length 128 or
    the encoder's limit when lower) and write it, updated, next to their
    output model, so that `evaluate`, `predict`, `export` and `serve` read a
    pruned or distilled model as they read the fine-tuned one.

    >>> import tempfile
    >>> from electra_tf import ElectraEncoder
    >>> classifier = ElectraClassifier(ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                                num_heads=2, intermediate_size=16), num_classes=2)
    >>> info = classifier_task_info(tempfile.mkdtemp(), classifier)
    >>> info["task"], info["max_seq_length"], info["label_names"]
    ('classify', 128, ['0', '1'])
    """
    task = dict(read_task_info(classifier_dir) or {})
    if task.get("task", "classify") != "classify":
        raise ValueError(f"{classifier_dir!r} holds a {task['task']!r} model; the compression "
                         "jobs take classifiers (`electra-tf finetune classify`).")
    task.setdefault("task", "classify")
    task.setdefault("max_seq_length",
                    min(DEFAULT_MAX_SEQ_LENGTH, classifier.encoder.max_sequence_length))
    if task.get("label_names") is None and classifier.problem_type != "regression":
        task["label_names"] = [str(i) for i in range(classifier.num_classes)]
    return task


def _check_data_path(task, path):
    """A ValueError when `path` is plainly another task's data file (by its suffix)."""
    suffix = os.path.splitext(str(path))[1].lower()
    wrong = ((task == "tag" and (suffix in CLASSIFICATION_FORMATS or suffix == ".json"))
             or (task == "qa" and suffix in CLASSIFICATION_FORMATS)
             or (task == "classify" and suffix in (".conll", ".json")))
    if wrong:
        raise ValueError(f"A {task!r} model reads {TASK_DATA_FORMATS[task]}; received {path!r}, "
                         f"whose suffix {suffix!r} is another task's format.")


def _classification_examples(task_info, model, path, errors):
    regression = model.problem_type == "regression"
    examples, _ = read_classification_file(
        path,
        text_column=task_info.get("text_column") or "text",
        text_b_column=task_info.get("text_b_column"),
        label_column=task_info.get("label_column") or "label",
        problem_type=model.problem_type,
        num_classes=None if regression else model.num_classes,
        label_names=None if regression else task_info.get("label_names"),
        errors=errors,
    )
    return examples


def _conll_examples(task_info, path, errors):
    from electra_tf.data.conll_dataset import read_conll_file

    examples, _ = read_conll_file(path, label_column=task_info.get("label_column", -1),
                                  label_names=task_info["label_names"], errors=errors)
    return examples


def task_info_at_length(task_info, model, max_seq_length=None):
    """`task_info` with the packed length the job runs at: `max_seq_length`, else task.json's.

    For QA the window settings follow (a question budget and stride that fit
    a shorter window), as `evaluate_qa` adjusts them; the result is what a
    compressed model's task.json records.

    >>> class Encoder: max_sequence_length = 512
    >>> class Model: encoder = Encoder()
    >>> task_info_at_length({"task": "tag", "max_seq_length": 128}, Model(), 64)
    {'task': 'tag', 'max_seq_length': 64}
    >>> task_info_at_length({"task": "tag", "max_seq_length": 128}, Model(), 1024)
    Traceback (most recent call last):
    ...
    ValueError: `max_seq_length` (--max-seq-length) must be an integer in [3, 512] (the
    encoder's max_sequence_length); received 1024.
    """
    if task_info.get("task") == "qa":
        from electra_tf.tasks.run_qa import _with_max_seq_length

        return _with_max_seq_length(task_info, max_seq_length, model)
    return {**task_info, "max_seq_length": resolve_max_seq_length(task_info, max_seq_length, model)}


def _task_reading(task_info, path):
    """task_info's task ("classify" when unset), once `path` is checked to be that task's format."""
    task = task_info.get("task", "classify")
    if task not in TASKS:
        raise ValueError(f"`task_info['task']` must be one of {list(TASKS)}; received {task!r}.")
    _check_data_path(task, path)
    return task


def task_dataset(task_info, model, tokenizer, path, max_seq_length=None, batch_size=32,
                 shuffle=False, seed=0, errors="raise"):
    """The labelled file `path` as `(features, labels)` batches for the task model's `fit`.

    Args:
        task_info: the model directory's task.json (`load_task_model_and_tokenizer`).
        model: the task model (its classes / problem type / length limit).
        tokenizer: its `ElectraTokenizer`.
        path: a classification file (columns and label names from
            task_info), a CoNLL file (tag) or a SQuAD JSON file (qa).
        max_seq_length: packed length; None: task.json's.
        batch_size: examples (QA: windows) per batch.
        shuffle: reshuffle every epoch (for training), with `seed`.
        errors: "raise" at the first bad example, or "skip" (and count) them.

    Returns:
        A `tf.data.Dataset` with a known number of batches: features
        `{"input_word_ids", "input_mask", "input_type_ids"}` and labels as
        `make_classification_dataset`, `make_tagging_dataset` or
        `make_squad_dataset` (training windows) make them.

    A tagger given a classification file fails before anything is read:

    >>> task_dataset({"task": "tag", "label_names": ["O", "B-PER"]}, None, None, "train.tsv")
    Traceback (most recent call last):
    ...
    ValueError: A 'tag' model reads a CoNLL file: `word ... tag` lines, a blank line between
    sentences; received 'train.tsv', whose suffix '.tsv' is another task's format.
    """
    task = _task_reading(task_info, path)
    if task == "qa":
        from electra_tf.data.squad_dataset import create_squad_features, make_squad_dataset
        from electra_tf.tasks.run_qa import read_squad

        settings = task_info_at_length(task_info, model, max_seq_length)
        examples, skipped = read_squad(path, "train", errors)
        features = create_squad_features(
            examples, tokenizer, max_seq_length=settings["max_seq_length"],
            doc_stride=settings["doc_stride"], max_query_length=settings["max_query_length"],
            training=True, errors=errors)
        if len(features.example_index) == 0:
            raise ValueError(f"No usable questions in {path!r} (skipped: "
                             f"{features.skipped or skipped}); expected answered questions.")
        return make_squad_dataset(features, batch_size, shuffle=shuffle, seed=seed)
    max_seq_length = resolve_max_seq_length(task_info, max_seq_length, model)
    if task == "tag":
        from electra_tf.data.conll_dataset import make_tagging_dataset

        return make_tagging_dataset(_conll_examples(task_info, path, errors), tokenizer,
                                    max_seq_length, batch_size, shuffle=shuffle, seed=seed)
    return make_classification_dataset(_classification_examples(task_info, model, path, errors),
                                       tokenizer, max_seq_length, batch_size, shuffle=shuffle,
                                       seed=seed)


def task_metrics(model, tokenizer, task_info, path, max_seq_length=None, batch_size=32,
                 errors="raise"):
    """The task's evaluation of `model` on the labelled file `path`, with a headline "score".

    classify: `compute_metrics` (accuracy, f1, ...; regression: pearson, ...),
    score "accuracy" ("pearson" for regression). tag: `tagging_metrics`
    (entity-level f1, precision, recall, word accuracy), score "f1".
    qa: `squad_evaluate` (exact_match, f1 in percent), score "f1".
    The same code `electra-tf evaluate` runs on a model directory.

    Returns:
        The metrics dict plus "score" and "score_name".

    >>> task_metrics(None, None, {"task": "qa"}, "dev.tsv")
    Traceback (most recent call last):
    ...
    ValueError: A 'qa' model reads an official SQuAD v1.1/v2.0 JSON file; received 'dev.tsv',
    whose suffix '.tsv' is another task's format.
    """
    task = _task_reading(task_info, path)
    if task == "qa":
        from electra_tf.tasks.run_qa import answer_questions, read_squad
        from electra_tf.tasks.squad_metrics import squad_evaluate

        settings = task_info_at_length(task_info, model, max_seq_length)
        examples, _ = read_squad(path, "validation", errors)
        version_2 = bool(settings.get("version_2")) or any(e.is_impossible for e in examples)
        results = answer_questions(model, tokenizer, examples,
                                   {**settings, "version_2": version_2}, batch_size)
        predictions = {key: value["answer"] for key, value in results.items()}
        metrics = dict(squad_evaluate(examples, predictions, version_2=version_2))
        return {**metrics, "score": metrics["f1"], "score_name": "f1"}
    max_seq_length = resolve_max_seq_length(task_info, max_seq_length, model)
    if task == "tag":
        from electra_tf.tasks.run_tagging import tag_sentences
        from electra_tf.tasks.tagging_metrics import tagging_metrics

        examples = _conll_examples(task_info, path, errors)
        predicted, _, truncated = tag_sentences(model, tokenizer, examples["words"],
                                                task_info["label_names"], max_seq_length,
                                                batch_size)
        metrics = dict(tagging_metrics(examples["tags"], predicted))
        metrics["truncated_words"] = int(truncated)
        return {**metrics, "score": metrics["f1"], "score_name": "f1"}
    from electra_tf.tasks.classification_metrics import compute_metrics

    examples = _classification_examples(task_info, model, path, errors)
    data = make_classification_dataset(examples, tokenizer, max_seq_length, batch_size)
    logits = model.predict(data.map(lambda features, _: features), verbose=0)
    labels = [labels for _, labels in data.unbatch().as_numpy_iterator()]
    metrics = compute_metrics(labels, logits, model.problem_type)
    name = "pearson" if model.problem_type == "regression" else "accuracy"
    return {**metrics, "score": metrics[name], "score_name": name}


def save_compressed_model(model, path, tokenizer, task_info, compressed_from,
                          max_seq_length=None):
    """Writes a pruned or distilled `model` as a task directory like the one it came from.

    task.json keeps `task_info`'s task, label names, columns and settings
    (QA windows, post-processing), records `compressed_from` (e.g.
    "prune /abs/path/to/model"), and the max_seq_length (None: task_info's).

    >>> save_compressed_model(None, "out", None, {"task": "summarize"}, "prune in")
    Traceback (most recent call last):
    ...
    ValueError: `task_info['task']` must be one of ['classify', 'tag', 'qa']; received 'summarize'.
    """
    task = task_info.get("task", "classify")
    if task not in TASKS:
        raise ValueError(f"`task_info['task']` must be one of {list(TASKS)}; received {task!r}.")
    extra = {key: value for key, value in task_info.items() if key not in _OWN_KEYS}
    extra["compressed_from"] = compressed_from
    save_task_model(model, path, task, tokenizer,
                    max_seq_length or task_info.get("max_seq_length", DEFAULT_MAX_SEQ_LENGTH),
                    task_info.get("label_names"), extra=extra)
