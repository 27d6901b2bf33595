"""Parity with transformers (torch, CPU) after conversion, and exact round trips."""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from conftest import make_inputs  # noqa: E402
from electra_tf import ElectraDiscriminator, ElectraEncoder, ElectraGenerator  # noqa: E402
from electra_tf.conversion.convert import convert  # noqa: E402

TOLERANCE = 1e-4  # the acceptance bound; observed differences are ~1e-6

# Random tiny configs: embedding != hidden (projection), equal, and a 3-segment vocabulary.
CONFIGS = [
    dict(vocab_size=53, embedding_size=12, hidden_size=16, num_hidden_layers=2,
         num_attention_heads=4, intermediate_size=24, max_position_embeddings=20),
    dict(vocab_size=41, embedding_size=16, hidden_size=16, num_hidden_layers=3,
         num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
         type_vocab_size=3, layer_norm_eps=1e-12),
]


def electra_config(**sizes):
    return transformers.ElectraConfig(hidden_act="gelu", **sizes)


def bert_config(embedding_size=None, **sizes):
    del embedding_size  # BERT has none: embeddings are hidden_size wide
    return transformers.BertConfig(hidden_act="gelu", **sizes)


def torch_outputs(model, inputs):
    model.eval()
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(inputs["input_word_ids"], dtype=torch.long),
            attention_mask=torch.tensor(inputs["input_mask"], dtype=torch.long),
            token_type_ids=torch.tensor(inputs["input_type_ids"], dtype=torch.long),
        )


