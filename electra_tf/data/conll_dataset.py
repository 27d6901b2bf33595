"""Tagged words (CoNLL files or TensorFlow Datasets' conll2003) → token-classifier batches.

CoNLL-2003 files have one word per line, `token POS chunk NER`, separated by
spaces or tabs; a blank line ends a sentence and `-DOCSTART-` lines separate
documents. Any column can be the label (`label_column`): NER (the last, by
default), chunk or POS; two-column `token tag` files work too.

Words are split into word pieces by an `ElectraTokenizer` inside the graph;
each word's label goes to its FIRST piece, and every other piece, [CLS],
[SEP] and the padding get `IGNORE_LABEL` (-100), which the token
classifier's loss skips. Sentences longer than `max_seq_length - 2` pieces
are truncated; the words cut off have no labelled position (prediction
calls them "O" and counts them, see `first_piece_positions`).

Bad input: a missing or empty file raises a ValueError; a malformed line
(fewer columns than `label_column` needs) or a tag outside `label_names`
raises a ValueError naming the file and line, or with `errors="skip"` drops
that sentence and counts it.
"""

import collections
import logging
import os

import numpy as np
import tensorflow as tf

from electra_tf.data.labels import IGNORE_LABEL
from electra_tf.utils.checks import is_integer

logger = logging.getLogger(__name__)

DOCUMENT_SEPARATOR = "-DOCSTART-"
# Column positions of CoNLL-2003's `token POS chunk NER` lines.
LABEL_COLUMNS = {"pos": 1, "chunk": 2, "ner": 3}
SKIP_REASONS = ("malformed_line", "unknown_label")
# TFDS conll2003 feature of each label column.
TFDS_LABEL_FEATURES = {"ner": "ner", "chunk": "chunks", "pos": "pos"}


class _BadSentence(Exception):
    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason


def _column_index(label_column):
    if isinstance(label_column, str):
        if label_column not in LABEL_COLUMNS:
            raise ValueError(
                f"`label_column` must be one of {sorted(LABEL_COLUMNS)} or a column index "
                f"(-1: the last); received label_column={label_column!r}."
            )
        return LABEL_COLUMNS[label_column]
    if not is_integer(label_column) or label_column == 0:
        raise ValueError(
            "`label_column` must be a column index other than 0 (the word), e.g. -1 or 3, or "
            f"a name in {sorted(LABEL_COLUMNS)}; received label_column={label_column!r}."
        )
    return label_column


def _sentences(path):
    """Yields (first line number, [(line number, fields), ...]) per sentence."""
    sentence, start = [], None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields or fields[0] == DOCUMENT_SEPARATOR:
                if sentence:
                    yield start, sentence
                sentence, start = [], None
                continue
            if start is None:
                start = number
            sentence.append((number, fields))
    if sentence:
        yield start, sentence


def default_label_names(tag_lists):
    """The tags that occur, sorted, with "O" (if present) first: the label ids.

    >>> default_label_names([["B-PER", "O"], ["I-PER", "B-LOC"]])
    ['O', 'B-LOC', 'B-PER', 'I-PER']
    """
    tags = {tag for tags in tag_lists for tag in tags}
    return (["O"] if "O" in tags else []) + sorted(tags - {"O"})


