"""Every pretraining objective: its loss against hand-computed values, its wiring, and a run of the job.

Objectives: electra, electric, electra_15, replace_mlm, all_tokens_mlm, mlm.
"""

import collections
import csv
import gzip
import math
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, make_inputs, packaged_corpus

from electra_tf.cli.main import build_parser
from electra_tf.models.electra_cloze_generator import ElectraClozeGenerator
from electra_tf.models.electra_discriminator import ElectraDiscriminator
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.models.electra_generator import ElectraGenerator
from electra_tf.pretraining.electra_pretrainer import ElectraPretrainer
from electra_tf.pretraining.electric_pretrainer import ElectricPretrainer
from electra_tf.pretraining.losses import (
    copy_mechanism_lm_loss,
    electric_loss,
    masked_lm_loss,
    replaced_token_detection_loss,
)
from electra_tf.pretraining.masked_lm_pretrainer import MaskedLMPretrainer
from electra_tf.pretraining.replaced_mlm_pretrainer import ReplacedMLMPretrainer
from electra_tf.pretraining.run_pretraining import OBJECTIVES, PretrainingConfig, build_pretrainer, run_pretraining

MASK_ID = 4
SPECIAL = (0, 1, 2, 3, 4)  # [PAD] [UNK] [CLS] [SEP] [MASK] in the tiny vocabulary
SMALL = dict(TINY, hidden_size=4, intermediate_size=8, num_heads=1)  # a 1/2-width generator


def ratio(pair):
    total, count = pair
    return float(total) / float(count)


def softplus(x):
    return math.log1p(math.exp(x))


# === Each loss against numbers worked out by hand ===


def test_mlm_loss_by_hand():
    # softmax([ln 3, 0, 0]) = [3/5, 1/5, 1/5]: -log(3/5) for the first slot, -log(1/5) for the second.
    logits = tf.constant([[[math.log(3.0), 0.0, 0.0], [math.log(3.0), 0.0, 0.0], [9.0, 0.0, 0.0]]])
    pair = masked_lm_loss(logits, tf.constant([[0, 1, 2]]), tf.constant([[1.0, 1.0, 0.0]]))
    assert ratio(pair) == pytest.approx((-math.log(0.6) - math.log(0.2)) / 2, abs=1e-6)


def test_electra_rtd_loss_on_every_real_token_by_hand():
    # BCE of a logit z: label 1 → softplus(-z), label 0 → softplus(z); padding does not count.
    logits = tf.constant([[2.0, -1.0, 0.5, 7.0]])
    pair = replaced_token_detection_loss(logits, tf.constant([[1, 0, 1, 0]]), tf.constant([[1, 1, 1, 0]]))
    assert ratio(pair) == pytest.approx((softplus(-2.0) + softplus(-1.0) + softplus(-0.5)) / 3, abs=1e-6)


def test_electra_15_counts_the_masked_positions_only_by_hand():
    from electra_tf.pretraining.masking import positions_to_mask

    logits = tf.constant([[2.0, -1.0, 0.5, 7.0]])
    labels = tf.constant([[1, 0, 1, 0]])
    weights = positions_to_mask(tf.constant([[2, 1, 0]]), tf.constant([[1.0, 1.0, 0.0]]), 4)
    assert weights.numpy().tolist() == [[0.0, 1.0, 1.0, 0.0]]
    pair = replaced_token_detection_loss(logits, labels, weights)
    assert ratio(pair) == pytest.approx((softplus(-1.0) + softplus(-0.5)) / 2, abs=1e-6)


