"""Structured pruning: removing heads and neurons is exactly zeroing their weights; the taylor
score is the gate derivative it is defined as; the smaller model saves, loads and exports; the
`compress shrink` job writes a task directory and refuses bad input before writing anything."""

import os

import numpy as np
import pytest
import task_dirs
import tensorflow as tf
from task_dirs import read_json

from electra_tf import (
    ElectraClassifier,
    ElectraEncoder,
    ElectraQuestionAnswering,
    head_and_neuron_importance,
    prune_heads_and_neurons,
)
from electra_tf.checkpoint_formats.huggingface import save_huggingface
from electra_tf.cli.main import main
from electra_tf.compression.compress import run_shrink
from electra_tf.compression.structured_pruning import kept_indices
from electra_tf.export.tflite_export import export_tflite, run_tflite
from electra_tf.tasks.task_model_io import MODEL_DIRNAME, load_task_model

SIZES = dict(vocab_size=40, hidden_size=16, num_layers=2, num_heads=4, intermediate_size=32,
             embedding_size=8, max_sequence_length=16, dropout_rate=0.0)


def _features(batch=3, length=7, seed=0):
    rng = np.random.default_rng(seed)
    lengths = [length, length - 2, 3][:batch] + [length] * max(0, batch - 3)
    ids = rng.integers(5, SIZES["vocab_size"], (batch, length)).astype(np.int32)
    mask = (np.arange(length)[None] < np.array(lengths)[:, None]).astype(np.int32)
    return {"input_word_ids": tf.constant(ids * mask), "input_mask": tf.constant(mask),
            "input_type_ids": tf.zeros((batch, length), tf.int32)}


@pytest.fixture(scope="module")
def classifier():
    tf.keras.utils.set_random_seed(1)
    model = ElectraClassifier(ElectraEncoder(**SIZES), num_classes=3)
    # Bigger weights than the 0.02 initializer, so every head and neuron visibly matters.
    for variable in model.trainable_variables:
        variable.assign(variable * 10.0 if "kernel" in variable.name else variable)
    return model


def _random_importance(rng, heads=4, neurons=32, layers=2):
    return {"heads": rng.random((layers, heads)), "neurons": rng.random((layers, neurons))}


def test_keeping_everything_computes_exactly_what_the_model_does(classifier):
    features = _features()
    same = prune_heads_and_neurons(classifier, num_heads=4, intermediate_size=32)
    np.testing.assert_array_equal(same(features).numpy(), classifier(features).numpy())


def test_removing_heads_and_neurons_equals_zeroing_their_weights(classifier):
    rng = np.random.default_rng(0)
    importance = _random_importance(rng)
    smaller = prune_heads_and_neurons(classifier, num_heads=2, intermediate_size=12,
                                      importance=importance)
    encoder = smaller.encoder
    assert (encoder.num_heads, encoder.head_size, encoder.intermediate_size) == (2, 4, 12)
    assert smaller.count_params() < classifier.count_params()
    layer = encoder.transformer_layers[0]
    assert tuple(layer.qkv_dense.kernel.shape) == (16, 3 * 2 * 4)
    assert tuple(layer.attention_output_dense.kernel.shape) == (8, 16)
    assert tuple(layer.output_dense.kernel.shape) == (12, 16)

    # The reference: the full model with the removed heads' output rows and the removed
    # neurons' output rows set to zero, so they contribute nothing.
    reference = prune_heads_and_neurons(classifier, num_heads=4, intermediate_size=32)
    for i, layer in enumerate(reference.encoder.transformer_layers):
        kernel = layer.attention_output_dense.kernel.numpy().reshape(4, 4, 16)
        removed = [h for h in range(4) if h not in kept_indices(importance["heads"][i], 2)]
        kernel[removed] = 0.0
        layer.attention_output_dense.kernel.assign(kernel.reshape(16, 16))
        kernel = layer.output_dense.kernel.numpy()
        removed = [j for j in range(32) if j not in kept_indices(importance["neurons"][i], 12)]
        kernel[removed] = 0.0
        layer.output_dense.kernel.assign(kernel)
    features = _features()
    expected = reference(features).numpy()
    np.testing.assert_allclose(smaller(features).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert np.abs(expected - classifier(features).numpy()).max() > 1e-3  # something was removed
    # Padding-free mode runs the narrower attention too.
    np.testing.assert_allclose(smaller(features, remove_padding=True).numpy(), expected,
                               rtol=1e-5, atol=1e-5)


def _loss_with_gate(model, features, labels, layer_index, rows, kernel_name, scale):
    """The task loss with `rows` of one layer's kernel multiplied by `scale`."""
    dense = getattr(model.encoder.transformer_layers[layer_index], kernel_name)
    original = dense.kernel.numpy()
    gated = original.copy()
    gated[rows] *= scale
    dense.kernel.assign(gated)
    try:
        logits = tf.cast(model(features, training=False), tf.float64)
        return float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits)))
    finally:
        dense.kernel.assign(original)


