"""Labelled text (local CSV/TSV/JSONL files or TensorFlow Datasets) → classifier batches.

Every pipeline ends the same way: batches of `{"text", ["text_b"], "label"}`
are tokenized and packed inside the graph by an `ElectraTokenizer`
(`[CLS] text [SEP]` or `[CLS] text [SEP] text_b [SEP]`), giving
`(features, labels)` with features `{"input_word_ids", "input_mask",
"input_type_ids"}` int32 (batch, max_seq_length) and labels int32 (batch,)
("single_label"), float32 (batch, num_classes) multi-hot ("multi_label") or
float32 (batch,) ("regression"), ready for `ElectraClassifier.fit`.

Local files have a header row (CSV, TSV) or one JSON object per line (JSONL).
Bad input: a missing file, an unknown suffix or a missing column raise a
ValueError at once; a bad row (empty text, a label that is not a known class
id or name or is out of range, a malformed line) raises a ValueError naming
the file and line, or with `errors="skip"` is skipped, counted and logged.
"""

import collections
import csv
import json
import logging
import math
import os
import re

import numpy as np
import tensorflow as tf

from electra_tf.data.labels import PROBLEM_TYPES

logger = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Reasons a row is skipped with errors="skip", the keys of the returned counts.
SKIP_REASONS = ("empty_text", "bad_label", "malformed_row")
# Multi-label cells list their labels separated by commas, bars or spaces: "0,2", "sports|art".
_MULTI_LABEL_SEPARATOR = re.compile(r"[,|\s]+")

# TensorFlow Datasets sources: feature names, label count and names (TFDS' ClassLabel names
# in id order; None for STS-B, whose labels are similarity scores from 0 to 5, a regression).
# GLUE's test splits hide their labels (all -1): use them for prediction only.
TFDS_TASKS = {
    "imdb_reviews": {"text": "text", "text_b": None, "num_classes": 2},
    "glue/cola": {"text": "sentence", "text_b": None, "num_classes": 2,
                  "label_names": ["unacceptable", "acceptable"]},
    "glue/sst2": {"text": "sentence", "text_b": None, "num_classes": 2,
                  "label_names": ["negative", "positive"]},
    "glue/mrpc": {"text": "sentence1", "text_b": "sentence2", "num_classes": 2,
                  "label_names": ["not_equivalent", "equivalent"]},
    "glue/stsb": {"text": "sentence1", "text_b": "sentence2", "num_classes": 1,
                  "label_names": None, "problem_type": "regression"},
    "glue/qqp": {"text": "question1", "text_b": "question2", "num_classes": 2,
                 "label_names": ["not_duplicate", "duplicate"]},
    "glue/mnli": {"text": "premise", "text_b": "hypothesis", "num_classes": 3,
                  "label_names": ["entailment", "neutral", "contradiction"]},
    "glue/qnli": {"text": "question", "text_b": "sentence", "num_classes": 2,
                  "label_names": ["entailment", "not_entailment"]},
    "glue/rte": {"text": "sentence1", "text_b": "sentence2", "num_classes": 2,
                 "label_names": ["entailment", "not_entailment"]},
    # GLUE's diagnostic set: MNLI-style pairs, a test split only; the MNLI model predicts it.
    "glue/ax": {"text": "premise", "text_b": "hypothesis", "num_classes": 3,
                "label_names": ["entailment", "neutral", "contradiction"]},
    # WNLI's ids are the other way round: 1 is entailment.
    "glue/wnli": {"text": "sentence1", "text_b": "sentence2", "num_classes": 2,
                  "label_names": ["not_entailment", "entailment"]},
}


class _BadRow(Exception):
    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason


