"""Corpus globs: text lines for the vocabulary learner, and telling shards from text."""

import gzip

import pytest

from electra_tf.data.corpus_files import corpus_lines, is_tfrecord_corpus


def test_corpus_lines_reads_plain_and_gzip_and_skips_blank_lines(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\n  two  \n", encoding="utf-8")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write("three\n")
    assert list(corpus_lines(str(tmp_path / "*"))) == ["one", "two", "three"]


def test_shards_are_recognised_by_their_suffix_whatever_the_glob(tmp_path):
    for name in ("train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("text\n")
    assert is_tfrecord_corpus(str(tmp_path / "train*"))
    assert not is_tfrecord_corpus(str(tmp_path / "*.txt"))
    with pytest.raises(ValueError, match="both TFRecord shards"):
        is_tfrecord_corpus(str(tmp_path / "*"))
    with pytest.raises(ValueError, match="No files match"):
        is_tfrecord_corpus(str(tmp_path / "missing*"))
