"""The job behind `electra-tf prepare`: tokenize and pack a text corpus once, into TFRecord shards.

    paths, count = prepare_tfrecord_shards("corpus/*.txt.gz", "shards/train",
                                           max_seq_length=128, num_shards=4)
    # shards/train-00000-of-00004.tfrecord ... ; train from them with
    # PretrainingConfig(corpus="shards/train-*.tfrecord", max_seq_length=128)

Packing is the same as when training from text (`text_examples_dataset`), done
once instead of every epoch. Shards are written into a temporary directory and
renamed into place when all are complete.

`validate_tfrecord_shards` checks shards against a run's `--max-seq-length` and
vocabulary before training starts, so a mismatch stops the run with a message
instead of failing inside a training step.
"""

import glob
import os
import re
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from electra_tf.data.corpus_files import TFRECORD_SUFFIX, corpus_files
from electra_tf.data.corpus_stats import CorpusStats
from electra_tf.data.pretraining_dataset import text_examples_dataset, write_tfrecords
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.utils.renamed_arguments import renamed_arguments


def shard_paths(output_prefix, num_shards):
    """`{prefix}-00000-of-0000K.tfrecord`, ...: the names `prepare_tfrecord_shards` writes.

    >>> shard_paths("shards/train", 2)
    ['shards/train-00000-of-00002.tfrecord', 'shards/train-00001-of-00002.tfrecord']
    """
    return [f"{output_prefix}-{i:05d}-of-{num_shards:05d}{TFRECORD_SUFFIX}"
            for i in range(num_shards)]


