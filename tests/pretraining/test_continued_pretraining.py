"""Continued pretraining (`init_from`): exact step-0 weights from every source kind, a head
start over random weights, the vocabulary check, resume precedence and the CLI flags."""

import csv
import dataclasses
import gzip
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import packaged_corpus

from electra_tf.conversion.convert import convert
from electra_tf.conversion.weight_slots import embedding_slots, model_slots
from electra_tf.models.electra_discriminator import ElectraDiscriminator
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.models.electra_generator import ElectraGenerator
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.pretraining.continued_pretraining import (
    build_initialized_pretrainer,
    read_init_sources,
)
from electra_tf.pretraining.run_pretraining import PretrainingConfig, run_pretraining

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB_SIZE = 30522  # the packaged uncased vocabulary's, which these runs use
# Tiny Hugging Face sizes: embeddings projected 16 -> 32 (discriminator) and 16 -> 16.
HF_DISCRIMINATOR = dict(vocab_size=VOCAB_SIZE, embedding_size=16, hidden_size=32,
                        num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64, hidden_act="gelu")
HF_GENERATOR = dict(HF_DISCRIMINATOR, hidden_size=16, num_attention_heads=1, intermediate_size=32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The first 300 lines of Persuasion: a few hundred packed 32-token examples."""
    path = tmp_path_factory.mktemp("corpus") / "persuasion.txt"
    with gzip.open(packaged_corpus("held_out"), "rt", encoding="utf-8") as f:
        path.write_text("".join(line for _, line in zip(range(300), f)), encoding="utf-8")
    return str(path)


def tiny_run(corpus, output_dir, **overrides):
    settings = dict(corpus=corpus, output_dir=str(output_dir), preset="tiny",
                    model_overrides={"num_layers": 1}, max_seq_length=32, batch_size=8, steps=3,
                    learning_rate=2e-3, warmup_steps=0, checkpoint_every=1000, log_every=1,
                    shuffle_buffer=64, progress=False)
    settings.update(overrides)
    return PretrainingConfig(**settings)


@pytest.fixture(scope="module")
def scratch_run(corpus, tmp_path_factory):
    """40 steps from random weights: the source of the later runs, and their baseline."""
    config = tiny_run(corpus, tmp_path_factory.mktemp("scratch") / "run", steps=40,
                      warmup_steps=4, checkpoint_every=40)
    run_pretraining(config)
    return config


def randomize(model, seed):
    """Non-trivial values everywhere (transformers zero-initializes biases, ones LayerNorm)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model


@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("hf")
    randomize(transformers.ElectraForPreTraining(transformers.ElectraConfig(**HF_DISCRIMINATOR)),
              0).save_pretrained(base / "discriminator")
    randomize(transformers.ElectraForMaskedLM(transformers.ElectraConfig(**HF_GENERATOR)),
              1).save_pretrained(base / "generator")
    return str(base / "discriminator"), str(base / "generator")


def init_config(tmp_path, **overrides):
    settings = dict(corpus="unused", output_dir=str(tmp_path / "run"), preset="tiny",
                    max_seq_length=32, generator_width=0.25)
    settings.update(overrides)
    return PretrainingConfig(**settings)


def assert_same_weights(model, source, kind, skip=()):
    """Every weight of `model` equals `source`'s (slot by slot), except the variables in `skip`."""
    values = {slot.names: slot.variable.numpy() for slot in model_slots(source, kind)}
    slots = [slot for slot in model_slots(model, kind) if slot.variable.ref() not in skip]
    assert slots and len(slots) == len(values) - len(skip)
    for slot in slots:
        np.testing.assert_array_equal(slot.variable.numpy(), values[slot.names],
                                      err_msg=str(slot.names))


def assert_tied(pretrainer):
    """The generator's embedding tables are the discriminator's variables."""
    ours = [slot.variable for slot in embedding_slots(pretrainer.generator.encoder.embedding_layer)]
    theirs = [slot.variable for slot in
              embedding_slots(pretrainer.discriminator.encoder.embedding_layer)]
    assert all(a is b for a, b in zip(ours, theirs))
    return {variable.ref() for variable in theirs}


def test_hugging_face_pair_step_zero_weights_are_the_sources(hf_pair, tmp_path):
    discriminator_path, generator_path = hf_pair
    config = init_config(tmp_path, init_from=discriminator_path,
                         init_generator_from=generator_path)
    pretrainer = build_initialized_pretrainer(config, ElectraTokenizer())
    assert_same_weights(pretrainer.discriminator,
                        ElectraDiscriminator.from_huggingface(discriminator_path), "discriminator")
    shared = assert_tied(pretrainer)
    assert_same_weights(pretrainer.generator, ElectraGenerator.from_huggingface(generator_path),
                        "generator", skip=shared)
    # Checked against torch directly too: the word table and the generator's output bias.
    torch_discriminator = transformers.ElectraForPreTraining.from_pretrained(discriminator_path)
    np.testing.assert_array_equal(
        pretrainer.discriminator.encoder.embedding_layer.word_embeddings.numpy(),
        torch_discriminator.electra.embeddings.word_embeddings.weight.detach().numpy())
    torch_generator = transformers.ElectraForMaskedLM.from_pretrained(generator_path)
    np.testing.assert_array_equal(pretrainer.generator.output_bias.numpy(),
                                  torch_generator.generator_lm_head.bias.detach().numpy())
    # The sizes are the checkpoints', not the preset's (tiny: 2 layers, hidden 32).
    assert pretrainer.generator.encoder.hidden_size == 16
    assert pretrainer.discriminator.encoder.num_layers == 1
    assert pretrainer.optimizer is None  # compiled by the run: step 0, fresh schedule

    # Untied: the generator keeps the generator checkpoint's own embeddings.
    untied = build_initialized_pretrainer(dataclasses.replace(config, untied_embeddings=True),
                                          ElectraTokenizer())
    assert_same_weights(untied.generator, ElectraGenerator.from_huggingface(generator_path),
                        "generator")


def test_bert_checkpoint_gets_a_fresh_generator_of_generator_width(tmp_path):
    bert = randomize(transformers.BertModel(transformers.BertConfig(
        vocab_size=VOCAB_SIZE, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, hidden_act="gelu")), 2)
    bert.save_pretrained(tmp_path / "bert")
    config = init_config(tmp_path, init_from=str(tmp_path / "bert"), generator_width=0.25)
    pretrainer = build_initialized_pretrainer(config, ElectraTokenizer())
    assert_same_weights(pretrainer.discriminator.encoder,
                        ElectraEncoder.from_huggingface(str(tmp_path / "bert")), "encoder")
    assert_tied(pretrainer)
    generator = pretrainer.generator.encoder
    assert (generator.hidden_size, generator.embedding_size, generator.num_layers) == (8, 32, 1)


def test_electra_tf_run_and_google_checkpoint_step_zero_weights(scratch_run, tmp_path):
    discriminator = ElectraDiscriminator.from_pretrained(
        os.path.join(scratch_run.output_dir, "discriminator"))
    generator = ElectraGenerator.from_pretrained(os.path.join(scratch_run.output_dir, "generator"))
    # A TF1 checkpoint with google-research/electra's names: electra/ holds the shared
    # embeddings, generator/ the generator's encoder, the heads at the root.
    tensors = {}
    for model, kind, scope in ((discriminator, "discriminator", "electra"),
                               (generator, "generator", "generator")):
        for slot in model_slots(model, kind):
            for name, value in zip(slot.names, slot.split(slot.variable.numpy())):
                if slot.scope == "head":
                    tensors[name] = value
                elif not (scope == "generator" and name.startswith("embeddings/")):
                    tensors[f"{scope}/{name}"] = value
    tensors["global_step"] = np.array(40, np.int64)
    names = sorted(tensors)
    prefix = str(tmp_path / "google" / "model.ckpt-40")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tensors[name] for name in names])
    for source in (scratch_run.output_dir, prefix, str(tmp_path / "google")):
        config = init_config(tmp_path, init_from=source)
        pretrainer = build_initialized_pretrainer(config, ElectraTokenizer())
        assert_same_weights(pretrainer.discriminator, discriminator, "discriminator")
        shared = assert_tied(pretrainer)
        assert_same_weights(pretrainer.generator, generator, "generator", skip=shared)
        assert pretrainer.generator.encoder.hidden_size == generator.encoder.hidden_size == 8


