"""Streams a text corpus into packed, masked ELECTRA pretraining batches.

Corpus format, as google-research/electra's build_pretraining_dataset.py: plain or
gzipped UTF-8 text files, one sentence or paragraph per line, a blank line between
documents. Files are read line by line and never loaded whole; lines are tokenized
in batches by `tokenize_fn`, and consecutive sentences of one document are packed
into `[CLS] A [SEP] B [SEP]` examples by the original's recipe. Masking is dynamic
(a fresh draw every batch, see `electra_tf.preprocessing.masking`).

Bad input: no matching file raises ValueError; empty files, lines that are not
valid UTF-8, and I/O or gzip errors are skipped, logged, and counted in an optional
`CorpusStats`; over-long lines are cut into pieces, never truncated away.
"""

import contextlib
import gzip
import logging
import random
import zlib

import numpy as np
import tensorflow as tf

from electra_tf.data.corpus_stats import CorpusStats
from electra_tf.preprocessing.masking import mask_tokens
from electra_tf.utils.renamed_arguments import renamed_arguments

logger = logging.getLogger(__name__)

# Lines per `tokenize_fn` call: large enough that the call overhead vanishes,
# small enough to keep the stream fine-grained.
_LINES_PER_TOKENIZE_CALL = 2048
# A "line" longer than this (a file without newlines, a binary blob that happens
# to be UTF-8) is cut into pieces of this many characters before tokenization, to
# bound tokenizer memory. 10k characters is ~2k wordpieces, far past any
# max_seq_length, so ordinary paragraphs are never cut.
_MAX_LINE_CHARS = 10_000
# The original ExampleBuilder's sampling constants:
# 10% of examples are a single segment, like classification inputs ...
_SINGLE_SEGMENT_PROBABILITY = 0.1
# ... and after 5% of examples the next one aims at a random length in
# [5, max_seq_length] instead of filling the sequence, so short inputs are seen.
_SHORT_TARGET_PROBABILITY = 0.05
_MIN_SHORT_TARGET_LENGTH = 5
# Every gzip stream starts with these two bytes (RFC 1952); detecting by content
# rather than by the ".gz" suffix also handles misnamed files.
_GZIP_MAGIC = b"\x1f\x8b"
_FEATURES = ("input_word_ids", "input_mask", "input_type_ids")


@renamed_arguments(cls_id="cls_token_id", sep_id="sep_token_id", pad_id="pad_token_id",
                   mask_id="mask_token_id")
def make_pretraining_dataset(
    file_pattern,
    tokenize_fn,
    *,
    cls_token_id,
    sep_token_id,
    pad_token_id,
    mask_token_id,
    max_seq_length=128,
    batch_size=128,
    mask_rate=0.15,
    seed=None,
    shuffle_buffer=10_000,
    repeat=False,
    stats=None,
):
    """Text files -> packed, masked batches, for masked-LM models of your own.

    The electra_tf pretrainers mask inside their step and refuse these batches
    (they would mask twice); `run_pretraining` feeds them unmasked batches of
    `text_examples_dataset`. Use this for a model that expects its masking
    done in the input pipeline, as BERT's original TF code does.

    Args:
        file_pattern: glob (or list of globs) of text files, plain or gzipped.
        tokenize_fn: strings (n,) -> tf.RaggedTensor (n, None) of int ids,
            e.g. `ElectraTokenizer(...).tokenize`.
        cls_token_id, sep_token_id, pad_token_id, mask_token_id: the special token ids
            (`cls_id`, ... in earlier versions, still accepted with a DeprecationWarning).
        max_seq_length: T, tokens per example including [CLS] and [SEP]s.
        batch_size: examples per batch; the last partial batch is dropped so
            every batch has the same static shape (XLA compiles once).
        mask_rate: fraction of maskable tokens to predict (0.25 for Large).
        seed: int for a reproducible file order, packing, shuffle and masking;
            None draws fresh randomness.
        shuffle_buffer: examples in the shuffle buffer; 0 disables shuffling.
        repeat: loop over the corpus forever (masking differs every epoch).
        stats: optional `CorpusStats` that receives skip and read counts.

    Returns:
        A `tf.data.Dataset` of dicts: `input_word_ids` (masked), `input_mask`,
        `input_type_ids` (B, T) int32; `masked_lm_positions` (B, N) int32,
        `masked_lm_ids` (B, N) int32, `masked_lm_weights` (B, N) float32,
        with N = `max_predictions_per_seq(T, mask_rate)`.

    Example:
    >>> ds = make_pretraining_dataset("corpus/*.txt.gz", tokenizer.tokenize,
    ...     cls_token_id=101, sep_token_id=102, pad_token_id=0, mask_token_id=103,
    ...     seed=0)  # doctest: +SKIP
    >>> next(iter(ds))["masked_lm_positions"].shape  # doctest: +SKIP
    TensorShape([128, 19])
    """
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    examples = text_examples_dataset(
        file_pattern,
        tokenize_fn,
        cls_token_id=cls_token_id,
        sep_token_id=sep_token_id,
        pad_token_id=pad_token_id,
        max_seq_length=max_seq_length,
        seed=seed,
        stats=stats,
    )
    if shuffle_buffer:
        examples = examples.shuffle(shuffle_buffer, seed=seed)
    if repeat:
        examples = examples.repeat()
    return batch_and_mask(
        examples,
        batch_size=batch_size,
        mask_token_id=mask_token_id,
        special_ids=(cls_token_id, sep_token_id, pad_token_id),
        mask_rate=mask_rate,
        seed=seed,
    )


