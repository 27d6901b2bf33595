"""validate_tfrecord_shards: counts good shards, names the bad record past the first scanned batch."""

import pytest
import tensorflow as tf

from electra_tf.data.tfrecord_shards import validate_tfrecord_shards

T = 8
FEATURES = ("input_word_ids", "input_mask", "input_type_ids")


def record(length=T, first_id=2, word_id=5):
    values = ([first_id] + [word_id] * (length - 1), [1] * length, [0] * length)
    return tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(int64_list=tf.train.Int64List(value=value))
        for name, value in zip(FEATURES, values)
    })).SerializeToString()


def write_shard(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for serialized in records:
            writer.write(serialized)
    return str(path)


def test_good_shards_are_counted(tmp_path):
    write_shard(tmp_path / "a.tfrecord", [record()] * 3000)
    write_shard(tmp_path / "b.tfrecord", [record()] * 5)
    assert validate_tfrecord_shards(str(tmp_path / "*.tfrecord"), max_seq_length=T,
                                    vocab_size=6, cls_token_id=2) == 3005


@pytest.mark.parametrize("bad, message", [
    (record(length=T + 1), "record 2,500 holds 9 input_word_ids values; expected 8 (--max-seq-length 8)"),
    (record(word_id=6), "record 2,500 holds token id 6, outside the run's vocabulary of 6 tokens"),
    (record(word_id=-1), "record 2,500 holds token id -1, outside the run's vocabulary of 6 tokens"),
    (record(first_id=3), "record 2,500 starts with token id 3; expected [CLS], id 2"),
], ids=["length", "id_past_the_vocabulary", "negative_id", "not_cls_first"])
def test_the_first_bad_record_is_named_with_its_shard(tmp_path, bad, message):
    write_shard(tmp_path / "a.tfrecord", [record()] * 10)
    path = write_shard(tmp_path / "b.tfrecord", [record()] * 2500 + [bad] * 3 + [record()] * 10)
    with pytest.raises(ValueError) as error:
        validate_tfrecord_shards(str(tmp_path / "*.tfrecord"), max_seq_length=T, vocab_size=6,
                                 cls_token_id=2)
    assert f"Shard {path!r}: {message}" in str(error.value)


def test_without_cls_id_the_first_token_is_not_checked(tmp_path):
    path = write_shard(tmp_path / "a.tfrecord", [record(first_id=3)] * 4)
    assert validate_tfrecord_shards(path, max_seq_length=T, vocab_size=6) == 4
