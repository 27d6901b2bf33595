"""The job behind `electra-tf prepare`: tokenize and pack a text corpus once, into TFRecord shards.

    paths, count = prepare_tfrecord_shards("corpus/*.txt.gz", "shards/train",
                                           max_seq_length=128, num_shards=4)
    # shards/train-00000-of-00004.tfrecord ... ; train from them with
    # PretrainingConfig(corpus="shards/train-*.tfrecord", max_seq_length=128)

Packing is the same as when training from text (`text_examples_dataset`), done
once instead of every epoch. Shards are written into a temporary directory and
renamed into place when all are complete.
"""

import glob
import os
import shutil
import tempfile

from electra_tf.data.corpus_files import TFRECORD_SUFFIX
from electra_tf.data.corpus_stats import CorpusStats
from electra_tf.data.pretraining_dataset import text_examples_dataset, write_tfrecords
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer


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
        cls_id=tokenizer.cls_id,
        sep_id=tokenizer.sep_id,
        pad_id=tokenizer.pad_id,
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