def test_electric_loss_is_the_nce_posterior_by_hand():
    # P(noise) = k·q / (k·q + (1-k)·exp(-E)); the loss is -log of the right posterior.
    k = 0.2
    energies = [1.0, -2.0, 0.3]
    q = [0.5, 0.25, 0.1]
    labels = [1, 0, 0]

    def p_noise(e, q_t):
        return k * q_t / (k * q_t + (1 - k) * math.exp(-e))

    expected = (-math.log(p_noise(1.0, 0.5)) - math.log(1 - p_noise(-2.0, 0.25))) / 2  # 3rd is padding
    pair = electric_loss(tf.constant([energies]), tf.math.log(tf.constant([q])), tf.constant([labels]),
                         tf.constant([[1, 1, 0]]), k)
    assert ratio(pair) == pytest.approx(expected, abs=1e-6)


def test_electric_loss_gives_no_gradient_to_the_noise():
    log_q = tf.Variable([[-1.0, -2.0]])
    energies = tf.Variable([[0.5, 0.5]])
    with tf.GradientTape() as tape:
        total, _ = electric_loss(energies, log_q, tf.constant([[1, 0]]), tf.constant([[1, 1]]), 0.15)
    grad_q, grad_e = tape.gradient(total, [log_q, energies])
    assert grad_q is None and np.abs(grad_e.numpy()).sum() > 0
    with pytest.raises(ValueError, match="received 1.0"):
        electric_loss(energies, log_q, tf.constant([[1, 0]]), tf.constant([[1, 1]]), 1.0)


def test_all_tokens_mlm_copy_mechanism_by_hand():
    # softmax([0, ln 2, 0]) = [1/4, 1/2, 1/4]; copy logit 0 → D = 1/2.
    logits = tf.constant([[[0.0, math.log(2.0), 0.0]] * 3])
    copy_logits = tf.constant([[0.0, 0.0, math.log(3.0)]])  # D = 3/4 at the third position
    input_ids = tf.constant([[1, 1, 2]])
    targets = tf.constant([[1, 2, 2]])
    # 1: target = input: 1/2·1 + 1/2·1/2 = 3/4.  2: target ≠ input: 1/2·1/4 = 1/8.
    # 3: target = input, D = 3/4: 3/4 + 1/4·1/4 = 13/16.
    pair = copy_mechanism_lm_loss(logits, copy_logits, input_ids, targets, tf.constant([[1.0, 1.0, 1.0]]))
    expected = -(math.log(3 / 4) + math.log(1 / 8) + math.log(13 / 16)) / 3
    assert ratio(pair) == pytest.approx(expected, abs=1e-6)


# === Each pretrainer assembles its loss from the right pieces (recomputed in NumPy) ===


def tiny_encoder(sizes=TINY, embedding_layer=None, name=None):
    return ElectraEncoder(**sizes, embedding_layer=embedding_layer, name=name)


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def nll(logits, ids):
    return -np.take_along_axis(log_softmax(logits), ids[..., None], -1)[..., 0]


def bce(logits, labels):
    return np.log1p(np.exp(-np.abs(logits))) + np.maximum(logits, 0) - logits * labels


def masked_positions(masked, seq_length):
    positions = masked["masked_lm_positions"].numpy()
    weights = masked["masked_lm_weights"].numpy()
    chosen = np.zeros((positions.shape[0], seq_length))
    for row in range(positions.shape[0]):
        chosen[row, positions[row][weights[row] > 0]] = 1.0
    return chosen


def batch():
    inputs = make_inputs(batch_size=3, seq_length=9)
    inputs["input_word_ids"][:, 0] = 2  # [CLS] first, as in every packed example (never masked)
    return {key: tf.constant(value) for key, value in inputs.items()}