def first_loss(output_dir):
    with open(os.path.join(output_dir, "history.csv")) as f:
        return float(next(csv.DictReader(f))["loss"])


def test_run_from_a_converted_checkpoint_starts_lower_than_from_scratch(scratch_run, tmp_path):
    discriminator_hf = str(tmp_path / "discriminator_hf")
    convert("electra_tf", "huggingface", os.path.join(scratch_run.output_dir, "discriminator"),
            discriminator_hf)
    config = tiny_run(scratch_run.corpus, tmp_path / "continued", init_from=discriminator_hf,
                      init_generator_from=os.path.join(scratch_run.output_dir, "generator_hf"))
    history = run_pretraining(config)
    # Same seed, data, masks and sizes: only the starting weights differ.
    assert first_loss(config.output_dir) < 0.8 * first_loss(scratch_run.output_dir)
    with open(os.path.join(config.output_dir, "history.csv")) as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [1, 2, 3]  # counted from 0
    assert int(history.model.optimizer.iterations.numpy()) == 3


def test_vocabulary_mismatch_is_a_clear_error_before_any_write(hf_pair, corpus, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a"]) + "\n")
    config = tiny_run(corpus, tmp_path / "run", init_from=hf_pair[0], vocab_path=str(vocab))
    with pytest.raises(ValueError) as error:
        run_pretraining(config)
    message = str(error.value)
    assert "30522" in message and "7 tokens" in message
    assert hf_pair[0] in message and str(vocab) in message
    assert not os.path.exists(config.output_dir)


def test_bad_sources_and_sizes_are_clear_errors(hf_pair, tmp_path):
    discriminator_path, generator_path = hf_pair
    with pytest.raises(ValueError, match="does not exist"):
        read_init_sources(init_config(tmp_path, init_from=str(tmp_path / "missing")), VOCAB_SIZE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"\[\]\) is not an electra_tf run"):
        read_init_sources(init_config(tmp_path, init_from=str(tmp_path / "empty")), VOCAB_SIZE)
    with pytest.raises(ValueError, match="is a masked-LM .generator. checkpoint"):
        read_init_sources(init_config(tmp_path, init_from=generator_path), VOCAB_SIZE)
    with pytest.raises(ValueError, match="sets hidden_size=64, but init_from=.* hidden_size=32"):
        read_init_sources(init_config(tmp_path, init_from=discriminator_path,
                                      model_overrides={"hidden_size": 64}), VOCAB_SIZE)
    # A generator whose embeddings are 8 wide cannot share the discriminator's 16-wide table.
    narrow = transformers.ElectraForMaskedLM(transformers.ElectraConfig(
        **dict(HF_GENERATOR, embedding_size=8)))
    narrow.save_pretrained(tmp_path / "narrow")
    config = init_config(tmp_path, init_from=discriminator_path,
                         init_generator_from=str(tmp_path / "narrow"))
    with pytest.raises(ValueError, match=r"Tied embeddings need one table.*\(8, 64, 2\).*"
                                         r"\(16, 64, 2\).*untied_embeddings=True"):
        read_init_sources(config, VOCAB_SIZE)
    untied = read_init_sources(dataclasses.replace(config, untied_embeddings=True), VOCAB_SIZE)
    assert untied.model_configs[1].embedding_size == 8


def test_resuming_takes_precedence_over_init_from(scratch_run, caplog):
    # scratch_run's output_dir holds its step-40 checkpoint: the source is not even read.
    config = dataclasses.replace(scratch_run, init_from="/no/such/checkpoint")
    with caplog.at_level(logging.INFO, logger="electra_tf.pretraining.continued_pretraining"):
        assert read_init_sources(config, VOCAB_SIZE) is None
    assert "takes precedence over init_from='/no/such/checkpoint'" in caplog.text


def test_cli_passes_init_from_to_the_config(monkeypatch):
    from electra_tf.cli import main as cli
    from electra_tf.pretraining import pretrain as pretrain_module

    received = {}

    def fake_pretrain(config, resume):
        received["config"] = config
        return {}

    monkeypatch.setattr(pretrain_module, "pretrain", fake_pretrain)
    monkeypatch.setattr(pretrain_module, "format_summary", lambda summary: "done")
    assert cli.main(["pretrain", "--corpus", "c.txt", "--init-from", "hf/discriminator",
                     "--init-generator-from", "hf/generator"]) == 0
    config = received["config"]
    assert (config.init_from, config.init_generator_from) == ("hf/discriminator", "hf/generator")
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["pretrain"].format_help()
    assert "--init-from DIR" in help_text and "--init-generator-from DIR" in help_text