def test_taylor_score_is_the_gate_derivative_it_is_defined_as(classifier):
    features, labels = _features(batch=4, length=6, seed=3), tf.constant([0, 2, 1, 2])
    data = tf.data.Dataset.from_tensors((features, labels))
    scores = head_and_neuron_importance(classifier, data, batches=1, method="taylor")
    assert scores["heads"].shape == (2, 4) and scores["neurons"].shape == (2, 32)
    epsilon = 1e-2
    for layer_index, head in [(0, 1), (1, 3)]:
        rows = slice(4 * head, 4 * head + 4)  # head_size 4
        plus, minus = (_loss_with_gate(classifier, features, labels, layer_index, rows,
                                       "attention_output_dense", 1 + sign * epsilon)
                       for sign in (1, -1))
        np.testing.assert_allclose(scores["heads"][layer_index, head],
                                   abs(plus - minus) / (2 * epsilon), rtol=2e-2, atol=1e-6)
    for layer_index, neuron in [(0, 5), (1, 30)]:
        plus, minus = (_loss_with_gate(classifier, features, labels, layer_index, [neuron],
                                       "output_dense", 1 + sign * epsilon) for sign in (1, -1))
        np.testing.assert_allclose(scores["neurons"][layer_index, neuron],
                                   abs(plus - minus) / (2 * epsilon), rtol=2e-2, atol=1e-6)
    # Averaged over batches: the same batch twice gives the same scores.
    twice = head_and_neuron_importance(classifier, data.repeat(2), batches=2)
    np.testing.assert_allclose(twice["heads"], scores["heads"], rtol=1e-6)


def test_taylor_keeps_the_heads_that_matter_better_than_the_ones_it_drops(classifier):
    features, labels = _features(batch=4, length=6, seed=5), tf.constant([1, 0, 2, 1])
    data = tf.data.Dataset.from_tensors((features, labels))
    scores = head_and_neuron_importance(classifier, data, batches=1)
    kept = prune_heads_and_neurons(classifier, 3, 32, scores)
    worst = {"heads": -scores["heads"], "neurons": scores["neurons"]}
    dropped_best = prune_heads_and_neurons(classifier, 3, 32, worst)

    def loss(model):
        return float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=model(features))))

    full = loss(classifier)
    assert abs(loss(kept) - full) < abs(loss(dropped_best) - full)


def test_magnitude_scores_rank_by_weight_norms(classifier):
    scores = head_and_neuron_importance(classifier, method="magnitude")
    layer = classifier.encoder.transformer_layers[1]
    kernel = layer.attention_output_dense.kernel.numpy()
    np.testing.assert_allclose(scores["heads"][1, 2], np.linalg.norm(kernel[8:12]), rtol=1e-6)
    expected = (np.linalg.norm(layer.intermediate_dense.kernel.numpy()[:, 7])
                * np.linalg.norm(layer.output_dense.kernel.numpy()[7]))
    np.testing.assert_allclose(scores["neurons"][1, 7], expected, rtol=1e-6)


def test_smaller_model_saves_loads_and_exports_to_tflite(classifier, tmp_path):
    smaller = prune_heads_and_neurons(classifier, 3, 20)
    smaller.save_pretrained(str(tmp_path / "smaller"))
    reloaded = ElectraClassifier.from_pretrained(str(tmp_path / "smaller"))
    assert (reloaded.encoder.num_heads, reloaded.encoder.head_size) == (3, 4)
    features = _features(batch=1, length=16)
    np.testing.assert_allclose(reloaded(features).numpy(), smaller(features).numpy(), atol=1e-6)
    path = str(tmp_path / "smaller.tflite")
    export_tflite(smaller, path, max_seq_length=16)
    logits = run_tflite(path, {k: v.numpy() for k, v in features.items()})
    np.testing.assert_allclose(logits, smaller(features).numpy(), atol=1e-4)


def test_published_formats_refuse_a_model_with_removed_heads(classifier, tmp_path):
    smaller = prune_heads_and_neurons(classifier, 2, 32)
    with pytest.raises(ValueError, match="2 heads of width 4 .*hidden size 16.*save_pretrained"):
        save_huggingface(smaller.encoder, str(tmp_path / "hf"))
    assert not os.path.exists(tmp_path / "hf")
    # Narrower feed-forward layers alone are an ordinary config: nothing to refuse.
    save_huggingface(prune_heads_and_neurons(classifier, 4, 8).encoder, str(tmp_path / "hf2"))
    assert read_json(tmp_path / "hf2" / "config.json")["intermediate_size"] == 8


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_heads=5, intermediate_size=32), r"`num_heads` must be an integer in \[1, 4\]"),
    (dict(num_heads=0, intermediate_size=32), r"received num_heads=0"),
    (dict(num_heads=2, intermediate_size=33), r"`intermediate_size` must be .*\[1, 32\]"),
    (dict(num_heads=2, intermediate_size=8,
          importance={"heads": np.ones((2, 3)), "neurons": np.ones((2, 32))}),
     r"importance\['heads'\]` must have shape \(2, 4\).*received \(2, 3\)"),
])
def test_bad_sizes_and_scores_are_refused(classifier, kwargs, message):
    with pytest.raises(ValueError, match=message):
        prune_heads_and_neurons(classifier, **kwargs)


