"""Exactly-once data on resume, in process: the mirrored strategy, and checkpoints without a position.

test_kill_and_resume.py covers a process killed with SIGKILL (default strategy). Here a
run stops after its step-4 checkpoint and the same config, with more steps, resumes it.
The reference is the input stream itself: step s of an uninterrupted run trains on batch
s - 1 of `build_dataset` (test_kill_and_resume.py checks that against a real run), on
every strategy.
"""

import logging

import pytest
import tf_keras as keras

from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer

from electra_tf.pretraining import run_pretraining as run_pretraining_module
from electra_tf.pretraining.data_position import batch_fingerprint, saved_data_position
from electra_tf.pretraining.run_pretraining import PretrainingConfig, build_dataset, run_pretraining

BATCH_SIZE = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n\n".join(
        "\n".join(f"The {w} sentence number {i} of document {d} is here." for i in range(12))
        for d, w in enumerate(["first", "second", "third", "fourth"] * 2)))
    return str(path)


def config(corpus, output_dir, steps, strategy="default"):
    return PretrainingConfig(
        corpus=corpus, output_dir=str(output_dir), preset="tiny", model_overrides={"num_layers": 1},
        max_seq_length=32, batch_size=BATCH_SIZE, steps=steps, checkpoint_every=2, log_every=1,
        shuffle_buffer=16, strategy=strategy, progress=False,
        batch_log=f"{output_dir}-batches-{steps}.txt")


def train(corpus, output_dir, steps, strategy="default"):
    """{step: batch fingerprint} of the steps this call trained."""
    run_config = config(corpus, output_dir, steps, strategy)
    run_pretraining(run_config)
    with open(run_config.batch_log) as f:
        return {int(step): int(fingerprint) for step, fingerprint in map(str.split, f)}


@pytest.fixture(scope="module")
def uninterrupted(corpus):
    """{step: fingerprint} of an uninterrupted 6-step run: the stream's first 6 batches."""
    keras.utils.set_random_seed(0)  # as run_pretraining does before building the dataset
    dataset = build_dataset(config(corpus, "unused", steps=6), ElectraTokenizer())
    batches = {step: int(batch_fingerprint(batch["input_word_ids"]))
               for step, batch in enumerate(dataset.take(6), start=1)}
    assert len(set(batches.values())) == 6  # distinct batches: a repeat would show
    return batches


def test_mirrored_run_resumes_its_input_stream(corpus, tmp_path, uninterrupted):
    output_dir = tmp_path / "run"
    first = train(corpus, output_dir, steps=4, strategy="mirrored")  # 2 logical CPUs (conftest)
    # The step-4 checkpoint holds the position: 4 global batches.
    assert saved_data_position(str(output_dir / "checkpoints")) == 4 * BATCH_SIZE
    resumed = train(corpus, output_dir, steps=6, strategy="mirrored")
    assert sorted(resumed) == [5, 6]  # the step came back from the checkpoint ...
    assert {**first, **resumed} == uninterrupted  # ... and so did the data, split over 2 replicas
    assert saved_data_position(str(output_dir / "checkpoints")) == 6 * BATCH_SIZE


class NoDataPosition(keras.callbacks.Callback):
    """The callback before positions were saved: nothing."""

    def __init__(self, batch_size, start=0):
        super().__init__()


def test_checkpoint_without_data_position_resumes_and_starts_the_data_over(
        corpus, tmp_path, uninterrupted, monkeypatch, caplog):
    output_dir = tmp_path / "run"
    with monkeypatch.context() as patch:  # an older electra_tf wrote this run's checkpoints
        patch.setattr(run_pretraining_module, "DataPosition", NoDataPosition)
        train(corpus, output_dir, steps=4)
    assert saved_data_position(str(output_dir / "checkpoints")) is None

    with caplog.at_level(logging.WARNING, logger=run_pretraining_module.__name__):
        resumed = train(corpus, output_dir, steps=6)
    assert "has no data position" in caplog.text and "starts over" in caplog.text
    # Steps 5 and 6 from the checkpoint; the data from the stream's first batches.
    assert resumed == {5: uninterrupted[1], 6: uninterrupted[2]}
    # The new checkpoints count from there: resuming again continues after those 2 batches.
    assert saved_data_position(str(output_dir / "checkpoints")) == 2 * BATCH_SIZE
