"""Original google-research/electra TF1 checkpoints, written by the test with the exact TF1 names."""

import numpy as np
import pytest
import tensorflow as tf

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from conftest import make_inputs  # noqa: E402
from electra_tf import ElectraDiscriminator, ElectraEncoder, ElectraGenerator  # noqa: E402
from electra_tf.conversion.google_checkpoint import load_google_pretraining_checkpoint  # noqa: E402
from electra_tf.models.presets import ElectraConfig  # noqa: E402

DISCRIMINATOR = dict(vocab_size=47, embedding_size=8, hidden_size=12, num_hidden_layers=2,
                     num_attention_heads=3, intermediate_size=20, max_position_embeddings=16)
GENERATOR = {**DISCRIMINATOR, "hidden_size": 6, "num_attention_heads": 1, "intermediate_size": 10}


def ours(sizes):
    return ElectraConfig(
        vocab_size=sizes["vocab_size"], embedding_size=sizes["embedding_size"],
        hidden_size=sizes["hidden_size"], num_layers=sizes["num_hidden_layers"],
        num_heads=sizes["num_attention_heads"], intermediate_size=sizes["intermediate_size"],
        max_sequence_length=sizes["max_position_embeddings"],
    )


def tf1_variables(model, scope, embeddings_scope):
    """A transformers model's weights under the TF1 names of google-research/electra.

    Written out by hand here (not with the library's mapping) so the test
    checks the names the issue lists: `electra/embeddings/word_embeddings`,
    `electra/encoder/layer_0/attention/self/query/kernel`, ... with (in, out) kernels.
    """
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    base = model.electra if hasattr(model, "electra") else model
    prefix = "electra." if hasattr(model, "electra") else ""
    out = {}
    for table in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        out[f"{embeddings_scope}/embeddings/{table}"] = state[f"{prefix}embeddings.{table}.weight"]
    out[f"{embeddings_scope}/embeddings/LayerNorm/gamma"] = state[f"{prefix}embeddings.LayerNorm.weight"]
    out[f"{embeddings_scope}/embeddings/LayerNorm/beta"] = state[f"{prefix}embeddings.LayerNorm.bias"]
    if hasattr(base, "embeddings_project"):
        out[f"{scope}/embeddings_project/kernel"] = state[f"{prefix}embeddings_project.weight"].T
        out[f"{scope}/embeddings_project/bias"] = state[f"{prefix}embeddings_project.bias"]
    dense = {
        "attention/self/query": "attention.self.query",
        "attention/self/key": "attention.self.key",
        "attention/self/value": "attention.self.value",
        "attention/output/dense": "attention.output.dense",
        "intermediate/dense": "intermediate.dense",
        "output/dense": "output.dense",
    }
    norms = {"attention/output/LayerNorm": "attention.output.LayerNorm",
             "output/LayerNorm": "output.LayerNorm"}
    for i in range(len(base.encoder.layer)):
        torch_layer = f"{prefix}encoder.layer.{i}"
        for tf_name, torch_name in dense.items():
            out[f"{scope}/encoder/layer_{i}/{tf_name}/kernel"] = state[f"{torch_layer}.{torch_name}.weight"].T
            out[f"{scope}/encoder/layer_{i}/{tf_name}/bias"] = state[f"{torch_layer}.{torch_name}.bias"]
        for tf_name, torch_name in norms.items():
            out[f"{scope}/encoder/layer_{i}/{tf_name}/gamma"] = state[f"{torch_layer}.{torch_name}.weight"]
            out[f"{scope}/encoder/layer_{i}/{tf_name}/beta"] = state[f"{torch_layer}.{torch_name}.bias"]
    if "discriminator_predictions.dense.weight" in state:
        for tf_name, torch_name in (("dense", "dense"), ("dense_1", "dense_prediction")):
            out[f"discriminator_predictions/{tf_name}/kernel"] = state[f"discriminator_predictions.{torch_name}.weight"].T
            out[f"discriminator_predictions/{tf_name}/bias"] = state[f"discriminator_predictions.{torch_name}.bias"]
    if "generator_predictions.dense.weight" in state:
        out["generator_predictions/dense/kernel"] = state["generator_predictions.dense.weight"].T
        out["generator_predictions/dense/bias"] = state["generator_predictions.dense.bias"]
        out["generator_predictions/LayerNorm/gamma"] = state["generator_predictions.LayerNorm.weight"]
        out["generator_predictions/LayerNorm/beta"] = state["generator_predictions.LayerNorm.bias"]
        out["generator_predictions/output_bias"] = state["generator_lm_head.bias"]
    return out


def write_tf1_checkpoint(prefix, variables):
    """SaveV2 writes a name-based checkpoint exactly like TF1's Saver, plus Adam slots."""
    variables = dict(variables)
    for name in list(variables):
        variables[f"{name}/adam_m"] = np.zeros_like(variables[name])
        variables[f"{name}/adam_v"] = np.ones_like(variables[name])
    variables["global_step"] = np.array(1000000, np.int64)
    names = sorted(variables)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(variables[n]) for n in names],
    )
    return prefix


