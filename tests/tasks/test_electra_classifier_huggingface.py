"""ElectraForSequenceClassification ⇄ ElectraClassifier: logits parity and round trips."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from conftest import TINY, make_inputs  # noqa: E402
from electra_tf import ElectraEncoder  # noqa: E402
from electra_tf.tasks.electra_classifier import ElectraClassifier  # noqa: E402

TOLERANCE = 1e-4  # the acceptance bound on logits

# Random tiny configs: embedding != hidden (projection) and equal; 3 segment types.
SIZES = [
    dict(vocab_size=53, embedding_size=12, hidden_size=16, num_hidden_layers=2,
         num_attention_heads=4, intermediate_size=24, max_position_embeddings=20),
    dict(vocab_size=41, embedding_size=16, hidden_size=16, num_hidden_layers=3,
         num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
         type_vocab_size=3),
]
PROBLEMS = [  # (transformers problem_type, num_labels, ours)
    ("single_label_classification", 3, "single_label"),
    ("multi_label_classification", 4, "multi_label"),
    ("regression", 1, "regression"),
    (None, 1, "regression"),  # unset: transformers treats one label as regression
    (None, 2, "single_label"),
]


def reference_model(sizes, problem_type, num_labels, seed):
    config = transformers.ElectraConfig(
        hidden_act="gelu", num_labels=num_labels, problem_type=problem_type, **sizes
    )
    model = transformers.ElectraForSequenceClassification(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-trivial values everywhere, biases and LayerNorm included
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model.eval()


def torch_logits(model, inputs):
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(inputs["input_word_ids"], dtype=torch.long),
            attention_mask=torch.tensor(inputs["input_mask"], dtype=torch.long),
            token_type_ids=torch.tensor(inputs["input_type_ids"], dtype=torch.long),
        ).logits.numpy()


@pytest.mark.parametrize("sizes", SIZES, ids=["projection", "no_projection"])
@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: f"{p[0]}-{p[1]}")
def test_from_huggingface_logits_parity(sizes, problem, tmp_path):
    problem_type, num_labels, ours = problem
    reference = reference_model(sizes, problem_type, num_labels, seed=num_labels)
    reference.save_pretrained(str(tmp_path))
    classifier = ElectraClassifier.from_huggingface(str(tmp_path))
    assert (classifier.head, classifier.num_classes, classifier.problem_type) == (
        "huggingface", num_labels, ours)
    inputs = make_inputs(3, 10, sizes["vocab_size"])  # padding and two segments
    difference = np.max(np.abs(classifier(inputs).numpy() - torch_logits(reference, inputs)))
    assert difference <= TOLERANCE, difference


def test_save_huggingface_loads_in_transformers_unchanged(tmp_path):
    classifier = ElectraClassifier(
        ElectraEncoder(**TINY), 3, head="huggingface", problem_type="multi_label"
    )
    for variable in classifier.weights:  # non-zero biases, non-unit LayerNorm
        variable.assign(np.random.default_rng(0).normal(0, 0.2, variable.shape))
    classifier.save_huggingface(str(tmp_path / "hf"))
    with open(tmp_path / "hf" / "config.json") as f:
        config = json.load(f)
    assert config["architectures"] == ["ElectraForSequenceClassification"]
    assert config["problem_type"] == "multi_label_classification"
    reference = transformers.ElectraForSequenceClassification.from_pretrained(
        str(tmp_path / "hf")).eval()
    inputs = make_inputs(3, 9, TINY["vocab_size"])
    np.testing.assert_allclose(classifier(inputs), torch_logits(reference, inputs), atol=TOLERANCE)
    # ... and back, exactly.
    again = ElectraClassifier.from_huggingface(str(tmp_path / "hf"))
    assert again.problem_type == "multi_label" and again.dropout_rate == classifier.dropout_rate
    for ours, theirs in zip(classifier.weights, again.weights):
        np.testing.assert_array_equal(ours, theirs)


def test_electra_head_has_no_transformers_counterpart(tmp_path):
    classifier = ElectraClassifier(ElectraEncoder(**TINY), 2, head="electra")
    with pytest.raises(ValueError, match="head='huggingface'.*save_pretrained"):
        classifier.save_huggingface(str(tmp_path / "hf"))
    assert not (tmp_path / "hf").exists()


def test_checkpoint_without_classifier_head_is_rejected(tmp_path):
    model = transformers.ElectraForPreTraining(
        transformers.ElectraConfig(hidden_act="gelu", **SIZES[0]))
    model.save_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="missing keys .*classifier.dense.weight"):
        ElectraClassifier.from_huggingface(str(tmp_path))


def test_bert_classifier_is_rejected_with_a_way_out(tmp_path):
    sizes = {k: v for k, v in SIZES[1].items() if k != "embedding_size"}
    model = transformers.BertForSequenceClassification(
        transformers.BertConfig(hidden_act="gelu", **sizes))
    model.save_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="model_type='bert'.*ElectraEncoder.from_huggingface"):
        ElectraClassifier.from_huggingface(str(tmp_path))
