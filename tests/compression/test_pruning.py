"""Pruning with tfmot: ~target zeros in every pruned kernel, still predicts, saves and loads."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import TINY, make_inputs

from electra_tf import ElectraClassifier, ElectraEncoder
from electra_tf.compression.pruning import (
    format_sparsity_table,
    functional_classifier,
    prunable_kernels,
    prune_classifier,
    pruning_schedule,
    sparsity_report,
)


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(0)
    return ElectraClassifier(ElectraEncoder(**TINY), num_classes=2, head="huggingface")


@pytest.fixture(scope="module")
def train_data():
    features = make_inputs(batch_size=16, seq_length=8)
    labels = np.random.default_rng(0).integers(0, 2, 16).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(4)


@pytest.fixture(scope="module")
def pruned(classifier, train_data, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("logs")
    before = [w.copy() for w in classifier.get_weights()]
    model, history = prune_classifier(classifier, train_data, target_sparsity=0.5, epochs=3,
                                      log_dir=str(log_dir), verbose=0)
    return model, history, before, log_dir


def test_functional_view_equals_the_classifier(classifier):
    inputs = make_inputs()
    np.testing.assert_allclose(functional_classifier(classifier)(inputs), classifier(inputs),
                               atol=1e-6)


def test_every_pruned_kernel_reaches_the_target(pruned):
    model, _, _, _ = pruned
    report = sparsity_report(model)
    # Projection, 4 kernels in each of 2 layers, head dense and logits.
    assert len(report["layers"]) == 1 + 4 * TINY["num_layers"] + 2
    for row in report["layers"]:
        assert row["sparsity"] == pytest.approx(0.5, abs=0.02), row
    assert report["overall_sparsity"] == pytest.approx(0.5, abs=0.01)
    table = format_sparsity_table(report)
    assert "transformer_layer_1/qkv/kernel" in table and "50.0%" in table
    json.dumps(report)  # the report is written as JSON


def test_original_is_untouched_and_pruned_still_predicts(classifier, pruned):
    model, history, before, _ = pruned
    for old, new in zip(before, classifier.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert all(row["sparsity"] == 0.0 for row in sparsity_report(classifier)["layers"])
    logits = model(make_inputs())
    assert logits.shape == (3, 2) and np.all(np.isfinite(logits))
    assert len(history.history["loss"]) == 3


def test_pruned_classifier_saves_and_loads(pruned, tmp_path):
    model, _, _, _ = pruned
    model.save_pretrained(str(tmp_path / "pruned"))
    loaded = ElectraClassifier.from_pretrained(str(tmp_path / "pruned"))
    inputs = make_inputs()
    np.testing.assert_allclose(loaded(inputs), model(inputs), atol=1e-6)
    for (_, a), (_, b) in zip(prunable_kernels(loaded), prunable_kernels(model)):
        np.testing.assert_array_equal(a.numpy() == 0, b.numpy() == 0)


def test_pruning_with_the_unpruned_model_as_teacher(classifier, train_data):
    before = [w.copy() for w in classifier.get_weights()]
    model, history = prune_classifier(classifier, train_data, target_sparsity=0.5, epochs=2,
                                      learning_rate=1e-3, teacher=classifier, alpha=1.0,
                                      verbose=0)
    # The distillation loss ran (soft term logged) and the schedule still pruned every kernel.
    assert sorted(history.history) == ["accuracy", "hard_loss", "loss", "soft_loss"]
    assert history.history["loss"] == pytest.approx(history.history["soft_loss"])  # alpha 1
    for row in sparsity_report(model)["layers"]:
        assert row["sparsity"] == pytest.approx(0.5, abs=0.02), row
    for old, new in zip(before, classifier.get_weights()):  # the teacher only predicts
        np.testing.assert_array_equal(old, new)


def test_tensorboard_logs_are_written(pruned):
    _, _, _, log_dir = pruned
    assert list(log_dir.rglob("events.out.tfevents.*"))


def test_schedule_and_bad_input(classifier, train_data):
    config = pruning_schedule(0.8, total_steps=30).get_config()["config"]
    assert (config["final_sparsity"], config["end_step"], config["frequency"]) == (0.8, 20, 2)
    with pytest.raises(ValueError, match="target_sparsity"):
        pruning_schedule(1.5, total_steps=10)
    with pytest.raises(ValueError, match="tf.data.Dataset"):
        prune_classifier(classifier, [1, 2, 3])
    with pytest.raises(ValueError, match="ElectraClassifier"):
        functional_classifier(classifier.encoder)