@pytest.mark.parametrize("objective", ["electra", "electra_15"])
def test_electra_pretrainer_loss(objective):
    discriminator = ElectraDiscriminator(tiny_encoder())
    generator = ElectraGenerator(tiny_encoder(SMALL, discriminator.encoder.embedding_layer))
    pretrainer = ElectraPretrainer(generator, discriminator, mask_token_id=MASK_ID, special_token_ids=SPECIAL,
                                   objective=objective)
    data = batch()
    out = pretrainer.compute_pretraining_outputs(data, 0, training=False)
    masked = out["masked"]
    mlm = nll(out["generator_logits"].numpy(), masked["masked_lm_ids"].numpy())
    weights = masked["masked_lm_weights"].numpy()
    mask = data["input_mask"].numpy().astype(float)
    rtd_weights = mask if objective == "electra" else masked_positions(masked, 9)
    rtd = bce(out["discriminator_logits"].numpy(), out["rtd_labels"].numpy())
    expected = (mlm * weights).sum() / weights.sum() + 50.0 * (rtd * rtd_weights).sum() / rtd_weights.sum()
    assert float(out["loss"]) == pytest.approx(expected, rel=1e-5)
    if objective == "electra_15":
        assert rtd_weights.sum() == weights.sum() < mask.sum()


def test_mlm_pretrainer_loss():
    pretrainer = MaskedLMPretrainer(ElectraGenerator(tiny_encoder()), mask_token_id=MASK_ID,
                                    special_token_ids=SPECIAL)
    out = pretrainer.compute_pretraining_outputs(batch(), 0, training=False)
    masked = out["masked"]
    weights = masked["masked_lm_weights"].numpy()
    expected = (nll(out["logits"].numpy(), masked["masked_lm_ids"].numpy()) * weights).sum() / weights.sum()
    assert float(out["loss"]) == pytest.approx(expected, rel=1e-5)


def electric_pretrainer(**kwargs):
    discriminator = ElectraDiscriminator(tiny_encoder())
    tied = discriminator.encoder.embedding_layer
    cloze = ElectraClozeGenerator(tiny_encoder(SMALL, tied), tiny_encoder(SMALL, tied))
    return ElectricPretrainer(cloze, discriminator, mask_token_id=MASK_ID, special_token_ids=SPECIAL, **kwargs)


def test_electric_pretrainer_loss():
    pretrainer = electric_pretrainer(mask_rate=0.3)
    data = batch()
    out = pretrainer.compute_pretraining_outputs(data, 0, training=False)
    ids = data["input_word_ids"].numpy()
    mask = data["input_mask"].numpy().astype(float)
    cloze_logits = pretrainer.generator(data)["logits"].numpy()  # (B, T, V), no masking
    candidates = mask * ~np.isin(ids, SPECIAL)
    cloze = (nll(cloze_logits, ids) * candidates).sum() / candidates.sum()

    chosen = masked_positions(out["masked"], 9)
    corrupted = ids.copy()
    positions = out["masked"]["masked_lm_positions"].numpy()
    sampled = out["sampled_ids"].numpy()
    for row in range(3):
        for slot, position in enumerate(positions[row]):
            if out["masked"]["masked_lm_weights"].numpy()[row, slot] > 0:
                corrupted[row, position] = sampled[row, slot]
    energies = pretrainer.discriminator({**data, "input_word_ids": tf.constant(corrupted)})["logits"].numpy()
    log_q = -nll(cloze_logits, corrupted)
    logits = energies + log_q + math.log(0.3 / 0.7)
    nce = (bce(logits, chosen) * mask).sum() / mask.sum()  # every chosen position is noise
    assert out["rtd_labels"].numpy().tolist() == chosen.astype(int).tolist()
    assert float(out["loss"]) == pytest.approx(cloze + 50.0 * nce, rel=1e-5)


def test_cloze_generator_never_sees_the_token_it_predicts():
    cloze = ElectraClozeGenerator(tiny_encoder(SMALL), tiny_encoder(SMALL))
    data = batch()
    ids = data["input_word_ids"].numpy()
    before = cloze(data)["logits"].numpy()
    changed = ids.copy()
    changed[0, 4] = (ids[0, 4] % 30) + 5
    after = cloze({**data, "input_word_ids": tf.constant(changed)})["logits"].numpy()
    np.testing.assert_allclose(after[0, 4], before[0, 4], atol=1e-5)  # x_4 hidden from position 4
    assert np.abs(after[0, 3] - before[0, 3]).max() > 1e-4  # but seen by its neighbours
    assert np.abs(after[0, 5] - before[0, 5]).max() > 1e-4


