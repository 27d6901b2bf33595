"""Corpus globs: the text lines they hold, and whether they name TFRecord shards.

A corpus is either text (plain or gzipped, one sentence or paragraph per line,
read by `pretraining_dataset`) or the TFRecord shards `electra-tf prepare`
writes, whose names end in `.tfrecord`.
"""

from electra_tf.data.corpus_stats import CorpusStats
from electra_tf.data.pretraining_dataset import _glob, _read_lines

TFRECORD_SUFFIX = ".tfrecord"


def corpus_files(file_pattern):
    """The sorted files a glob (or list of globs) matches; ValueError naming it if none.

    >>> corpus_files("no/such/*.txt")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: No files match 'no/such/*.txt'; ...
    """
    return _glob(file_pattern)


def corpus_lines(file_pattern, stats=None):
    """Yields the non-blank, stripped lines of every matching text file, file by file.

    Files are streamed (never loaded whole); gzip is detected by content; lines
    that are not valid UTF-8 are skipped and counted in `stats`, as in training.

    Example:
    >>> lines = corpus_lines("corpus/*.txt.gz")  # doctest: +SKIP
    >>> next(lines)  # doctest: +SKIP
    'Persuasion'
    """
    stats = stats if stats is not None else CorpusStats()
    for path in corpus_files(file_pattern):
        stats.add(files=1)
        for line in _read_lines(path, stats):
            if line:
                yield line


def is_tfrecord_corpus(file_pattern):
    """True when the glob names TFRecord shards, False for text files.

    Shards are recognised by a `.tfrecord` suffix on the matched files (as
    `electra-tf prepare` names them), so `--corpus 'shards/train*'` works as
    well as `--corpus 'shards/*.tfrecord'`.

    Raises:
        ValueError: nothing matches, or the glob mixes shards and text files.

    >>> is_tfrecord_corpus("shards/train-*")  # doctest: +SKIP
    True
    """
    files = corpus_files(file_pattern)
    shards = [path for path in files if path.endswith(TFRECORD_SUFFIX)]
    if shards and len(shards) != len(files):
        text = [path for path in files if not path.endswith(TFRECORD_SUFFIX)]
        raise ValueError(
            f"{file_pattern!r} matches both TFRecord shards ({shards[0]!r}, ...) and "
            f"other files ({text[0]!r}, ...); expected one kind. Narrow the glob, e.g. "
            f"'PREFIX*{TFRECORD_SUFFIX}' for the shards of `electra-tf prepare`."
        )
    return bool(shards)
