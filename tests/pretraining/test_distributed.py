"""Pretraining under tf.distribute: 2 logical CPUs, 2 worker processes, mixed precision, XLA.

conftest.py splits the CPU into two logical devices before TensorFlow starts.
"""

import csv
import gzip
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import TINY, packaged_corpus

from electra_tf.models.presets import ElectraConfig, scaled_generator_config
from electra_tf.optimization.adamw import create_optimizer
from electra_tf.pretraining.data_position import saved_data_position
from electra_tf.pretraining.electra_pretrainer import ElectraPretrainer
from electra_tf.pretraining.run_pretraining import PretrainingConfig, build_pretrainer, run_pretraining
from electra_tf.pretraining.strategies import build_strategy

HERE = os.path.dirname(os.path.abspath(__file__))
AUSTEN = packaged_corpus("held_out")  # Persuasion
PAD, CLS, SEP, MASK = 0, 1, 2, 3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The first 300 lines of Persuasion: a few hundred packed 32-token examples."""
    path = tmp_path_factory.mktemp("corpus") / "persuasion.txt"
    with gzip.open(AUSTEN, "rt", encoding="utf-8") as f:
        path.write_text("".join(line for _, line in zip(range(300), f)), encoding="utf-8")
    return str(path)


def make_pretrainer(batch_parts=1):
    config = ElectraConfig.from_dict({**TINY, "num_layers": 1})
    discriminator = config.build("discriminator")
    generator = scaled_generator_config(config, 0.5).build(
        "generator", embedding_layer=discriminator.encoder.embedding_layer
    )
    return ElectraPretrainer(
        generator, discriminator, mask_token_id=MASK, special_token_ids=(PAD, CLS, SEP, MASK), seed=3,
        batch_parts=batch_parts,
    )


def global_batches(num_batches=3, batch_size=8, seq_length=16, vocab_size=37):
    """Distinct batches of padded [CLS] ... [SEP] rows, as one repeated dataset."""
    rng = np.random.default_rng(0)
    ids = rng.integers(4, vocab_size, (num_batches * batch_size, seq_length)).astype(np.int32)
    mask = np.ones_like(ids)
    for row in range(len(ids)):
        length = seq_length - int(rng.integers(0, 6))
        ids[row, 0], ids[row, length - 1] = CLS, SEP
        ids[row, length:], mask[row, length:] = PAD, 0
    features = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": np.zeros_like(ids)}
    return tf.data.Dataset.from_tensor_slices(features).batch(batch_size).repeat()


class StepLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append({key: float(value) for key, value in logs.items()})


def train(strategy, initial_weights=None, steps=4, jit_compile=False, batch_parts=1):
    """(final weights, per-step logs) of `steps` AdamW steps on `global_batches()`."""
    with strategy.scope():
        pretrainer = make_pretrainer(batch_parts)
        if initial_weights is not None:
            pretrainer.set_weights(initial_weights)
        initial = pretrainer.get_weights()
        # The real optimizer: AdamW, warmup + linear decay, global-norm clipping.
        pretrainer.compile(optimizer=create_optimizer(1e-2, 10, 2), jit_compile=jit_compile)
    step_logs = StepLogs()
    pretrainer.fit(global_batches(), steps_per_epoch=steps, callbacks=[step_logs], verbose=0)
    return initial, [w.numpy() for w in pretrainer.trainable_weights], step_logs.logs


def assert_same_training(expected, actual, rtol, keys=None):
    """Equal per-step logs (all of them, or `keys`) and final weights within `rtol`."""
    _, expected_weights, expected_logs = expected
    _, actual_weights, actual_logs = actual
    assert len(expected_logs) == len(actual_logs)
    for step, (want, got) in enumerate(zip(expected_logs, actual_logs)):
        assert set(want) == set(got)
        for key in keys or want:
            np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=1e-6, err_msg=f"{key} @ {step}")
    for want, got in zip(expected_weights, actual_weights):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-6)


@pytest.fixture(scope="module")
def one_device():
    """The reference: 4 steps with the default strategy."""
    return train(build_strategy("default"))


def test_mirrored_strategy_matches_one_device(one_device):
    strategy = build_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    mirrored = train(strategy, initial_weights=one_device[0])
    # Same global batch, masks and samples per example, global loss denominators:
    # the split changes only the summation order. Every logged metric agrees too
    # (the logged loss was once the sum over replicas, i.e. doubled).
    assert_same_training(one_device, mirrored, rtol=1e-4)
    initial, final = one_device[0], one_device[1]
    assert max(np.abs(a - b).max() for a, b in zip(initial, final)) > 1e-3  # training moved them


def test_batch_parts_on_each_replica_match_one_device(one_device):
    # 8 examples, 2 replicas of 4, each run as 2 parts of 2: the counts are summed over the
    # parts, then over the replicas, so the loss and the updates stay the whole batch's.
    mirrored = train(build_strategy("mirrored"), initial_weights=one_device[0], batch_parts=2)
    assert_same_training(one_device, mirrored, rtol=1e-4)


def test_jit_compile_trains(one_device):
    initial, final, logs = train(build_strategy("default"), initial_weights=one_device[0], jit_compile=True)
    assert len(logs) == 4
    for step in logs:
        assert np.isfinite(list(step.values())).all()
        np.testing.assert_allclose(step["loss"], step["mlm_loss"] + 50.0 * step["rtd_loss"], rtol=1e-5)
    assert max(np.abs(a - b).max() for a, b in zip(initial, final)) > 1e-3
    # Same weights, same objective. Not the same masks: XLA's stateless Philox
    # draws other numbers than the CPU kernel's, so only a loose match.
    np.testing.assert_allclose(logs[0]["rtd_loss"], one_device[2][0]["rtd_loss"], rtol=0.02)
    np.testing.assert_allclose(logs[0]["mlm_loss"], one_device[2][0]["mlm_loss"], rtol=0.05)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_multiworker_workers_end_with_identical_weights(corpus, tmp_path):
    workers = [f"localhost:{port}" for port in free_ports(2)]
    output_dir = tmp_path / "run"  # shared, as on a shared filesystem
    processes, logs = [], []
    try:
        for index in range(2):
            env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_USE_LEGACY_KERAS="1")
            env["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            )
            log = open(tmp_path / f"worker{index}.log", "w")
            logs.append(log)
            processes.append(subprocess.Popen(
                [sys.executable, os.path.join(HERE, "_multiworker_worker.py"), corpus,
                 str(output_dir), str(tmp_path / f"worker{index}")],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            ))
        for index, process in enumerate(processes):
            returncode = process.wait(timeout=240)
            output = (tmp_path / f"worker{index}.log").read_text()[-3000:]
            assert returncode == 0, f"worker {index} failed:\n{output}"
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()

    weights = [np.load(tmp_path / f"worker{index}.npz") for index in range(2)]
    assert len(weights[0].files) == len(weights[1].files) > 0
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)
    histories = [json.loads((tmp_path / f"worker{index}.json").read_text()) for index in range(2)]
    assert histories[0] == histories[1]  # global values, not each worker's half batch
    assert np.isfinite(histories[0]["loss"]).all()

    # Worker 0 is the chief: it alone logged every step and saved the models.
    with open(output_dir / "history.csv") as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [1, 2, 3, 4]
    assert (output_dir / "discriminator" / "config.json").is_file()
    assert (output_dir / "checkpoints" / "chief" / "checkpoint").is_file()
    # The checkpoints carry the input position: 4 global batches of 8 (exactly-once data on resume).
    assert saved_data_position(str(output_dir / "checkpoints")) == 4 * 8


@pytest.fixture
def float32_policy_afterwards():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_mixed_float16_pretraining_is_finite(corpus, tmp_path, float32_policy_afterwards):
    config = PretrainingConfig(
        corpus=corpus,
        output_dir=str(tmp_path / "run"),
        preset="tiny",
        model_overrides={"num_layers": 1},
        max_seq_length=32,
        batch_size=8,
        steps=6,
        warmup_steps=2,
        checkpoint_every=3,
        log_every=1,
        shuffle_buffer=64,
        strategy="mirrored",  # mixed precision over the two logical CPUs
        mixed_precision=True,
        progress=False,
    )
    run_pretraining(config)
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["step"]) for row in rows] == list(range(1, 7))
    for key in ("loss", "mlm_loss", "rtd_loss", "learning_rate"):
        assert np.isfinite([float(row[key]) for row in rows]).all(), key

    # The caller's policy is restored: later models in the process are float32.
    assert keras.mixed_precision.global_policy().name == "float32"
    # Under the policy: float16 activations, float32 variables, logits and losses.
    keras.mixed_precision.set_global_policy("mixed_float16")
    pretrainer = build_pretrainer(config, vocab_size=30522, special_token_ids=(0, 100, 101, 102, 103),
                                  mask_token_id=103)
    ids = np.array([[101] + list(range(2000, 2030)) + [102]] * 2, np.int32)
    batch = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    outputs = pretrainer.compute_pretraining_outputs(batch, step=0, training=True)
    assert outputs["generator_logits"].dtype == tf.float32
    assert outputs["discriminator_logits"].dtype == tf.float32
    assert outputs["loss"].dtype == tf.float32 and np.isfinite(float(outputs["loss"]))
    sequence_output = pretrainer.discriminator(batch)["sequence_output"]
    assert sequence_output.dtype == tf.float16
    assert all(v.dtype == tf.float32 for v in pretrainer.trainable_weights)