def read_conll_file(path, label_column=-1, label_names=None, errors="raise"):
    """Reads a CoNLL file into sentences of words and tags.

    Args:
        path: a CoNLL-format text file.
        label_column: the tag column: an index (-1, the last, is NER in
            CoNLL-2003) or "ner", "chunk", "pos".
        label_names: the allowed tags in id order (e.g. the training file's);
            a tag outside them is a bad sentence. None: every tag is allowed
            and the names are `default_label_names` of the file.
        errors: "raise" (ValueError at the first bad line) or "skip" (drop
            the sentence, count it by reason, log it).

    Returns:
        `(examples, skipped)`: `examples` is `{"words": [[...], ...],
        "tags": [[...], ...], "label_names": [...]}` for
        `make_tagging_dataset`; `skipped` counts dropped sentences by reason
        ("malformed_line", "unknown_label").

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "train.conll")
    >>> _ = open(path, "w").write("-DOCSTART- -X- -X- O\\n\\n"
    ...                           "EU NNP B-NP B-ORG\\nrejects VBZ B-VP O\\n\\n"
    ...                           "Peter NNP B-NP B-PER\\n")
    >>> examples, skipped = read_conll_file(path)
    >>> examples["words"], examples["tags"], examples["label_names"]
    ([['EU', 'rejects'], ['Peter']], [['B-ORG', 'O'], ['B-PER']], ['O', 'B-ORG', 'B-PER'])
    """
    column = _column_index(label_column)
    if errors not in ("raise", "skip"):
        raise ValueError(f"`errors` must be 'raise' or 'skip'; received errors={errors!r}.")
    if not os.path.isfile(path):
        raise ValueError(f"CoNLL file not found: received path={path!r}.")
    allowed = None if label_names is None else set(label_names)
    needed = column + 1 if column > 0 else -column + 1  # at least the word and the tag
    words, tags = [], []
    skipped = collections.Counter({reason: 0 for reason in SKIP_REASONS})
    for start, lines in _sentences(path):
        try:
            sentence_words, sentence_tags = [], []
            for number, fields in lines:
                if len(fields) < needed:
                    raise _BadSentence(
                        "malformed_line",
                        f"{path}:{number}: {len(fields)} column(s) {fields}, expected at least "
                        f"{needed} (word first, the tag in column {label_column!r})",
                    )
                tag = fields[column]
                if allowed is not None and tag not in allowed:
                    raise _BadSentence(
                        "unknown_label",
                        f"{path}:{number}: tag {tag!r} is not one of the label names "
                        f"{list(label_names)}",
                    )
                sentence_words.append(fields[0])
                sentence_tags.append(tag)
        except _BadSentence as bad:
            if errors == "raise":
                raise ValueError(
                    f"{bad}. Fix the line, or pass errors='skip' (--skip-bad-rows) to drop and "
                    "count such sentences."
                ) from None
            skipped[bad.reason] += 1
            continue
        words.append(sentence_words)
        tags.append(sentence_tags)
    if any(skipped.values()):
        logger.warning("%s: skipped sentences %s", path, dict(skipped))
    if not words:
        raise ValueError(
            f"{path} has no sentences (skipped: {dict(skipped)}); expected CoNLL lines "
            "`word ... tag`, a blank line between sentences."
        )
    names = list(label_names) if label_names is not None else default_label_names(tags)
    return {"words": words, "tags": tags, "label_names": names}, dict(skipped)


def tokenize_words(tokenizer, words):
    """Words → their word pieces, in the graph.

    Args:
        tokenizer: an `ElectraTokenizer`.
        words: string `tf.RaggedTensor` (batch, (words)).

    Returns:
        int32 `tf.RaggedTensor` (batch, (words), (pieces)). A word the
        tokenizer splits further ("U.S." → "u . s .") keeps all its pieces;
        a word of only control characters has none.
    """
    pieces = tokenizer.tokenize_words(words.flat_values)  # (words, (sub-words), (pieces))
    pieces = pieces.merge_dims(1, 2)  # (words, (pieces))
    return tf.RaggedTensor.from_row_splits(pieces, words.row_splits)  # (batch, (words), (pieces))


def align_labels(pieces, word_labels, max_seq_length):
    """Word labels → labels on packed word-piece positions.

    Args:
        pieces: `tf.RaggedTensor` (batch, (words), (pieces)) from `tokenize_words`.
        word_labels: int32 `tf.RaggedTensor` (batch, (words)).
        max_seq_length: the packed length, [CLS] and [SEP] included.

    Returns:
        int32 (batch, max_seq_length): a word's label at its first piece,
        `IGNORE_LABEL` at [CLS], [SEP], other pieces, padding and beyond the
        truncation, matching `tokenizer.pack([pieces.merge_dims(1, 2)], max_seq_length)`.

    >>> pieces = tf.ragged.constant([[[7, 8], [9]], [[5]]], ragged_rank=2)
    >>> align_labels(pieces, tf.ragged.constant([[1, 2], [3]]), 6).numpy()
    array([[-100,    1, -100,    2, -100, -100],
           [-100,    3, -100, -100, -100, -100]], dtype=int32)
    """
    counts = pieces.values.row_lengths()  # (words,): pieces per word
    first = tf.equal(tf.ragged.range(counts).flat_values, 0)  # (all pieces,)
    labels = tf.where(
        first, tf.repeat(tf.cast(word_labels.flat_values, tf.int32), counts), IGNORE_LABEL
    )  # (all pieces,)
    labels = pieces.with_flat_values(labels).merge_dims(1, 2)  # (batch, (pieces))
    labels = labels[:, : max_seq_length - 2]  # the packer keeps the first pieces too
    batch = labels.nrows()
    ignore = tf.fill([batch, 1], tf.constant(IGNORE_LABEL, tf.int32))  # (batch, 1)
    labels = tf.concat([ignore, labels, ignore], axis=1)  # [CLS] pieces [SEP]
    return labels.to_tensor(default_value=IGNORE_LABEL, shape=[None, max_seq_length])