def _rows(path, file_format):
    """Yields (line number, dict of column → value or None, columns); checks the header."""
    with open(path, newline="", encoding="utf-8") as f:
        if file_format == "jsonl":
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    yield number, _BadRow("malformed_row", f"not valid JSON ({error.msg})")
                    continue
                if not isinstance(row, dict):
                    yield number, _BadRow(
                        "malformed_row", f"expected a JSON object, found {type(row).__name__}"
                    )
                    continue
                yield number, row
            return
        # TSV as GLUE writes it: no quoting, a quote is an ordinary character.
        reader = (
            csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            if file_format == "tsv"
            else csv.reader(f)
        )
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path} is empty; expected a header row and examples.")
        yield 1, header  # the caller checks the columns
        for row in reader:
            number = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                yield number, _BadRow(
                    "malformed_row", f"{len(row)} fields where the header has {len(header)}"
                )
                continue
            yield number, dict(zip(header, row))


def _parse_label(value, problem_type, num_classes, label_names):
    """One label cell → int class id, float target, or sorted list of class ids."""
    if problem_type == "regression":
        try:
            target = float(value)
        except (TypeError, ValueError):
            raise _BadRow("bad_label", f"regression target {value!r} is not a number") from None
        if not math.isfinite(target):
            raise _BadRow("bad_label", f"regression target {value!r} is not finite")
        return target
    if problem_type == "multi_label":
        parts = value if isinstance(value, list) else _MULTI_LABEL_SEPARATOR.split(str(value).strip())
        return sorted({_class_id(part, num_classes, label_names) for part in parts if part != ""})
    return _class_id(value, num_classes, label_names)


def _class_id(value, num_classes, label_names):
    if label_names is not None and str(value) in label_names:
        return label_names.index(str(value))
    try:
        class_id = int(value) if not isinstance(value, float) else None
    except (TypeError, ValueError):
        class_id = None
    if class_id is None:
        known = f"one of {label_names} or " if label_names else ""
        raise _BadRow("bad_label", f"label {value!r} is not {known}an integer class id")
    if class_id < 0 or (num_classes is not None and class_id >= num_classes):
        expected = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise _BadRow("bad_label", f"label {class_id} is out of range; expected {expected}")
    return class_id