def test_importance_refuses_bad_arguments(classifier):
    with pytest.raises(ValueError, match="needs `data`"):
        head_and_neuron_importance(classifier)
    with pytest.raises(ValueError, match="`method` must be one of"):
        head_and_neuron_importance(classifier, method="random")
    with pytest.raises(ValueError, match=r"Expected an ElectraEncoder or a model with one in `.encoder`.*received object"):
        head_and_neuron_importance(object(), method="magnitude")


def test_a_question_answering_model_shrinks_too():
    tf.keras.utils.set_random_seed(2)
    model = ElectraQuestionAnswering(ElectraEncoder(**SIZES))
    smaller = prune_heads_and_neurons(model, 2, 16)
    assert type(smaller) is ElectraQuestionAnswering and smaller.encoder.num_heads == 2
    outputs = smaller(_features())
    assert outputs["start_logits"].shape == (3, 7)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("shrink")
    with pytest.MonkeyPatch.context() as patch:  # 4 heads, so some can go
        patch.setitem(task_dirs.ENCODER, "num_heads", 4)
        return {**task_dirs.make_task_dirs(root), "root": root}


def test_compress_shrink_writes_a_smaller_task_directory(dirs, capsys):
    out = dirs["root"] / "shrunk"
    assert main(["compress", "shrink", dirs["classify"], "--train", dirs["classify_data"],
                 "--dev", dirs["classify_data"], "--output-dir", str(out), "--num-heads", "2",
                 "--intermediate-size", "8", "--importance-batches", "2", "--max-steps", "2",
                 "--batch-size", "8", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "kept 2 heads and 8 feed-forward neurons per layer" in printed
    assert "pruned" in printed and "after distillation" in printed
    model, _, task = load_task_model(str(out / MODEL_DIRNAME), "classify")
    assert (model.encoder.num_heads, model.encoder.intermediate_size) == (2, 8)
    assert task["compressed_from"].startswith("shrink /") and task["label_names"] == ["neg", "pos"]
    summary = read_json(out / "summary.json")
    assert summary["steps"] == 2 and summary["importance"] == "taylor"
    assert len(summary["kept_heads"]) == 1 and len(summary["kept_heads"][0]) == 2
    assert summary["parameters_after"] < summary["parameters_before"]
    for key in ("dev_score_teacher", "dev_score_pruned", "dev_score_student"):
        assert 0.0 <= summary[key] <= 1.0
    assert list((out / "logs").rglob("events.out.tfevents.*"))


def test_compress_shrink_refuses_bad_sizes_before_writing(dirs):
    out = dirs["root"] / "refused"
    with pytest.raises(ValueError, match=r"`num_heads` must be an integer in \[1, 4\]"):
        run_shrink(dirs["classify"], dirs["classify_data"], str(out), num_heads=6)
    with pytest.raises(ValueError, match="`importance` .* must be one of"):
        run_shrink(dirs["classify"], dirs["classify_data"], str(out), importance="random")
    assert not out.exists()


def test_a_shrunk_model_goes_through_quantization_aware_training_to_an_int8_file(classifier):
    from electra_tf import quantization_aware_training, quantized_tflite_flatbuffer
    from electra_tf.compression.quantization import tflite_agreement

    smaller = prune_heads_and_neurons(classifier, 2, 16)
    features = _features(batch=4, length=16, seed=7)
    data = tf.data.Dataset.from_tensors((features, tf.constant([0, 1, 2, 1]))).repeat()
    with quantization_aware_training(smaller, data, steps_per_epoch=2, verbose=0) as (quantized, _):
        flatbuffer = quantized_tflite_flatbuffer(quantized, 16)
        difference = tflite_agreement(quantized, flatbuffer, features, 16)
        low, high = (float(v.numpy()) for v in quantized.logits._output_quantizer_vars.values())
    # The narrower attention quantizes as the full one does: the file computes the QAT model's
    # int8 graph, to the rounding of an output step here and there. Counted in output steps:
    # a difference of exactly two steps comes out a float32 ulp above 2 × the step.
    steps = difference / ((high - low) / 255)
    assert steps <= 2 + 1e-3, f"the file's logits differ by {steps:.4f} int8 output steps"