def _encode_fn(tokenizer, max_seq_length):
    """A batch {"words", "labels"} (ragged) → (packed features, aligned labels), in the graph."""

    def encode(batch):
        pieces = tokenize_words(tokenizer, batch["words"])  # (B, (W), (P))
        features = tokenizer.pack([pieces.merge_dims(1, 2)], max_seq_length)  # (B, T) each
        return features, align_labels(pieces, batch["labels"], max_seq_length)

    return encode


def _finish(dataset, tokenizer, max_seq_length, batch_size):
    dataset = dataset.ragged_batch(batch_size)
    dataset = dataset.map(_encode_fn(tokenizer, max_seq_length),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def tag_ids(tags, label_names):
    """Tag strings → ids, with a clear error for a tag outside `label_names`.

    >>> tag_ids([["B-PER", "O"]], ["O", "B-PER"])
    [[1, 0]]
    """
    index = {name: i for i, name in enumerate(label_names)}
    ids = []
    for number, sentence in enumerate(tags):
        unknown = sorted({tag for tag in sentence if tag not in index})
        if unknown:
            raise ValueError(
                f"Sentence {number} has tag(s) {unknown} outside the label names "
                f"{list(label_names)}; read the file with label_names= of the model, or "
                "errors='skip' to drop such sentences."
            )
        ids.append([index[tag] for tag in sentence])
    return ids


def make_tagging_dataset(
    examples,
    tokenizer,
    max_seq_length=128,
    batch_size=32,
    shuffle=False,
    seed=None,
):
    """Sentences of words (and tags) → a tf.data pipeline of `(features, labels)` batches.

    Args:
        examples: `{"words": [[...], ...], "tags": [[...], ...], "label_names": [...]}`
            as `read_conll_file` returns it. Without "tags" (prediction) every
            word gets label 0, so the labels still mark each word's first piece.
        tokenizer: an `ElectraTokenizer`.
        max_seq_length: packed length, [CLS] and [SEP] included; longer
            sentences are truncated.
        batch_size: sentences per batch.
        shuffle: reshuffle every epoch (for training).
        seed: shuffle seed.

    Returns:
        A dataset of `(features, labels)`: features `{"input_word_ids",
        "input_mask", "input_type_ids"}` and labels, all int32
        (batch, max_seq_length); see `align_labels`.

    Example:
    >>> from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    >>> data = make_tagging_dataset({"words": [["Johanson", "smiled"]],
    ...                              "tags": [["B-PER", "O"]], "label_names": ["O", "B-PER"]},
    ...                             ElectraTokenizer(), max_seq_length=8)
    >>> features, labels = next(iter(data))
    >>> features["input_word_ids"].numpy()[0], labels.numpy()[0]
    (array([  101, 13093,  3385,  3281,   102,     0,     0,     0], dtype=int32), array([-100,    1, -100,    0, -100, -100, -100, -100], dtype=int32))
    """
    words = examples.get("words")
    if not words:
        raise ValueError(
            "`examples` needs a non-empty 'words' list of sentences (lists of words); "
            f"received keys {sorted(examples)}."
        )
    for number, sentence in enumerate(words):
        if not sentence or not all(isinstance(word, str) and word.strip() for word in sentence):
            raise ValueError(
                f"Sentence {number} is empty or has an empty word: {sentence!r}. Expected "
                "a list of non-empty word strings."
            )
    if "tags" in examples:
        if "label_names" not in examples:
            raise ValueError("Tagged `examples` need 'label_names' to turn tags into ids.")
        labels = tag_ids(examples["tags"], examples["label_names"])
        lengths = [(len(w), len(t)) for w, t in zip(words, labels) if len(w) != len(t)]
        if len(labels) != len(words) or lengths:
            raise ValueError(
                f"Expected one tag per word in each sentence; received {len(words)} "
                f"sentences and {len(labels)} tag lists, (words, tags) mismatches: {lengths[:3]}."
            )
    else:
        labels = [[0] * len(sentence) for sentence in words]
    dataset = tf.data.Dataset.from_tensor_slices({
        "words": tf.ragged.constant(words, dtype=tf.string),
        "labels": tf.ragged.constant(labels, dtype=tf.int32),
    })
    if shuffle:
        dataset = dataset.shuffle(len(words), seed=seed, reshuffle_each_iteration=True)
    return _finish(dataset, tokenizer, max_seq_length, batch_size)


def first_piece_positions(tokenizer, words, max_seq_length):
    """Where each word's first piece lands in the packed sequence, or -1 if nowhere.

    -1 means the word was truncated away (or has no pieces); predictions
    call such words "O".

    Args:
        tokenizer: an `ElectraTokenizer`.
        words: a list of sentences, each a list of words.
        max_seq_length: the packed length.

    Returns:
        A list of int lists, one position per word.

    >>> from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    >>> first_piece_positions(ElectraTokenizer(), [["Johanson", "smiled", "."]], 5)
    [[1, 3, -1]]
    """
    pieces = tokenize_words(tokenizer, tf.ragged.constant(words, dtype=tf.string))
    positions = []
    for counts in pieces.row_lengths(axis=2).to_list():  # pieces per word, per sentence
        starts = 1 + np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)  # after [CLS]
        keep = (np.asarray(counts) > 0) & (starts <= max_seq_length - 2)
        positions.append([int(s) if k else -1 for s, k in zip(starts, keep)])
    return positions