def prepare_tfrecord_shards(
    file_pattern,
    output_prefix,
    max_seq_length=128,
    num_shards=1,
    vocab_path=None,
    lower_case=True,
    seed=0,
    overwrite=False,
):
    """Tokenizes and packs text files into `num_shards` TFRecord shards.

    Args:
        file_pattern: glob of plain or gzipped text files.
        output_prefix: shards are `{output_prefix}-{i:05d}-of-{K:05d}.tfrecord`.
        max_seq_length: T; training from the shards must use the same T.
        num_shards: K; more shards let many hosts read in parallel.
        vocab_path: WordPiece vocabulary (None: the packaged uncased BERT one);
            training must use the same one.
        lower_case: as in `ElectraTokenizer`.
        seed: packing seed (the sentence-pair split and short examples).
        overwrite: replace existing shards with this prefix.

    Returns:
        (list of shard paths, number of examples written).

    Raises:
        ValueError: no file matches, or shards with this prefix exist and
            `overwrite` is False.

    Example:
    >>> paths, count = prepare_tfrecord_shards("corpus/*.txt.gz", "shards/train")  # doctest: +SKIP
    """
    if num_shards < 1:
        raise ValueError(f"`num_shards` must be >= 1; received {num_shards}.")
    existing = sorted(glob.glob(f"{glob.escape(output_prefix)}-*-of-*{TFRECORD_SUFFIX}"))
    if existing and not overwrite:
        raise ValueError(
            f"Shards with prefix {output_prefix!r} already exist ({existing[0]!r}, ...); "
            "choose another prefix or pass overwrite=True (--overwrite)."
        )
    tokenizer = ElectraTokenizer(vocab_path=vocab_path, lower_case=lower_case)
    examples = text_examples_dataset(
        file_pattern,
        tokenizer.tokenize,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_seq_length=max_seq_length,
        seed=seed,
        stats=CorpusStats(),
    )
    directory = os.path.dirname(os.path.abspath(output_prefix))
    os.makedirs(directory, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(output_prefix)}.tmp-", dir=directory)
    try:
        written, count = write_tfrecords(
            examples, os.path.join(tmp, os.path.basename(output_prefix)), num_shards
        )
        if count == 0:
            raise ValueError(
                f"{file_pattern!r} holds no text to pack (every file empty or unreadable); "
                "expected UTF-8 text, one sentence or paragraph per line."
            )
        paths = shard_paths(output_prefix, num_shards)
        for source, target in zip(written, paths):
            os.replace(source, target)
        for path in set(existing) - set(paths):  # an earlier run's other shard count
            os.remove(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths, count


# Records parsed per call during the scan: large enough that per-call overhead
# vanishes (~2 MB of int64 at 128 tokens), small enough to stay in cache.
_SCAN_BATCH_SIZE = 2048
_SHARD_FEATURES = ("input_word_ids", "input_mask", "input_type_ids")


@renamed_arguments(cls_id="cls_token_id")
def validate_tfrecord_shards(file_pattern, *, max_seq_length, vocab_size, cls_token_id=None):
    """Reads every shard once and checks it holds what a training run expects.

    Checks, shard by shard: the file has at least one record and no truncated
    or corrupt one; records are `tf.train.Example`s with int64 `input_word_ids`,
    `input_mask` and `input_type_ids` (the layout `prepare_tfrecord_shards`
    writes); every feature holds `max_seq_length` values; every token id is in
    [0, vocab_size); and, with `cls_token_id`, every example starts with it (a shard
    tokenized with another vocabulary of the same size starts with another id).

    The scan reads all shards (parsing only, no model): its cost grows with the
    corpus, not with the number of training steps. On 2 busy CPU cores it read
    60,000-140,000 examples of 128 tokens a second.

    Args:
        file_pattern: glob (or list of globs) of shards.
        max_seq_length: T the run trains with (`--max-seq-length`).
        vocab_size: size of the run's vocabulary (`--vocab`).
        cls_token_id: the run's [CLS] id; None skips that check.

    Returns:
        The number of examples in all shards.

    Raises:
        ValueError: naming the first bad shard, the record, what it holds and
            what was expected.

    Example:
    >>> validate_tfrecord_shards("shards/train-*.tfrecord", max_seq_length=128,
    ...                          vocab_size=30522, cls_token_id=101)  # doctest: +SKIP
    1843
    """
    return sum(
        _validate_shard(path, max_seq_length=max_seq_length, vocab_size=vocab_size,
                        cls_token_id=cls_token_id)
        for path in corpus_files(file_pattern)
    )


def _validate_shard(path, *, max_seq_length, vocab_size, cls_token_id):
    """Checks one shard (see `validate_tfrecord_shards`); returns its number of examples."""
    try:
        first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    except tf.errors.DataLossError as error:
        raise _corrupt_shard_error(path, 0, error) from None
    if first is None:
        raise ValueError(
            f"Shard {path!r} holds no examples; expected TFRecords of tf.train.Example as "
            "`electra-tf prepare` writes them. Remove it from the --corpus glob or prepare the "
            "shards again."
        )
    _check_feature_layout(path, first.numpy())
    try:
        return _scan_shard(path, max_seq_length=max_seq_length, vocab_size=vocab_size,
                           cls_token_id=cls_token_id, ragged=False)
    except tf.errors.InvalidArgumentError:
        # A record of another length stops the fast fixed-length parse; the
        # ragged one (slower) finds that record and says what it holds.
        return _scan_shard(path, max_seq_length=max_seq_length, vocab_size=vocab_size,
                           cls_token_id=cls_token_id, ragged=True)


def _scan_shard(path, *, max_seq_length, vocab_size, cls_token_id, ragged):
    """Parses every record of a shard in batches and checks them; returns the count.

    ragged=False parses (B, T) tensors and raises tf.errors.InvalidArgumentError
    at a record of another length; ragged=True reads any length and raises a
    ValueError naming the record instead.
    """
    if ragged:
        spec = {name: tf.io.RaggedFeature(tf.int64) for name in _SHARD_FEATURES}
    else:
        spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in _SHARD_FEATURES}

    def summarize(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        word_ids = parsed["input_word_ids"]  # (B, T), or (B, None) ragged
        if ragged:
            lengths = tf.stack([parsed[name].row_lengths() for name in _SHARD_FEATURES], axis=1)  # (B, 3)
            first_ids = word_ids[:, :1].to_tensor(default_value=-1)[:, 0]  # (B,)
        else:
            lengths = tf.fill([tf.shape(word_ids)[0], len(_SHARD_FEATURES)],
                              tf.constant(max_seq_length, tf.int64))  # (B, 3)
            first_ids = word_ids[:, 0]  # (B,)
        return {
            "lengths": lengths,
            # Empty ragged rows reduce to the dtype's extremes; the length check reports them first.
            "min_id": tf.reduce_min(word_ids, axis=1),  # (B,)
            "max_id": tf.reduce_max(word_ids, axis=1),  # (B,)
            "first_id": first_ids,
        }

    batches = tf.data.TFRecordDataset(path).batch(_SCAN_BATCH_SIZE).map(
        summarize, num_parallel_calls=tf.data.AUTOTUNE)
    count = 0
    try:
        for batch in batches.as_numpy_iterator():
            _check_batch(path, count, batch, max_seq_length=max_seq_length,
                         vocab_size=vocab_size, cls_token_id=cls_token_id)
            count += len(batch["lengths"])
    except tf.errors.DataLossError as error:
        raise _corrupt_shard_error(path, count, error) from None
    except tf.errors.InvalidArgumentError as error:
        if not ragged:
            raise
        raise ValueError(
            f"Shard {path!r}: a record after the first {count:,} is not a tf.train.Example with "
            f"int64 features {', '.join(_SHARD_FEATURES)} ({_error_text(error)}); "
            "expected the layout `electra-tf prepare` writes. Prepare the shards again."
        ) from None
    return count


def _check_feature_layout(path, serialized):
    """ValueError unless `serialized` is a tf.train.Example with the three int64 features."""
    example = tf.train.Example()
    try:
        example.ParseFromString(serialized)
    except Exception:  # protobuf's DecodeError; its module path differs between versions
        found = "a record that is not a tf.train.Example"
    else:
        features = example.features.feature
        found = ", ".join(f"{name} ({features[name].WhichOneof('kind') or 'empty'})"
                          for name in sorted(features)) or "no features"
        if all(name in features and features[name].WhichOneof("kind") == "int64_list"
               for name in _SHARD_FEATURES):
            return
    raise ValueError(
        f"Shard {path!r} holds {found}; expected tf.train.Examples with int64 features "
        f"{', '.join(_SHARD_FEATURES)}, the layout `electra-tf prepare` writes. Prepare the "
        "shards with `electra-tf prepare`."
    )


def _check_batch(path, offset, batch, *, max_seq_length, vocab_size, cls_token_id):
    """ValueError naming the first record of a scanned batch that a run cannot train on."""
    bad_length = np.flatnonzero((batch["lengths"] != max_seq_length).any(axis=1))
    if bad_length.size:
        row = bad_length[0]
        column = int(np.flatnonzero(batch["lengths"][row] != max_seq_length)[0])
        raise ValueError(
            f"Shard {path!r}: record {offset + row:,} holds {batch['lengths'][row, column]} "
            f"{_SHARD_FEATURES[column]} values; expected {max_seq_length} (--max-seq-length "
            f"{max_seq_length}). Train with the --max-seq-length the shards were prepared with, "
            "or prepare them again with this one."
        )
    bad_id = np.flatnonzero((batch["min_id"] < 0) | (batch["max_id"] >= vocab_size))
    if bad_id.size:
        row = bad_id[0]
        token_id = batch["min_id"][row] if batch["min_id"][row] < 0 else batch["max_id"][row]
        raise ValueError(
            f"Shard {path!r}: record {offset + row:,} holds token id {token_id}, outside the "
            f"run's vocabulary of {vocab_size:,} tokens (expected ids 0-{vocab_size - 1}). The "
            "shards were prepared with another --vocab: train with that one, or prepare them "
            "again with this one."
        )
    if cls_token_id is not None:
        bad_start = np.flatnonzero(batch["first_id"] != cls_token_id)
        if bad_start.size:
            row = bad_start[0]
            raise ValueError(
                f"Shard {path!r}: record {offset + row:,} starts with token id "
                f"{batch['first_id'][row]}; expected [CLS], id {cls_token_id} in the run's "
                "vocabulary. "
                "The shards were prepared with another --vocab: train with that one, or "
                "prepare them again with this one."
            )


def _corrupt_shard_error(path, count, error):
    return ValueError(
        f"Shard {path!r} is truncated or corrupt: {_error_text(error)} ({count:,} records checked "
        "before it); expected complete TFRecord files as `electra-tf prepare` writes them. Copy "
        "or prepare the shard again, or remove it from the --corpus glob."
    )


def _error_text(error):
    """A TensorFlow error's message without its function-node prefix and op suffix."""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", error.message.splitlines()[0])
    return re.sub(r"\s*\[Op:.*$", "", text)
