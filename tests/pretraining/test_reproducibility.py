"""One seed, one run: the same command trains bit-identical models on CPU; another seed does not."""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from tensorflow.python.framework import config as tf_config

from electra_tf.data.packaged_corpus import packaged_corpus
from electra_tf.pretraining.example_seeds import example_seeds
from electra_tf.pretraining.masking import mask_tokens
from electra_tf.pretraining.run_pretraining import PretrainingConfig, run_pretraining

STEPS = 3
# The tiny preset with one layer (dropout on, as in every preset), 3 steps of 4 x 32 tokens.
TINY = dict(preset="tiny", model_overrides={"num_layers": 1}, max_seq_length=32, batch_size=4,
            steps=STEPS, warmup_steps=1, checkpoint_every=STEPS, log_every=1, shuffle_buffer=32,
            progress=False)
TINY_CLI = ["--preset", "tiny", "--max-seq-length", "32", "--batch-size", "4", "--steps", str(STEPS),
            "--warmup-steps", "1", "--checkpoint-every", str(STEPS), "--log-every", "1", "--no-progress"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The first 200 lines of Persuasion (packaged): enough for a few 32-token batches."""
    path = tmp_path_factory.mktemp("corpus") / "persuasion.txt"
    with gzip.open(packaged_corpus("held_out"), "rt", encoding="utf-8") as f:
        path.write_text("".join(line for _, line in zip(range(200), f)), encoding="utf-8")
    return str(path)


def run_files(output_dir):
    """{relative path: bytes} of a run's checkpoint files and history.csv.

    Leaves out the `checkpoint` bookkeeping file, which records when each was saved.
    """
    paths = [os.path.join(root, name) for root, _, names in os.walk(output_dir / "checkpoints")
             for name in names if name != "checkpoint"]
    paths.append(str(output_dir / "history.csv"))
    files = {}
    for path in paths:
        with open(path, "rb") as f:
            files[os.path.relpath(path, output_dir)] = f.read()
    return files


@pytest.fixture(scope="module")
def cli_runs(corpus, tmp_path_factory):
    """The same `electra-tf pretrain` command twice at once (seed 7); their files."""
    root = tmp_path_factory.mktemp("cli")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    processes = {}
    for name in ("first", "again"):
        command = [sys.executable, "-m", "electra_tf.cli.main", "pretrain", "--corpus", corpus,
                   "--output-dir", str(root / name), "--seed", "7", *TINY_CLI]
        processes[name] = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
    return {name: run_files(root / name) for name in processes}


def test_same_command_same_seed_writes_bit_identical_checkpoints_and_history(cli_runs):
    first, again = cli_runs["first"], cli_runs["again"]
    checkpoint_files = [path for path in first if path.startswith("checkpoints")]
    assert any(".data-" in path for path in checkpoint_files)
    assert any(path.endswith(".index") for path in checkpoint_files)
    assert sorted(first) == sorted(again)
    for path in first:
        assert first[path] == again[path], path
    rows = first["history.csv"].decode().splitlines()
    assert [row.split(",")[0] for row in rows] == ["step", *map(str, range(1, STEPS + 1))]


class _Stop(Exception):
    pass


class InitialWeights(keras.callbacks.Callback):
    """Keeps the weights as training begins, then stops the run before its first step."""

    def on_train_begin(self, logs=None):
        self.weights = [variable.numpy() for variable in self.model.weights]
        self.op_determinism = tf_config.is_op_determinism_enabled()
        raise _Stop


def initial_weights(corpus, output_dir, **overrides):
    weights = InitialWeights()
    with pytest.raises(_Stop):
        run_pretraining(PretrainingConfig(corpus=corpus, output_dir=str(output_dir), **TINY, **overrides),
                        callbacks=[weights])
    return weights


def test_the_seed_fixes_the_initial_weights(corpus, tmp_path):
    first = initial_weights(corpus, tmp_path / "first", seed=7).weights
    again = initial_weights(corpus, tmp_path / "again", seed=7).weights
    other = initial_weights(corpus, tmp_path / "other", seed=8).weights
    assert len(first) == len(again) == len(other) > 0
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # Every randomly initialized matrix differs; biases and LayerNorm start at 0 and 1 with any seed.
    matrices = [index for index, weight in enumerate(first) if weight.ndim == 2]
    assert len(matrices) > 5
    for index in matrices:
        assert not np.array_equal(first[index], other[index]), index


def test_deterministic_turns_op_determinism_on_for_the_run_only(corpus, tmp_path):
    assert not tf_config.is_op_determinism_enabled()
    assert initial_weights(corpus, tmp_path / "deterministic", seed=7, deterministic=True).op_determinism
    assert not tf_config.is_op_determinism_enabled()
    assert not initial_weights(corpus, tmp_path / "default", seed=7).op_determinism


def test_xla_masks_other_tokens_than_graph_mode_from_the_same_seed():
    """What the README says of --jit-compile: XLA's stateless random ops use another generator."""
    ids = tf.constant([[101, *range(2000, 2060), 102]] * 4)  # (4, 62)

    def masked_positions(input_word_ids):
        seeds = example_seeds(input_word_ids, 7, tf.constant(3, tf.int64))  # (B, 2)
        return mask_tokens(input_word_ids, tf.ones_like(input_word_ids), mask_token_id=103,
                           special_ids=(0, 100, 101, 102, 103), seed=seeds)["masked_lm_positions"]

    graph = tf.function(masked_positions)(ids).numpy()
    xla = tf.function(masked_positions, jit_compile=True)(ids).numpy()
    assert graph.shape == xla.shape and not np.array_equal(graph, xla)
