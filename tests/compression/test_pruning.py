"""Pruning with tfmot: task models' own layers wrapped in place, ~target zeros in each kernel."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import TINY, make_inputs
from tensorflow_model_optimization.sparsity.keras import UpdatePruningStep

from electra_tf import (
    ElectraClassifier,
    ElectraEncoder,
    ElectraQuestionAnswering,
    ElectraTokenClassifier,
)
from electra_tf.compression.pruning import (
    check_target_sparsity,
    copy_classifier,
    format_sparsity_table,
    prunable_kernels,
    prunable_layers,
    prune_classifier,
    prune_task_model,
    pruning_schedule,
    pruning_wrappers,
    sparsity_report,
)

BATCH, SEQ = 16, 8


def task_models():
    """One of each task model on a tiny encoder (E != H: the projection is pruned too)."""
    keras.utils.set_random_seed(0)
    return {
        "classify": ElectraClassifier(ElectraEncoder(**TINY), num_classes=2, head="huggingface"),
        "tag": ElectraTokenClassifier(ElectraEncoder(**TINY), num_classes=3),
        "qa": ElectraQuestionAnswering(ElectraEncoder(**TINY)),
    }


def labels_for(task, rng):
    if task == "classify":
        return rng.integers(0, 2, BATCH).astype(np.int32)
    if task == "tag":
        labels = rng.integers(0, 3, (BATCH, SEQ)).astype(np.int32)
        labels[:, 0] = -100  # [CLS]
        return labels
    return {"start_positions": rng.integers(1, 4, BATCH).astype(np.int32),
            "end_positions": rng.integers(4, 6, BATCH).astype(np.int32),
            "is_impossible": np.zeros(BATCH, np.int32)}


def train_data_for(task):
    """Batches in the form each model's own `fit` takes."""
    rng = np.random.default_rng(0)
    features = make_inputs(batch_size=BATCH, seq_length=SEQ)
    return tf.data.Dataset.from_tensor_slices((features, labels_for(task, rng))).batch(4)


def outputs_of(model, inputs):
    outputs = model(inputs, training=False)
    return outputs if isinstance(outputs, dict) else {"logits": outputs}


@pytest.fixture(scope="module")
def classifier():
    return task_models()["classify"]