def read_classification_file(
    path,
    text_column="text",
    text_b_column=None,
    label_column="label",
    problem_type="single_label",
    num_classes=None,
    label_names=None,
    errors="raise",
):
    """Reads a CSV, TSV or JSONL file of labelled texts into Python lists.

    Args:
        path: a .csv or .tsv file with a header row, or a .jsonl file with one
            object per line.
        text_column: the column (key) of the text.
        text_b_column: the column of the second text of a pair, or None.
        label_column: the column of the label.
        problem_type: "single_label" (one class id or name), "multi_label"
            (ids or names separated by ",", "|" or spaces, or a JSON list) or
            "regression" (a number).
        num_classes: the number of classes; labels outside [0, num_classes)
            are bad rows. None: `len(label_names)`, or else the largest label
            + 1 (at least 2). Required for "multi_label" without `label_names`.
        label_names: class names in id order, e.g. ["negative", "positive"];
            labels may then be names or ids.
        errors: "raise" (a ValueError at the first bad row, with its line)
            or "skip" (bad rows are skipped, counted and logged).

    Returns:
        `(examples, skipped)`: `examples` is `{"text": [...], "label": [...]}`
        (plus "text_b" for pairs) for `make_classification_dataset`, with
        "num_classes" set for classification; `skipped` counts skipped rows
        by reason ("empty_text", "bad_label", "malformed_row").

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "train.tsv")
    >>> _ = open(path, "w").write("label\\ttext\\n1\\tA fine film.\\n0\\t \\n0\\tDull.\\n")
    >>> examples, skipped = read_classification_file(path, errors="skip")
    >>> examples["text"], examples["label"], skipped["empty_text"]
    (['A fine film.', 'Dull.'], [1, 0], 1)
    """
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(
            f"`problem_type` must be one of {list(PROBLEM_TYPES)}; received {problem_type!r}."
        )
    if errors not in ("raise", "skip"):
        raise ValueError(f"`errors` must be 'raise' or 'skip'; received errors={errors!r}.")
    if not os.path.isfile(path):
        raise ValueError(f"Classification data file not found: received path={path!r}.")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"Cannot tell the format of {path!r} from its suffix {suffix!r}; expected one of "
            f"{sorted(FORMATS)} (CSV/TSV with a header row, or JSON lines). Rename the file."
        )
    file_format = FORMATS[suffix]
    if label_names is not None:
        label_names = [str(name) for name in label_names]
        if num_classes is None:
            num_classes = len(label_names)
        elif num_classes != len(label_names):
            raise ValueError(
                f"num_classes={num_classes} but {len(label_names)} label_names were given; "
                "pass one of them, or make them agree."
            )
    if problem_type == "multi_label" and num_classes is None:
        raise ValueError(
            "problem_type='multi_label' needs `num_classes` or `label_names`: the width of "
            "the multi-hot labels cannot be guessed from one file."
        )
    columns = [text_column, label_column] + ([text_b_column] if text_b_column else [])

    examples = {"text": [], "label": []}
    if text_b_column:
        examples["text_b"] = []
    skipped = collections.Counter({reason: 0 for reason in SKIP_REASONS})
    rows = _rows(path, file_format)
    for number, row in rows:
        try:
            if isinstance(row, _BadRow):
                raise row
            if file_format != "jsonl" and number == 1:  # the header
                missing = [column for column in columns if column not in row]
                if missing:
                    raise ValueError(
                        f"{path} has no column(s) {missing}; its header is {row}. Pass "
                        "text_column=, text_b_column= and label_column= to name yours."
                    )
                continue
            missing = [column for column in columns if column not in row]
            if missing:  # JSONL: every object must have the keys
                raise ValueError(
                    f"{path}:{number}: the object has no key(s) {missing}; its keys are "
                    f"{sorted(row)}. Pass text_column=, text_b_column= and label_column= "
                    "to name yours."
                )
            texts = [row[text_column]] + ([row[text_b_column]] if text_b_column else [])
            for text in texts:
                if not isinstance(text, str) or not text.strip():
                    raise _BadRow("empty_text", f"empty text {text!r}")
            label = _parse_label(row[label_column], problem_type, num_classes, label_names)
        except _BadRow as bad:
            if errors == "raise":
                raise ValueError(
                    f"{path}:{number}: {bad}. Fix the row, or pass errors='skip' to skip and "
                    "count such rows."
                ) from None
            skipped[bad.reason] += 1
            continue
        examples["text"].append(texts[0])
        if text_b_column:
            examples["text_b"].append(texts[1])
        examples["label"].append(label)

    if any(skipped.values()):
        logger.warning("%s: skipped %s", path, dict(skipped))
    if not examples["text"]:
        raise ValueError(f"{path} has no usable examples (skipped: {dict(skipped)}).")
    if problem_type != "regression":
        if num_classes is None:
            num_classes = max(2, max(examples["label"]) + 1)
        examples["num_classes"] = num_classes
    return examples, dict(skipped)


def _encode_fn(tokenizer, max_seq_length, pair):
    """A batch {"text", ["text_b"], "label"} → (packed features, label), in the graph."""

    def encode(batch):
        segments = [tokenizer.tokenize(batch["text"])]  # (B, (pieces))
        if pair:
            segments.append(tokenizer.tokenize(batch["text_b"]))
        features = tokenizer.pack(segments, max_seq_length)  # (B, T) each
        return features, batch["label"]

    return encode