@renamed_arguments(cls_id="cls_token_id", sep_id="sep_token_id", pad_id="pad_token_id")
def text_examples_dataset(
    file_pattern,
    tokenize_fn,
    *,
    cls_token_id,
    sep_token_id,
    pad_token_id,
    max_seq_length=128,
    seed=None,
    stats=None,
):
    """Text files -> unbatched packed examples `[CLS] A [SEP] B [SEP] [PAD]...`.

    Files are interleaved (several read at once, in shuffled order); the lines of a
    file are packed in order, so examples never mix documents. Packing follows the
    original ExampleBuilder: sentences of one document accumulate until they reach a
    target length (usually T; after 5% of examples a random length in [5, T]); the
    first segment aims at (target - 3) // 2 tokens (10% of the time: everything);
    a blank line ends the document and flushes a partial example. One difference:
    a sentence longer than T - 2 tokens is split into pieces (full pieces become
    single-segment examples), where the original truncates it.

    Args:
        file_pattern: glob (or list of globs) of text files, plain or gzipped.
        tokenize_fn: strings (n,) -> tf.RaggedTensor (n, None) of int ids.
        cls_token_id, sep_token_id, pad_token_id: special ids for the packed layout.
        max_seq_length: T.
        seed: int for reproducible file order and packing; None: random.
        stats: optional `CorpusStats`.

    Returns:
        A `tf.data.Dataset` of dicts of (T,) int32 tensors `input_word_ids`,
        `input_mask` and `input_type_ids` (0 for [CLS] A [SEP], 1 for B [SEP],
        0 on padding).

    Example: a file of two documents (a blank line between them), packed to 12
    tokens; the two sentences of the first become segments A and B:

    >>> import os, tempfile
    >>> from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "doc.txt"), "w") as f:
    ...     _ = f.write("The cat sat.\\nIt slept.\\n\\nA dog ran home.\\n")
    >>> tokenizer = ElectraTokenizer()
    >>> examples = text_examples_dataset(
    ...     os.path.join(folder, "*.txt"), tokenizer.tokenize,
    ...     cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
    ...     pad_token_id=tokenizer.pad_token_id, max_seq_length=12, seed=0)
    >>> first, second = examples.as_numpy_iterator()
    >>> tokenizer.detokenize(first["input_word_ids"][None]).numpy()
    array([b'[CLS] the cat sat . [SEP] it slept . [SEP] [PAD] [PAD]'], dtype=object)
    >>> first["input_type_ids"].tolist(), second["input_mask"].tolist()
    ([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    >>> paths, count = write_tfrecords(examples, os.path.join(folder, "shards", "train"), 2)
    >>> [os.path.basename(path) for path in paths], count
    (['train-00000-of-00002', 'train-00001-of-00002'], 2)
    >>> len(list(read_tfrecords(os.path.join(folder, "shards", "train-*"), 12)))
    2
    """
    if max_seq_length < _MIN_SHORT_TARGET_LENGTH:
        raise ValueError(
            f"`max_seq_length` must be >= {_MIN_SHORT_TARGET_LENGTH} to hold [CLS] A [SEP] "
            f"B [SEP]; received {max_seq_length}."
        )
    stats = stats if stats is not None else CorpusStats()
    files = _glob(file_pattern)
    tokenize = _checked_tokenizer(tokenize_fn)
    rng = random.Random(seed)
    # One packing seed per file, fixed for the life of the dataset: packing is
    # static, like the original's pre-built TFRecords; masking is what varies.
    file_seeds = [rng.randrange(2**31) for _ in files]
    signature = {name: tf.TensorSpec((None, max_seq_length), tf.int32) for name in _FEATURES}

    def file_examples(path, file_seed):
        return tf.data.Dataset.from_generator(
            lambda path, file_seed: _pack_file(
                path.decode(),
                int(file_seed),
                tokenize=tokenize,
                max_seq_length=max_seq_length,
                special_ids=(cls_token_id, sep_token_id, pad_token_id),
                stats=stats,
            ),
            args=(path, file_seed),
            output_signature=signature,
        ).unbatch()  # the generator yields (n, T) blocks: fewer Python round trips

    paths = tf.data.Dataset.from_tensor_slices((files, tf.constant(file_seeds, tf.int64)))
    paths = paths.shuffle(len(files), seed=rng.randrange(2**31))
    return paths.interleave(
        file_examples,
        cycle_length=min(len(files), 8),  # files read at once; mixing for the shuffle
        num_parallel_calls=tf.data.AUTOTUNE,
    )