@pytest.mark.parametrize("objective", ["replace_mlm", "all_tokens_mlm"])
def test_replaced_mlm_pretrainer_loss(objective):
    model = ElectraGenerator(tiny_encoder())
    generator = ElectraGenerator(tiny_encoder(SMALL, model.encoder.embedding_layer))
    pretrainer = ReplacedMLMPretrainer(generator, model, objective=objective, mask_token_id=MASK_ID,
                                       special_token_ids=SPECIAL)
    data = batch()
    out = pretrainer.compute_pretraining_outputs(data, 0, training=False)
    masked = out["masked"]
    weights = masked["masked_lm_weights"].numpy()
    generator_loss = (nll(out["generator_logits"].numpy(), masked["masked_lm_ids"].numpy()) * weights).sum() \
        / weights.sum()
    corrupted = out["corrupted_ids"].numpy()
    ids = data["input_word_ids"].numpy()
    chosen = masked_positions(masked, 9)
    # The model's input: the original text with samples at the chosen positions, no [MASK].
    assert (corrupted[chosen == 0] == ids[chosen == 0]).all()
    model_out = model({**data, "input_word_ids": tf.constant(corrupted)})
    logits = model_out["logits"].numpy()  # (B, T, V)
    if objective == "replace_mlm":
        per_token = nll(logits, ids)
        model_loss = (per_token * chosen).sum() / chosen.sum()
    else:
        copy = 1 / (1 + np.exp(-pretrainer.copy_head(model_out["sequence_output"]).numpy()[..., 0]))
        probs = np.exp(log_softmax(logits))
        p = copy * (ids == corrupted) + (1 - copy) * np.take_along_axis(probs, ids[..., None], -1)[..., 0]
        mask = data["input_mask"].numpy()
        model_loss = (-np.log(p) * mask).sum() / mask.sum()
    assert float(out["loss"]) == pytest.approx(generator_loss + model_loss, rel=1e-5)


def test_unknown_objectives_are_refused():
    with pytest.raises(ValueError, match="received 'electra_25'"):
        PretrainingConfig(objective="electra_25")
    with pytest.raises(ValueError, match="received 'mlm'"):
        ReplacedMLMPretrainer(ElectraGenerator(tiny_encoder()), ElectraGenerator(tiny_encoder()),
                              objective="mlm")


def test_pretrainer_configs_round_trip():
    pretrainer = electric_pretrainer()
    clone = ElectricPretrainer.from_config(pretrainer.get_config())
    assert clone.tied_embeddings
    assert clone.generator.right_to_left.embedding_layer is clone.generator.left_to_right.embedding_layer
    model = ElectraGenerator(tiny_encoder())
    replaced = ReplacedMLMPretrainer(ElectraGenerator(tiny_encoder(SMALL, model.encoder.embedding_layer)), model,
                                     objective="all_tokens_mlm")
    clone = ReplacedMLMPretrainer.from_config(replaced.get_config())
    assert clone.generator.encoder.embedding_layer is clone.model.encoder.embedding_layer
    assert clone.objective == "all_tokens_mlm" and clone.copy_head is not None


# === The CLI and the job: every objective through run_pretraining (fit, checkpoints, resume, logs) ===