def _finish(dataset, tokenizer, max_seq_length, batch_size, pair, drop_remainder):
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(
        _encode_fn(tokenizer, max_seq_length, pair), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_classification_dataset(
    examples,
    tokenizer,
    max_seq_length=128,
    batch_size=32,
    shuffle=False,
    seed=None,
    drop_remainder=False,
):
    """In-memory labelled texts → a tf.data pipeline of `(features, labels)` batches.

    Args:
        examples: `{"text": [...], "label": [...]}` plus "text_b" for pairs,
            as `read_classification_file` returns them. Labels are ints
            (class ids), floats (regression) or lists of class ids
            (multi-label, which needs `examples["num_classes"]`).
        tokenizer: an `ElectraTokenizer`.
        max_seq_length: packed length, special tokens included; longer
            inputs are truncated (longest segment first).
        batch_size: examples per batch.
        shuffle: reshuffle all examples every epoch (for training).
        seed: shuffle seed, for reproducible order.
        drop_remainder: drop the last partial batch (static batch shape).

    >>> from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    >>> data = make_classification_dataset({"text": ["Great!", "Awful."], "label": [1, 0]},
    ...                                    ElectraTokenizer(), max_seq_length=8)
    >>> features, labels = next(iter(data))
    >>> features["input_word_ids"].numpy()[0], labels.numpy()
    (array([ 101, 2307,  999,  102,    0,    0,    0,    0], dtype=int32), array([1, 0], dtype=int32))
    """
    missing = [key for key in ("text", "label") if key not in examples]
    if missing:
        raise ValueError(
            f"`examples` lacks {missing}; expected keys 'text', 'label' and optionally "
            f"'text_b'; received {sorted(examples)}."
        )
    count = len(examples["text"])
    lengths = {key: len(examples[key]) for key in ("text", "text_b", "label") if key in examples}
    if len(set(lengths.values())) != 1 or count == 0:
        raise ValueError(
            f"`examples` columns must be non-empty and of one length; received lengths {lengths}."
        )
    labels = examples["label"]
    if labels and isinstance(labels[0], (list, tuple)):  # multi-label: class ids → multi-hot
        if "num_classes" not in examples:
            raise ValueError(
                "Multi-label examples need examples['num_classes'] to size the multi-hot labels."
            )
        multi_hot = np.zeros((count, examples["num_classes"]), np.float32)
        for row, ids in enumerate(labels):
            multi_hot[row, list(ids)] = 1.0
        labels = multi_hot
    elif any(isinstance(label, float) for label in labels):
        labels = np.asarray(labels, np.float32)
    else:
        labels = np.asarray(labels, np.int32)
    columns = {"text": tf.constant(examples["text"], tf.string), "label": labels}
    pair = "text_b" in examples
    if pair:
        columns["text_b"] = tf.constant(examples["text_b"], tf.string)
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    return _finish(dataset, tokenizer, max_seq_length, batch_size, pair, drop_remainder)


def load_tfds_classification(
    name,
    split,
    tokenizer,
    max_seq_length=128,
    batch_size=32,
    shuffle=False,
    seed=None,
    data_dir=None,
):
    """A TensorFlow Datasets text-classification task → `(features, labels)` batches.

    Supported: "imdb_reviews" and the nine GLUE tasks "glue/cola", "glue/sst2",
    "glue/mrpc", "glue/stsb" (float labels: a regression), "glue/qqp", "glue/mnli",
    "glue/qnli", "glue/rte" and "glue/wnli"; see `TFDS_TASKS` for their text
    features, label counts and label names. The data is
    read with `tfds.load`, downloaded and prepared into `data_dir` (default
    ~/tensorflow_datasets) on first use.

    Args:
        name: a key of `TFDS_TASKS`.
        split: a TFDS split, e.g. "train", "validation", "train[:10%]".
        tokenizer: an `ElectraTokenizer`.
        max_seq_length: packed length, special tokens included.
        batch_size: examples per batch.
        shuffle: shuffle files and examples (for training).
        seed: seed of the example shuffle.
        data_dir: where TFDS keeps its data.

    Example (offline, with TFDS' mock data):
    >>> import tensorflow_datasets as tfds
    >>> from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    >>> with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
    ...     data = load_tfds_classification("glue/mrpc", "train", ElectraTokenizer(),
    ...                                     max_seq_length=16, batch_size=4)
    ...     features, labels = next(iter(data))
    >>> features["input_type_ids"].shape, labels.dtype
    (TensorShape([4, 16]), tf.int32)
    """
    if name not in TFDS_TASKS:
        raise ValueError(
            f"Unknown TFDS classification task {name!r}; expected one of {sorted(TFDS_TASKS)}. "
            "For other data, read it into examples and use make_classification_dataset."
        )
    import tensorflow_datasets as tfds

    task = TFDS_TASKS[name]
    dataset = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=shuffle)
    pair = task["text_b"] is not None
    regression = task.get("problem_type") == "regression"
    label_dtype = tf.float32 if regression else tf.int32

    def select(example):
        columns = {"text": example[task["text"]], "label": tf.cast(example["label"], label_dtype)}
        if pair:
            columns["text_b"] = example[task["text_b"]]
        return columns

    dataset = dataset.map(select, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        # 10k examples: a well-mixed buffer that stays small in memory.
        dataset = dataset.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return _finish(dataset, tokenizer, max_seq_length, batch_size, pair, drop_remainder=False)


def read_tfds_classification(name, split, limit=None, data_dir=None, require_labels=True,
                             include_idx=False):
    """A TensorFlow Datasets text-classification split as examples: lists of texts and labels.

    The same tasks as `load_tfds_classification` (see `TFDS_TASKS`), returned in the form
    `read_classification_file` returns, `{"text": [...], "label": [...]}` (plus "text_b" for
    sentence pairs), ready for `make_classification_dataset` and for metrics on the labels.
    Downloads and prepares the dataset into `data_dir` on first use (needs the network).

    Args:
        name: a key of `TFDS_TASKS`, e.g. "glue/sst2".
        split: a TFDS split with labels, e.g. "train" or "validation" (GLUE's "test"
            splits have no labels and are refused).
        limit: keep only the first `limit` examples (None: all).
        data_dir: where TFDS keeps its data.
        require_labels: refuse a split without labels (label -1, GLUE's test splits);
            False reads it for prediction, labels and all.
        include_idx: add "idx", each example's GLUE index (the `idx` feature), which
            GLUE's test server expects in a submission.

    Labels are int class ids, or float scores for STS-B ("glue/stsb", a regression).

    Example (offline, with TFDS' mock data):
    >>> import tensorflow_datasets as tfds
    >>> with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
    ...     examples = read_tfds_classification("glue/sst2", "train")
    ...     scores = read_tfds_classification("glue/stsb", "test", require_labels=False,
    ...                                       include_idx=True)
    >>> sorted(examples), len(examples["text"]), type(examples["text"][0]).__name__
    (['label', 'text'], 3, 'str')
    >>> sorted(scores), type(scores["label"][0]).__name__, type(scores["idx"][0]).__name__
    (['idx', 'label', 'text', 'text_b'], 'float', 'int')
    """
    if name not in TFDS_TASKS:
        raise ValueError(
            f"Unknown TFDS classification task {name!r}; expected one of {sorted(TFDS_TASKS)}."
        )
    import tensorflow_datasets as tfds

    task = TFDS_TASKS[name]
    dataset = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False)
    if limit is not None:
        dataset = dataset.take(limit)
    columns = {"text": task["text"], "text_b": task["text_b"]}
    examples = {key: [] for key, column in columns.items() if column is not None}
    examples["label"] = []
    to_label = float if task.get("problem_type") == "regression" else int
    if include_idx:
        examples["idx"] = []
    for example in tfds.as_numpy(dataset):
        for key in examples:
            if key == "label":
                examples[key].append(to_label(example["label"]))
            elif key == "idx":
                examples[key].append(int(example["idx"]))
            else:
                examples[key].append(example[columns[key]].decode("utf-8"))
    if require_labels and any(label < 0 for label in examples["label"]):
        raise ValueError(
            f"{name} split {split!r} has no labels (label -1: a test split); use 'train' or "
            "'validation'.")
    return examples