def load_tfds_conll2003(
    split,
    tokenizer,
    label_column="ner",
    max_seq_length=128,
    batch_size=32,
    shuffle=False,
    seed=None,
    data_dir=None,
):
    """TensorFlow Datasets' `conll2003` → `(features, labels)` batches and the label names.

    Read with `tfds.load("conll2003")`, downloaded and prepared into
    `data_dir` (default ~/tensorflow_datasets) on first use.

    Args:
        split: "train", "dev" or "test" (or a slice such as "train[:10%]").
        tokenizer: an `ElectraTokenizer`.
        label_column: "ner", "chunk" or "pos".
        max_seq_length: packed length.
        batch_size: sentences per batch.
        shuffle: shuffle files and sentences (for training).
        seed: shuffle seed.
        data_dir: where TFDS keeps its data.

    Returns:
        `(dataset, label_names)`: the label names are the dataset's class
        names in id order (for NER: "O", "B-PER", "I-PER", ...).

    Example (offline, with TFDS' mock data):
    >>> import tensorflow_datasets as tfds
    >>> from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    >>> with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
    ...     data, names = load_tfds_conll2003("train", ElectraTokenizer(), max_seq_length=16,
    ...                                       batch_size=4)
    ...     features, labels = next(iter(data))
    >>> labels.shape, names[:3]
    (TensorShape([4, 16]), ['O', 'B-PER', 'I-PER'])
    """
    if label_column not in TFDS_LABEL_FEATURES:
        raise ValueError(
            f"`label_column` must be one of {sorted(TFDS_LABEL_FEATURES)}; received "
            f"{label_column!r}."
        )
    import tensorflow_datasets as tfds

    feature = TFDS_LABEL_FEATURES[label_column]
    dataset, info = tfds.load("conll2003", split=split, data_dir=data_dir,
                              shuffle_files=shuffle, with_info=True)
    label_names = list(info.features[feature].feature.names)

    def select(example):
        # Real conll2003 has one tag per token; TFDS' mock data draws each
        # sequence's length on its own, so keep the common prefix of both.
        length = tf.minimum(tf.size(example["tokens"]), tf.size(example[feature]))
        return {"words": example["tokens"][:length],
                "labels": tf.cast(example[feature][:length], tf.int32)}

    dataset = dataset.map(select, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        # CoNLL-2003's training split is 14k sentences: a buffer that holds them all.
        dataset = dataset.shuffle(16_384, seed=seed, reshuffle_each_iteration=True)
    return _finish(dataset, tokenizer, max_seq_length, batch_size), label_names