def test_cli_flags_reach_the_config():
    args = build_parser().parse_args(["pretrain", "--corpus", "c.txt", "--objective", "electric",
                                      "--untied-embeddings", "--generator-width", "0.5"])
    assert (args.objective, args.untied_embeddings, args.generator_width) == ("electric", True, 0.5)
    for objective in OBJECTIVES:
        assert build_parser().parse_args(["pretrain", "--corpus", "c", "--objective", objective]).objective \
            == objective


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """300 lines of Persuasion and a vocabulary of its 120 commonest words: fast steps."""
    directory = tmp_path_factory.mktemp("objectives")
    with gzip.open(packaged_corpus("held_out"), "rt", encoding="utf-8") as f:
        text = "".join(line for _, line in zip(range(300), f))
    (directory / "corpus.txt").write_text(text, encoding="utf-8")
    words = collections.Counter(re.findall(r"[a-z]+", text.lower()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w for w, _ in words.most_common(120)]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return str(directory / "corpus.txt"), str(directory / "vocab.txt")


def job(small_corpus, output_dir, objective, steps, **overrides):
    corpus, vocab = small_corpus
    return PretrainingConfig(
        corpus=corpus, vocab_path=vocab, output_dir=str(output_dir), preset="tiny", objective=objective,
        model_overrides={"num_layers": 1}, max_seq_length=16, batch_size=2, steps=steps, warmup_steps=1,
        checkpoint_every=1, log_every=1, shuffle_buffer=8, progress=False, **overrides)


@pytest.mark.parametrize("objective, untied, kind, kept", [
    ("electra", False, ElectraPretrainer, ElectraDiscriminator),
    ("electra_15", True, ElectraPretrainer, ElectraDiscriminator),
    ("electric", False, ElectricPretrainer, ElectraDiscriminator),
    ("replace_mlm", True, ReplacedMLMPretrainer, ElectraGenerator),
    ("all_tokens_mlm", False, ReplacedMLMPretrainer, ElectraGenerator),
    ("mlm", False, MaskedLMPretrainer, ElectraGenerator),
])
def test_the_job_builds_each_objective(objective, untied, kind, kept):
    config = PretrainingConfig(preset="tiny", objective=objective, untied_embeddings=untied, generator_width=0.5,
                               model_overrides={"num_layers": 1})
    pretrainer = build_pretrainer(config, 37, SPECIAL, MASK_ID)
    assert type(pretrainer) is kind
    assert isinstance(pretrainer.encoder, ElectraEncoder) and pretrainer.encoder.hidden_size == 32
    if objective != "mlm":
        assert pretrainer.objective == objective
        assert isinstance(pretrainer.model if kind is ReplacedMLMPretrainer else pretrainer.discriminator, kept)
        generator_encoder = pretrainer.generator.encoder
        assert generator_encoder.hidden_size == 16  # --generator-width 0.5
        assert (generator_encoder.embedding_layer is pretrainer.encoder.embedding_layer) is not untied


# The job for the two new kinds of pretrainer (ElectraPretrainer's is tested in test_run_pretraining).
EXPECTED_OUTPUTS = {
    "electric": ("discriminator", "cloze_generator"),
    "all_tokens_mlm": ("masked_lm", "generator"),
}


@pytest.mark.parametrize("objective", sorted(EXPECTED_OUTPUTS))
def test_objective_trains_through_the_job(small_corpus, tmp_path, objective):
    out = tmp_path / "run"
    # The generator studies' options ride along: untied embeddings, another width.
    # Electric also runs under mixed_float16 (energies and log q in float32, the towers in float16).
    electric = objective == "electric"
    history = run_pretraining(job(small_corpus, out, objective, 1, untied_embeddings=electric,
                                  generator_width=0.5, mixed_precision=electric))
    assert np.isfinite(history.history["loss"]).all()
    for name in EXPECTED_OUTPUTS[objective] + ("checkpoints", "logs"):
        assert (out / name).is_dir(), name
    assert any("events" in name for _, _, names in os.walk(out / "logs") for name in names)  # TensorBoard
    if objective == "electric":  # resume: the same job asked for one more step continues at step 2
        run_pretraining(job(small_corpus, out, objective, 2, untied_embeddings=True, generator_width=0.5,
                            mixed_precision=True))
        with open(out / "history.csv") as f:
            assert [int(row["step"]) for row in csv.DictReader(f)] == [1, 2]