@pytest.fixture(scope="module")
def pruned(classifier, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("logs")
    before = [w.copy() for w in classifier.get_weights()]
    model, history = prune_classifier(classifier, train_data_for("classify"),
                                      target_sparsity=0.5, epochs=3, log_dir=str(log_dir),
                                      verbose=0)
    return model, history, before, log_dir


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


def test_tensorboard_logs_are_written(pruned):
    _, _, _, log_dir = pruned
    assert list(log_dir.rglob("events.out.tfevents.*"))


def test_wrappers_are_put_in_place_of_the_models_own_layers():
    """Each prunable layer's slot holds a wrapper of that very object, and gets it back."""
    for task, model in task_models().items():
        layers = prunable_layers(model)
        names = [weight.name for weight in model.weights]
        projection = model.encoder.embedding_projection
        with pruning_wrappers(model, pruning_schedule(0.5, total_steps=10)) as wrappers:
            assert [wrapper.layer for wrapper in wrappers] == layers
            assert all(w.layer is layer for w, layer in zip(wrappers, layers)), task
            assert model.encoder.embedding_projection is wrappers[0]
            assert list(model.encoder.transformer_layers) == wrappers[1:1 + TINY["num_layers"]]
            # tfmot's callback finds the wrappers inside the nested, subclassed models.
            callback = UpdatePruningStep()
            callback.set_model(model)
            callback.on_train_begin()
            assert len(callback.prunable_layers) == len(wrappers), task
        assert model.encoder.embedding_projection is projection
        assert all(a is b for a, b in zip(prunable_layers(model), layers)), task
        # The same weights in the same order as before (and as a fresh model's).
        assert [weight.name for weight in model.weights] == names, task
        fresh = type(model).from_config(model.get_config())
        assert [w.shape for w in fresh.get_weights()] == [w.shape for w in model.get_weights()]


def test_wrapped_forward_pass_is_the_models_own(monkeypatch):
    """Nothing re-implements the forward pass: the wrapped model runs its own (patched) call."""
    inputs = make_inputs()
    for task, model in task_models().items():
        expected = outputs_of(model, inputs)
        with pruning_wrappers(model, pruning_schedule(0.5, total_steps=10)):
            wrapped = outputs_of(model, inputs)
        for name in expected:
            np.testing.assert_allclose(wrapped[name], expected[name], atol=1e-6, err_msg=task)

    # A change to the encoder's forward pass is what the wrapped model runs.
    original_call = ElectraEncoder.call

    def doubled(self, inputs, **kwargs):
        outputs = original_call(self, inputs, **kwargs)
        return {**outputs, "sequence_output": 2.0 * outputs["sequence_output"]}

    model = task_models()["tag"]
    monkeypatch.setattr(ElectraEncoder, "call", doubled)
    expected = model(inputs, training=False)
    with pruning_wrappers(model, pruning_schedule(0.5, total_steps=10)):
        np.testing.assert_allclose(model(inputs, training=False), expected, atol=1e-6)
    monkeypatch.setattr(ElectraEncoder, "call", original_call)
    assert not np.allclose(model(inputs, training=False), expected, atol=1e-3)


@pytest.mark.parametrize("task", ["tag", "qa"])
def test_tagger_and_qa_model_reach_the_target(task):
    model = task_models()[task]
    pruned, history = prune_task_model(model, train_data_for(task), target_sparsity=0.5,
                                       epochs=2, learning_rate=1e-3, verbose=0)
    assert type(pruned) is type(model) and np.isfinite(history.history["loss"][-1])
    report = sparsity_report(pruned)
    assert len(report["layers"]) == len(prunable_kernels(model))
    for row in report["layers"]:
        assert row["sparsity"] == pytest.approx(0.5, abs=0.02), row
    # The sparse model's forward pass equals the wrapped one's: the same layers, the same call.
    inputs = make_inputs()
    expected = outputs_of(pruned, inputs)
    with pruning_wrappers(pruned, pruning_schedule(0.5, total_steps=10)):
        wrapped = outputs_of(pruned, inputs)
    for name in expected:
        np.testing.assert_allclose(wrapped[name], expected[name], atol=1e-6)
    assert all(row["sparsity"] == 0.0 for row in sparsity_report(model)["layers"])


def test_pruning_with_the_unpruned_model_as_teacher(classifier):
    before = [w.copy() for w in classifier.get_weights()]
    model, history = prune_classifier(classifier, train_data_for("classify"),
                                      target_sparsity=0.5, epochs=2, learning_rate=1e-3,
                                      teacher=classifier, alpha=1.0, verbose=0)
    # The distillation loss ran (soft term logged) and the schedule still pruned every kernel.
    assert {"loss", "soft_loss", "hard_loss"} <= set(history.history)
    assert history.history["loss"] == pytest.approx(history.history["soft_loss"])  # alpha 1
    for row in sparsity_report(model)["layers"]:
        assert row["sparsity"] == pytest.approx(0.5, abs=0.02), row
    for old, new in zip(before, classifier.get_weights()):  # the teacher only predicts
        np.testing.assert_array_equal(old, new)


def test_schedule_and_bad_input(classifier):
    config = pruning_schedule(0.8, total_steps=30).get_config()["config"]
    assert (config["final_sparsity"], config["end_step"], config["frequency"]) == (0.8, 20, 2)
    check_target_sparsity(0.0)  # [0, 1): 0 prunes nothing but is allowed
    for bad in (1.0, 1.5, -0.1, "0.5", None):
        with pytest.raises(ValueError, match=r"target_sparsity.*\[0, 1\)"):
            pruning_schedule(bad, total_steps=10)
    with pytest.raises(ValueError, match=r"target_sparsity.*received 1.0"):
        prune_task_model(classifier, train_data_for("classify"), target_sparsity=1.0)
    with pytest.raises(ValueError, match="tf.data.Dataset"):
        prune_classifier(classifier, [1, 2, 3])
    with pytest.raises(ValueError, match="Expected an ElectraClassifier; received "
                                         "ElectraTokenClassifier"):
        prune_classifier(task_models()["tag"], train_data_for("tag"))
    with pytest.raises(ValueError, match="Expected a task model .* received ElectraEncoder"):
        prune_task_model(classifier.encoder, train_data_for("classify"))
    with pytest.warns(DeprecationWarning, match="copy_task_model"):
        assert type(copy_classifier(classifier)) is ElectraClassifier