def randomize(model, seed):
    """Non-trivial values everywhere (transformers zero-initializes biases, ones LayerNorm)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model


def save(model, path, safe=True):
    model.save_pretrained(path, safe_serialization=safe)
    return str(path)


def check_close(ours, theirs):
    difference = np.max(np.abs(np.asarray(ours) - theirs.detach().numpy()))
    assert difference <= TOLERANCE, difference


@pytest.mark.parametrize("sizes", CONFIGS)
@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "pytorch_bin"])
def test_electra_model_sequence_output(sizes, safe, tmp_path):
    reference = randomize(transformers.ElectraModel(electra_config(**sizes)), 0)
    ours = ElectraEncoder.from_huggingface(save(reference, tmp_path, safe))
    inputs = make_inputs(3, 10, sizes["vocab_size"])
    check_close(ours(inputs)["sequence_output"], torch_outputs(reference, inputs).last_hidden_state)


@pytest.mark.parametrize("sizes", CONFIGS)
def test_discriminator_logits(sizes, tmp_path):
    reference = randomize(transformers.ElectraForPreTraining(electra_config(**sizes)), 1)
    ours = ElectraDiscriminator.from_huggingface(save(reference, tmp_path))
    inputs = make_inputs(3, 10, sizes["vocab_size"])
    expected = torch_outputs(reference, inputs)
    check_close(ours(inputs)["logits"], expected.logits)
    # The same checkpoint also loads as a bare encoder (the head is skipped).
    encoder = ElectraEncoder.from_huggingface(str(tmp_path))
    check_close(encoder(inputs)["sequence_output"],
                reference.electra(input_ids=torch.tensor(inputs["input_word_ids"]).long(),
                                  attention_mask=torch.tensor(inputs["input_mask"]).long(),
                                  token_type_ids=torch.tensor(inputs["input_type_ids"]).long())
                .last_hidden_state)


@pytest.mark.parametrize("sizes", CONFIGS)
def test_generator_logits(sizes, tmp_path):
    reference = randomize(transformers.ElectraForMaskedLM(electra_config(**sizes)), 2)
    reference.tie_weights()
    ours = ElectraGenerator.from_huggingface(save(reference, tmp_path))
    inputs = make_inputs(3, 10, sizes["vocab_size"])
    expected = torch_outputs(reference, inputs).logits
    check_close(ours(inputs)["logits"], expected)
    positions = np.array([[1, 5], [0, 3], [2, 2]], np.int32)
    at_positions = ours({**inputs, "masked_lm_positions": positions})["logits"]
    check_close(at_positions, torch.gather(expected, 1, torch.tensor(positions).long()[..., None]
                                           .expand(-1, -1, sizes["vocab_size"])))


@pytest.mark.parametrize("sizes", CONFIGS)
def test_bert_model_sequence_output(sizes, tmp_path):
    reference = randomize(transformers.BertModel(bert_config(**sizes)), 3)
    ours = ElectraEncoder.from_huggingface(save(reference, tmp_path))
    inputs = make_inputs(3, 10, sizes["vocab_size"])
    check_close(ours(inputs)["sequence_output"], torch_outputs(reference, inputs).last_hidden_state)


def test_bert_masked_lm_logits(tmp_path):
    reference = randomize(transformers.BertForMaskedLM(bert_config(**CONFIGS[0])), 4)
    reference.tie_weights()
    ours = ElectraGenerator.from_huggingface(save(reference, tmp_path))
    inputs = make_inputs(3, 10, CONFIGS[0]["vocab_size"])
    check_close(ours(inputs)["logits"], torch_outputs(reference, inputs).logits)


@pytest.mark.parametrize(
    "cls, torch_cls",
    [
        (ElectraEncoder, "ElectraModel"),
        (ElectraDiscriminator, "ElectraForPreTraining"),
        (ElectraGenerator, "ElectraForMaskedLM"),
    ],
)
def test_round_trip_reproduces_every_tensor_exactly(cls, torch_cls, tmp_path):
    reference = randomize(getattr(transformers, torch_cls)(electra_config(**CONFIGS[0])), 5)
    if hasattr(reference, "tie_weights"):
        reference.tie_weights()
    ours = cls.from_huggingface(save(reference, tmp_path / "in"))
    ours.save_huggingface(str(tmp_path / "out"))
    with open(tmp_path / "out" / "config.json") as f:
        assert json.load(f)["architectures"] == [torch_cls]
    reloaded = getattr(transformers, torch_cls).from_pretrained(str(tmp_path / "out"))
    expected, actual = reference.state_dict(), reloaded.state_dict()
    assert set(expected) == set(actual)
    for key, value in expected.items():
        assert torch.equal(value, actual[key]), key
    # Also through the CLI function, electra_tf format in between.
    convert("huggingface", "electra_tf", str(tmp_path / "in"), str(tmp_path / "ours"))
    convert("electra_tf", "huggingface", str(tmp_path / "ours"), str(tmp_path / "back"))
    again = getattr(transformers, torch_cls).from_pretrained(str(tmp_path / "back")).state_dict()
    for key, value in expected.items():
        assert torch.equal(value, again[key]), key


def write_bad_checkpoint(tmp_path, edit_state=None, edit_config=None):
    from safetensors.numpy import load_file, save_file

    reference = transformers.ElectraForPreTraining(electra_config(**CONFIGS[0]))
    path = save(reference, tmp_path / "bad")
    state = load_file(os.path.join(path, "model.safetensors"))
    if edit_state:
        edit_state(state)
    save_file(state, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    if edit_config:
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
        edit_config(config)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config, f)
    return path


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    def edit(state):
        del state["electra.encoder.layer.1.output.dense.bias"]
        state["electra.encoder.layer.1.output.adapter.weight"] = np.zeros((2, 2), np.float32)

    path = write_bad_checkpoint(tmp_path, edit_state=edit)
    with pytest.raises(ValueError) as error:
        ElectraDiscriminator.from_huggingface(path)
    message = str(error.value)
    assert "missing keys (1): ['electra.encoder.layer.1.output.dense.bias']" in message
    assert "unexpected keys (1): ['electra.encoder.layer.1.output.adapter.weight']" in message


def test_shape_mismatch_names_variable_and_both_shapes(tmp_path):
    def edit(config):
        config["intermediate_size"] = 20  # the weights are 24 wide

    path = write_bad_checkpoint(tmp_path, edit_config=edit)
    with pytest.raises(ValueError, match=r"encoder/layer_0/intermediate/dense/kernel: "
                                         r"checkpoint \(16, 24\), model \(16, 20\)"):
        ElectraDiscriminator.from_huggingface(path)


def test_wrong_head_and_bad_directories(tmp_path):
    reference = transformers.ElectraModel(electra_config(**CONFIGS[0]))
    path = save(reference, tmp_path / "encoder")
    with pytest.raises(ValueError, match="holds a encoder checkpoint .*as an ElectraEncoder"):
        ElectraDiscriminator.from_huggingface(path)
    with pytest.raises(ValueError, match="is not one"):
        ElectraEncoder.from_huggingface(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No config.json"):
        ElectraEncoder.from_huggingface(str(tmp_path / "empty"))
    with open(tmp_path / "empty" / "config.json", "w") as f:
        f.write("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ElectraEncoder.from_huggingface(str(tmp_path / "empty"))
    with open(tmp_path / "empty" / "config.json", "w") as f:
        json.dump({"model_type": "electra", "hidden_act": "gelu_new", "vocab_size": 3,
                   "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 1}, f)
    with pytest.raises(ValueError, match="hidden_act='gelu_new'"):
        ElectraEncoder.from_huggingface(str(tmp_path / "empty"))


def test_failed_conversion_writes_nothing_and_existing_output_is_kept(tmp_path):
    path = write_bad_checkpoint(tmp_path, edit_config=lambda c: c.update(intermediate_size=20))
    destination = tmp_path / "dst"
    with pytest.raises(ValueError):
        convert("huggingface", "electra_tf", path, str(destination))
    assert not destination.exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".dst")] == []

    good = save(transformers.ElectraModel(electra_config(**CONFIGS[0])), tmp_path / "good")
    convert("huggingface", "huggingface", good, str(destination))
    before = sorted(os.listdir(destination))
    with pytest.raises(ValueError, match="already exists"):
        convert("huggingface", "huggingface", good, str(destination))
    assert sorted(os.listdir(destination)) == before
    convert("huggingface", "electra_tf", good, str(destination), overwrite=True)
    assert sorted(os.listdir(destination)) == ["config.json", "model.weights.h5"]
