"""Shards a run cannot train on stop it before its first step, naming the shard; nothing is written."""

import os

import pytest
import tensorflow as tf
import tf_keras as keras

from electra_tf.pretraining.run_pretraining import PretrainingConfig, run_pretraining

T = 32
CLS, SEP = 101, 102  # the packaged uncased BERT vocabulary's, 30,522 tokens
FEATURES = ("input_word_ids", "input_mask", "input_type_ids")


def example(length=T, word_id=2009, names=FEATURES):
    """One serialized packed example: [CLS] word ... [SEP], `length` values per feature."""
    values = ([CLS] + [word_id] * (length - 2) + [SEP], [1] * length, [0] * length)
    return tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(int64_list=tf.train.Int64List(value=value))
        for name, value in zip(names, values)
    })).SerializeToString()


def write_shard(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return str(path)


def good_shard(path, count=20):
    return write_shard(path, [example() for _ in range(count)])


def stops_before_training(tmp_path, corpus):
    """Runs the tiny preset on `corpus`; returns the ValueError's text, checking nothing was written."""
    output_dir = tmp_path / "run"
    config = PretrainingConfig(corpus=corpus, output_dir=str(output_dir), preset="tiny",
                               model_overrides={"num_layers": 1}, max_seq_length=T, batch_size=4,
                               steps=2, warmup_steps=1, progress=False)
    with pytest.raises(ValueError) as error:
        run_pretraining(config)
    assert not output_dir.exists()  # no checkpoints, no TensorBoard logs, nothing
    return str(error.value)


class _TrainingBegan(Exception):
    pass


class StopAtTrainBegin(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        raise _TrainingBegan


def test_good_shards_pass_and_training_begins(tmp_path):
    """The baseline for the cases below: the same run on well-formed shards gets to training."""
    good_shard(tmp_path / "train-00000-of-00002.tfrecord")
    good_shard(tmp_path / "train-00001-of-00002.tfrecord")
    config = PretrainingConfig(corpus=str(tmp_path / "train-*.tfrecord"), output_dir=str(tmp_path / "run"),
                               preset="tiny", model_overrides={"num_layers": 1}, max_seq_length=T,
                               batch_size=4, steps=2, warmup_steps=1, progress=False)
    with pytest.raises(_TrainingBegan):
        run_pretraining(config, callbacks=[StopAtTrainBegin()])
    assert (tmp_path / "run").is_dir()


def test_shard_of_another_sequence_length(tmp_path):
    good_shard(tmp_path / "train-00000-of-00002.tfrecord")
    bad = write_shard(tmp_path / "train-00001-of-00002.tfrecord", [example(length=16)] * 5)
    message = stops_before_training(tmp_path, str(tmp_path / "train-*.tfrecord"))
    assert f"Shard {bad!r}: record 0 holds 16 input_word_ids values" in message
    assert f"expected {T} (--max-seq-length {T})" in message


def test_shard_with_ids_outside_the_vocabulary(tmp_path):
    records = [example()] * 3 + [example(word_id=31_000)] + [example()] * 3
    bad = write_shard(tmp_path / "train.tfrecord", records)
    message = stops_before_training(tmp_path, bad)
    assert f"Shard {bad!r}: record 3 holds token id 31000" in message
    assert "vocabulary of 30,522 tokens (expected ids 0-30521)" in message and "--vocab" in message


def test_empty_shard(tmp_path):
    good_shard(tmp_path / "train-00000-of-00002.tfrecord")
    bad = write_shard(tmp_path / "train-00001-of-00002.tfrecord", [])
    assert os.path.getsize(bad) == 0
    message = stops_before_training(tmp_path, str(tmp_path / "train-*.tfrecord"))
    assert f"Shard {bad!r} holds no examples" in message
    assert "expected TFRecords of tf.train.Example" in message


def test_truncated_shard(tmp_path):
    bad = good_shard(tmp_path / "train.tfrecord")
    with open(bad, "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data[: len(data) - 50])  # a copy cut short inside its last record
    message = stops_before_training(tmp_path, bad)
    assert f"Shard {bad!r} is truncated or corrupt" in message
    assert "expected complete TFRecord files" in message


def test_shard_of_another_feature_layout(tmp_path):
    # Hugging Face's names for the same three features.
    bad = write_shard(tmp_path / "train.tfrecord",
                      [example(names=("input_ids", "attention_mask", "token_type_ids"))] * 5)
    message = stops_before_training(tmp_path, bad)
    assert (f"Shard {bad!r} holds attention_mask (int64_list), input_ids (int64_list), "
            "token_type_ids (int64_list)") in message
    assert "expected tf.train.Examples with int64 features input_word_ids, input_mask, input_type_ids" in message