@renamed_arguments(mask_id="mask_token_id")
def batch_and_mask(examples, *, batch_size, mask_token_id, special_ids, mask_rate=0.15,
                   seed=None):
    """Batches packed examples and adds ELECTRA's dynamic masking, for models of your own.

    The electra_tf pretrainers mask inside their step and refuse batches
    masked here (`electra_tf.pretraining.electra_pretrainer.unpack_inputs`).

    Each batch gets its own stateless seed (seed, batch index), so a given seed
    reproduces every mask, and repeated epochs are masked differently.

    Args:
        examples: dataset of dicts with (T,) `input_word_ids`, `input_mask`, ...
        batch_size: B; the remainder is dropped for a static batch shape.
        mask_token_id: the [MASK] id.
        special_ids: ids never masked, e.g. (cls_token_id, sep_token_id, pad_token_id).
        mask_rate: fraction of maskable tokens to predict.
        seed: int or None (random).

    Returns:
        The dataset of `mask_tokens` outputs merged into each batch dict.

    Example:
    >>> batches = batch_and_mask(read_tfrecords("shards/*"), batch_size=256,
    ...     mask_token_id=103, special_ids=(101, 102, 0))  # doctest: +SKIP
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1; received {batch_size}.")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)

    def mask_batch(index, batch):
        masked = mask_tokens(
            batch["input_word_ids"],
            batch["input_mask"],
            mask_token_id=mask_token_id,
            special_ids=special_ids,
            seed=tf.stack([tf.constant(seed, tf.int64), index]),
            mask_rate=mask_rate,
        )
        return {**batch, **masked}

    batches = examples.batch(batch_size, drop_remainder=True).enumerate()
    return batches.map(mask_batch, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE
    )


def write_tfrecords(examples, output_prefix, num_shards=1):
    """Writes unbatched packed examples to `{output_prefix}-{i:05d}-of-{n:05d}` shards.

    Examples go round-robin over the shards, as in the original. Used to tokenize
    and pack a corpus once (`electra-tf prepare`) and train from `read_tfrecords`.

    Args:
        examples: dataset from `text_examples_dataset`.
        output_prefix: path prefix; its directory is created.
        num_shards: number of files.

    Returns:
        (list of shard paths, number of examples written).

    Example:
    >>> paths, count = write_tfrecords(examples, "/tmp/shards/train", 4)  # doctest: +SKIP
    """
    if num_shards < 1:
        raise ValueError(f"`num_shards` must be >= 1; received {num_shards}.")
    directory = output_prefix.rsplit("/", 1)[0] if "/" in output_prefix else "."
    tf.io.gfile.makedirs(directory)
    paths = [f"{output_prefix}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(path) for path in paths]
    count = 0
    try:
        for example in examples.as_numpy_iterator():
            features = {
                name: tf.train.Feature(int64_list=tf.train.Int64List(value=example[name]))
                for name in _FEATURES
            }
            record = tf.train.Example(features=tf.train.Features(feature=features))
            writers[count % num_shards].write(record.SerializeToString())
            count += 1
    finally:
        for writer in writers:
            writer.close()
    return paths, count


def read_tfrecords(file_pattern, max_seq_length, seed=None):
    """Reads `write_tfrecords` shards back as unbatched (T,) int32 example dicts.

    Args:
        file_pattern: glob (or list of globs) of shards.
        max_seq_length: T the shards were written with.
        seed: int for a reproducible shard order; None: random.

    Returns:
        A `tf.data.Dataset` like `text_examples_dataset`'s.

    Example:
    >>> examples = read_tfrecords("/tmp/shards/train-*", 128)  # doctest: +SKIP
    """
    files = _glob(file_pattern)
    spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in _FEATURES}

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        return {name: tf.cast(value, tf.int32) for name, value in example.items()}

    paths = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed)
    records = paths.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE)


class _ExampleBuilder:
    """Packs the sentences of one document stream into [CLS] A [SEP] B [SEP] examples.

    The original's ExampleBuilder, minus tokenization and serialization: feed
    token-id lists with `add_sentence`, call `end_document` at a blank line; both
    return the finished (first_segment, second_segment) pairs, often none.
    """

    def __init__(self, max_seq_length, rng):
        self._max_length = max_seq_length
        self._rng = rng
        self._sentences = []
        self._length = 0
        self._target_length = max_seq_length

    def add_sentence(self, token_ids):
        piece_length = self._max_length - 2  # the most that fits: [CLS] A [SEP]
        if len(token_ids) <= piece_length:
            return self._add(token_ids)
        # Differs from the original, which truncates a sentence this long: finish
        # the example in progress, give each full piece an example of its own,
        # and pack the remainder like any sentence. No text is dropped.
        pairs = self.end_document()
        last_start = (len(token_ids) - 1) // piece_length * piece_length
        for start in range(0, last_start, piece_length):
            pairs.append((token_ids[start : start + piece_length], []))
        return pairs + self._add(token_ids[last_start:])

    def end_document(self):
        if self._length > 0:
            return [self._create_example()]
        self._sentences = []
        return []

    def _add(self, token_ids):
        self._sentences.append(token_ids)
        self._length += len(token_ids)
        if self._length >= self._target_length:
            return [self._create_example()]
        return []

    def _create_example(self):
        if self._rng.random() < _SINGLE_SEGMENT_PROBABILITY:
            first_target = self._max_length  # never reached: all goes to A
        else:
            first_target = (self._target_length - 3) // 2  # 3: [CLS], [SEP], [SEP]
        first, second = [], []
        for sentence in self._sentences:
            # A takes the sentence if A is empty, if it still fits A's target, or
            # (before B starts) half the time when it would overshoot the target.
            if (
                not first
                or len(first) + len(sentence) < first_target
                or (not second and len(first) < first_target and self._rng.random() < 0.5)
            ):
                first += sentence
            else:
                second += sentence
        first = first[: self._max_length - 2]  # room for [CLS] A [SEP]
        second = second[: max(0, self._max_length - len(first) - 3)]

        self._sentences = []
        self._length = 0
        if self._rng.random() < _SHORT_TARGET_PROBABILITY:
            self._target_length = self._rng.randint(_MIN_SHORT_TARGET_LENGTH, self._max_length)
        else:
            self._target_length = self._max_length
        return first, second


def _pack_file(path, seed, *, tokenize, max_seq_length, special_ids, stats):
    """Yields dicts of (n, T) int32 arrays: the packed examples of one file, in order."""
    stats.add(files=1)
    builder = _ExampleBuilder(max_seq_length, random.Random(seed))
    lines = []
    for line in _read_lines(path, stats):
        lines.append(line)
        if len(lines) == _LINES_PER_TOKENIZE_CALL:
            yield from _arrays(_pack_lines(lines, builder, tokenize), max_seq_length,
                               special_ids, stats)
            lines = []
    pairs = _pack_lines(lines, builder, tokenize) if lines else []
    pairs += builder.end_document()  # the end of a file ends its last document
    yield from _arrays(pairs, max_seq_length, special_ids, stats)


def _pack_lines(lines, builder, tokenize):
    """Tokenizes a block of lines in one call; returns the pairs `builder` finishes."""
    token_ids = tokenize(tf.constant(lines))  # (n, None) ragged
    flat = token_ids.flat_values.numpy().tolist()
    splits = token_ids.row_splits.numpy().tolist()
    pairs = []
    for i, line in enumerate(lines):
        if line:
            pairs += builder.add_sentence(flat[splits[i] : splits[i + 1]])
        else:  # a blank line separates documents
            pairs += builder.end_document()
    return pairs


def _arrays(pairs, max_seq_length, special_ids, stats):
    """(first, second) segment pairs -> at most one dict of (n, T) int32 arrays."""
    if not pairs:
        return
    cls_token_id, sep_token_id, pad_token_id = special_ids
    word_ids = np.full((len(pairs), max_seq_length), pad_token_id, np.int32)
    mask = np.zeros((len(pairs), max_seq_length), np.int32)
    type_ids = np.zeros((len(pairs), max_seq_length), np.int32)
    for row, (first, second) in enumerate(pairs):
        tokens = [cls_token_id, *first, sep_token_id]
        length_a = len(tokens)
        if second:
            tokens += [*second, sep_token_id]
        word_ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
        type_ids[row, length_a : len(tokens)] = 1
    stats.add(examples=len(pairs))
    yield {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


def _read_lines(path, stats):
    """Yields the stripped lines of a file as str; '' for blank lines.

    Lines that are not valid UTF-8 are skipped (decoding them with replacement
    characters would feed binary junk to the model as [UNK]s); lines over
    _MAX_LINE_CHARS come out as several pieces. An I/O or gzip error ends the file
    with a warning instead of ending the training run.
    """
    num_lines = num_invalid = num_long = 0
    try:
        with _open(path) as f:
            for raw in f:
                num_lines += 1
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    num_invalid += 1
                    continue
                if len(line) > _MAX_LINE_CHARS:
                    num_long += 1
                    for start in range(0, len(line), _MAX_LINE_CHARS):
                        yield line[start : start + _MAX_LINE_CHARS]
                else:
                    yield line
    except (OSError, EOFError, zlib.error) as error:
        stats.add(unreadable_files=1)
        logger.warning("Stopped reading %s after %d lines: %s", path, num_lines, error)
    else:
        if not num_lines:
            stats.add(empty_files=1)
            logger.warning("Skipped empty file %s.", path)
    finally:
        stats.add(lines=num_lines, invalid_utf8_lines=num_invalid, long_lines=num_long)
        if num_invalid:
            logger.warning("Skipped %d lines that are not valid UTF-8 in %s.", num_invalid, path)
        if num_long:
            logger.warning(
                "Cut %d lines longer than %d characters into pieces in %s.",
                num_long, _MAX_LINE_CHARS, path,
            )


@contextlib.contextmanager
def _open(path):
    """Opens a plain or gzip file (detected by its magic bytes) for binary reading."""
    with (tf.io.gfile.GFile(path, "rb") if "://" in path else open(path, "rb")) as raw:
        is_gzip = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not is_gzip:
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            yield unzipped


def _glob(file_pattern):
    """Sorted files (not directories) matching a glob or a list of globs."""
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    files = sorted(
        {path for pattern in patterns for path in tf.io.gfile.glob(pattern)
         if not tf.io.gfile.isdir(path)}
    )
    if not files:
        raise ValueError(
            f"No files match {file_pattern!r}; expected a glob such as "
            "'corpus/*.txt.gz' naming plain or gzipped text files."
        )
    return files


def _checked_tokenizer(tokenize_fn):
    """Wraps `tokenize_fn` in a tf.function after checking what it returns."""
    probe = tokenize_fn(tf.constant(["a", ""]))
    if not isinstance(probe, tf.RaggedTensor) or not probe.dtype.is_integer:
        raise ValueError(
            "`tokenize_fn` must map a (n,) string tensor to a tf.RaggedTensor (n, None) "
            f"of int ids; for ['a', ''] it returned {type(probe).__name__} {probe!r}."
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(lines):
        token_ids = tokenize_fn(lines)
        if token_ids.ragged_rank > 1:  # (n, words, pieces), as BertTokenizer returns
            token_ids = token_ids.merge_dims(1, -1)
        return token_ids

    return tokenize