def random_pair(seed=0):
    torch.manual_seed(seed)
    discriminator = transformers.ElectraForPreTraining(transformers.ElectraConfig(**DISCRIMINATOR))
    generator = transformers.ElectraForMaskedLM(transformers.ElectraConfig(**GENERATOR))
    with torch.no_grad():
        for p in list(discriminator.parameters()) + list(generator.parameters()):
            p.normal_(0, 0.2)
        # The original shares embeddings: the generator uses the discriminator's.
        generator.electra.embeddings.load_state_dict(discriminator.electra.embeddings.state_dict())
    generator.tie_weights()
    return generator.eval(), discriminator.eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    generator, discriminator = random_pair()
    variables = {**tf1_variables(discriminator, "electra", "electra"),
                 **tf1_variables(generator, "generator", "electra")}
    prefix = str(tmp_path_factory.mktemp("google") / "model.ckpt-1000000")
    write_tf1_checkpoint(prefix, variables)
    return prefix, generator, discriminator


def test_discriminator_matches_the_huggingface_path(checkpoint, tmp_path):
    prefix, _, reference = checkpoint
    inputs = make_inputs(3, 10, DISCRIMINATOR["vocab_size"])
    from_google = ElectraDiscriminator.from_google_checkpoint(prefix, ours(DISCRIMINATOR))
    reference.save_pretrained(str(tmp_path))
    from_hf = ElectraDiscriminator.from_huggingface(str(tmp_path))
    for a, b in zip(from_google.weights, from_hf.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(from_google(inputs)["logits"], from_hf(inputs)["logits"], atol=1e-6)
    with torch.no_grad():
        expected = reference(**{"input_ids": torch.tensor(inputs["input_word_ids"]).long(),
                                "attention_mask": torch.tensor(inputs["input_mask"]).long(),
                                "token_type_ids": torch.tensor(inputs["input_type_ids"]).long()}).logits
    assert np.max(np.abs(from_google(inputs)["logits"].numpy() - expected.numpy())) <= 1e-4


def test_generator_uses_shared_electra_embeddings(checkpoint):
    prefix, reference, _ = checkpoint
    inputs = make_inputs(3, 10, GENERATOR["vocab_size"])
    generator = ElectraGenerator.from_google_checkpoint(prefix, ours(GENERATOR))
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(inputs["input_word_ids"]).long(),
                             attention_mask=torch.tensor(inputs["input_mask"]).long(),
                             token_type_ids=torch.tensor(inputs["input_type_ids"]).long()).logits
    assert np.max(np.abs(generator(inputs)["logits"].numpy() - expected.numpy())) <= 1e-4


def test_encoder_from_google_checkpoint(checkpoint):
    prefix, _, reference = checkpoint
    inputs = make_inputs(2, 7, DISCRIMINATOR["vocab_size"])
    encoder = ElectraEncoder.from_google_checkpoint(prefix, ours(DISCRIMINATOR).to_dict())
    with torch.no_grad():
        expected = reference.electra(input_ids=torch.tensor(inputs["input_word_ids"]).long(),
                                     attention_mask=torch.tensor(inputs["input_mask"]).long(),
                                     token_type_ids=torch.tensor(inputs["input_type_ids"]).long())
    assert np.max(np.abs(encoder(inputs)["sequence_output"].numpy()
                         - expected.last_hidden_state.numpy())) <= 1e-4


def test_pretraining_checkpoint_loads_tied(checkpoint, monkeypatch):
    prefix, _, _ = checkpoint
    from electra_tf.models import presets

    monkeypatch.setitem(presets.PRESETS, "test", {"discriminator": ours(DISCRIMINATOR),
                                                  "generator": ours(GENERATOR)})
    generator, discriminator = load_google_pretraining_checkpoint(prefix, "test")
    assert generator.encoder.embedding_layer is discriminator.encoder.embedding_layer
    alone = ElectraGenerator.from_google_checkpoint(prefix, ours(GENERATOR))
    inputs = make_inputs(2, 7, GENERATOR["vocab_size"])
    np.testing.assert_allclose(generator(inputs)["logits"], alone(inputs)["logits"], atol=1e-6)


def test_shape_mismatch_and_missing_variables(checkpoint, tmp_path):
    prefix, _, _ = checkpoint
    wrong = {**ours(DISCRIMINATOR).to_dict(), "intermediate_size": 30}
    with pytest.raises(ValueError, match=r"encoder/layer_0/intermediate/dense/kernel: "
                                         r"checkpoint \(12, 20\), model \(12, 30\)"):
        ElectraDiscriminator.from_google_checkpoint(prefix, wrong)
    deeper = {**ours(DISCRIMINATOR).to_dict(), "num_layers": 3}
    with pytest.raises(ValueError, match="lacks 16 variables .*'electra/encoder/layer_2/"):
        ElectraDiscriminator.from_google_checkpoint(prefix, deeper)
    with pytest.raises(ValueError, match="Unknown ELECTRA config keys \\['hidden'\\]"):
        ElectraDiscriminator.from_google_checkpoint(prefix, {"hidden": 3})
    with pytest.raises(ValueError, match="Cannot read a TF checkpoint"):
        ElectraDiscriminator.from_google_checkpoint(str(tmp_path / "missing"), "small")
