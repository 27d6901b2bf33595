"""ElectraForQuestionAnswering ⇄ ElectraQuestionAnswering(head="huggingface"): logits parity and round trips."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from conftest import TINY, make_inputs  # noqa: E402
from electra_tf import ElectraEncoder, ElectraQuestionAnswering  # noqa: E402

TOLERANCE = 1e-4  # the acceptance bound on logits

SIZES = [  # embedding != hidden (projection) and equal
    dict(vocab_size=53, embedding_size=12, hidden_size=16, num_hidden_layers=2,
         num_attention_heads=4, intermediate_size=24, max_position_embeddings=20),
    dict(vocab_size=41, embedding_size=16, hidden_size=16, num_hidden_layers=3,
         num_attention_heads=2, intermediate_size=32, max_position_embeddings=16),
]


def reference_model(sizes, seed):
    model = transformers.ElectraForQuestionAnswering(
        transformers.ElectraConfig(hidden_act="gelu", **sizes))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-trivial values everywhere, biases and LayerNorm included
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model.eval()


def torch_logits(model, inputs):
    with torch.no_grad():
        outputs = model(
            input_ids=torch.tensor(inputs["input_word_ids"], dtype=torch.long),
            attention_mask=torch.tensor(inputs["input_mask"], dtype=torch.long),
            token_type_ids=torch.tensor(inputs["input_type_ids"], dtype=torch.long),
        )
    return outputs.start_logits.numpy(), outputs.end_logits.numpy()


@pytest.mark.parametrize("index", [0, 1], ids=["projection", "no_projection"])
def test_from_huggingface_logits_parity(index, tmp_path):
    sizes = SIZES[index]
    reference = reference_model(sizes, seed=index)
    reference.save_pretrained(str(tmp_path))
    model = ElectraQuestionAnswering.from_huggingface(str(tmp_path))
    assert model.head == "huggingface"
    inputs = make_inputs(3, 10, sizes["vocab_size"])  # padding and two segments
    outputs = model(inputs)
    start, end = torch_logits(reference, inputs)
    assert np.max(np.abs(outputs["start_logits"].numpy() - start)) <= TOLERANCE
    assert np.max(np.abs(outputs["end_logits"].numpy() - end)) <= TOLERANCE


def test_save_huggingface_loads_in_transformers_unchanged(tmp_path):
    model = ElectraQuestionAnswering(ElectraEncoder(**TINY))
    rng = np.random.default_rng(0)
    for variable in model.weights:  # non-zero biases, non-unit LayerNorm
        variable.assign(rng.normal(0, 0.2, variable.shape))
    model.save_huggingface(str(tmp_path / "hf"))
    with open(tmp_path / "hf" / "config.json") as f:
        assert json.load(f)["architectures"] == ["ElectraForQuestionAnswering"]
    reference = transformers.ElectraForQuestionAnswering.from_pretrained(
        str(tmp_path / "hf")).eval()
    inputs = make_inputs(3, 9, TINY["vocab_size"])
    start, end = torch_logits(reference, inputs)
    np.testing.assert_allclose(model(inputs)["start_logits"], start, atol=TOLERANCE)
    np.testing.assert_allclose(model(inputs)["end_logits"], end, atol=TOLERANCE)
    again = ElectraQuestionAnswering.from_huggingface(str(tmp_path / "hf"))  # ... and back, exactly
    for ours, theirs in zip(model.trainable_weights, again.trainable_weights):
        np.testing.assert_array_equal(ours, theirs)


def test_electra_head_has_no_transformers_counterpart(tmp_path):
    model = ElectraQuestionAnswering(ElectraEncoder(**TINY), head="electra", head_hidden_size=4)
    with pytest.raises(ValueError, match="head='huggingface'.*save_pretrained"):
        model.save_huggingface(str(tmp_path / "hf"))
    assert not (tmp_path / "hf").exists()


def test_checkpoint_without_qa_head_is_rejected(tmp_path):
    transformers.ElectraForPreTraining(
        transformers.ElectraConfig(hidden_act="gelu", **SIZES[0])).save_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="missing keys .*qa_outputs.weight"):
        ElectraQuestionAnswering.from_huggingface(str(tmp_path))
