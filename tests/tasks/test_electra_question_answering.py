"""ElectraQuestionAnswering: both heads' outputs, masking, loss, config and save round trips."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import TINY, make_inputs
from electra_tf import ElectraEncoder, ElectraQuestionAnswering
from electra_tf.tasks.electra_question_answering import MASK_PENALTY, question_answering_loss


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    return {head: ElectraQuestionAnswering(ElectraEncoder(**TINY), head=head, beam_size=3,
                                           head_hidden_size=6)
            for head in ("huggingface", "electra")}


def test_huggingface_head_is_one_dense_on_the_sequence(models):
    model, inputs = models["huggingface"], make_inputs(3, 9)
    outputs = model(inputs)
    sequence = model.encoder(inputs)["sequence_output"]
    expected = np.einsum("bth,hk->btk", sequence, model.qa_outputs.kernel) + model.qa_outputs.bias
    np.testing.assert_allclose(outputs["start_logits"], expected[..., 0], atol=1e-5)
    np.testing.assert_allclose(outputs["end_logits"], expected[..., 1], atol=1e-5)
    assert set(outputs) == {"start_logits", "end_logits"}


def test_electra_head_masks_starts_to_context_and_cls(models):
    model, inputs = models["electra"], make_inputs(3, 9)
    outputs = model(inputs)
    allowed = (inputs["input_mask"] * inputs["input_type_ids"]).astype(bool)
    allowed[:, 0] = True  # [CLS]: no answer
    start = outputs["start_logits"].numpy()
    assert np.all(start[~allowed] < -MASK_PENALTY / 2) and np.all(start[allowed] > -50)
    # The beam is the top starts, each with end logits over the sequence, masked the same way.
    top = outputs["start_top_index"].numpy()
    assert top.shape == (3, 3) and outputs["end_logits"].shape == (3, 3, 9)
    np.testing.assert_array_equal(top, np.argsort(-start, axis=1, kind="stable")[:, :3])
    assert np.all(outputs["end_logits"].numpy()[~np.repeat(allowed[:, None], 3, 1)] < -500)
    assert outputs["impossible_logits"].shape == (3,)


def test_electra_head_end_logits_follow_the_start_they_are_given(models):
    model, inputs = models["electra"], make_inputs(3, 9)
    beam = model(inputs)
    top = beam["start_top_index"].numpy()
    for k in range(3):  # conditioning on the k-th beam start reproduces its row
        given = model(inputs, start_positions=top[:, k])
        np.testing.assert_allclose(given["end_logits"], beam["end_logits"][:, k], atol=1e-4)
    other = model(inputs, start_positions=(top[:, 0] + 1) % 9)["end_logits"].numpy()
    assert not np.allclose(other, beam["end_logits"][:, 0])


@pytest.mark.parametrize("head", ["huggingface", "electra"])
def test_remove_padding_gives_the_same_logits_where_answers_can_be(models, head):
    model, inputs = models[head], make_inputs(3, 9)  # rows of 9, 7 and 5 real tokens
    padded, packed = model(inputs), model(inputs, remove_padding=True)
    real = inputs["input_mask"].astype(bool)
    np.testing.assert_allclose(packed["start_logits"].numpy()[real],
                               padded["start_logits"].numpy()[real], atol=1e-4)
    if head == "electra":
        # The beam agrees on every start an answer can have (masked starts tie at
        # the penalty, in either order), and so do those starts' end logits.
        top = padded["start_top_index"].numpy()
        can_start = np.take_along_axis(padded["start_logits"].numpy(), top, 1) > -MASK_PENALTY / 2
        assert can_start.sum() >= 3
        np.testing.assert_array_equal(packed["start_top_index"].numpy()[can_start], top[can_start])
        ends = can_start[..., None] & real[:, None]  # (B, K, T)
        np.testing.assert_allclose(packed["end_logits"].numpy()[ends],
                                   padded["end_logits"].numpy()[ends], atol=1e-4)
        np.testing.assert_allclose(packed["impossible_logits"], padded["impossible_logits"],
                                   atol=1e-4)
    else:
        np.testing.assert_allclose(packed["end_logits"].numpy()[real],
                                   padded["end_logits"].numpy()[real], atol=1e-4)


def test_loss_is_mean_of_start_and_end_plus_half_answerability():
    logits = np.log(np.array([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]], np.float32))
    outputs = {"start_logits": logits, "end_logits": logits[::-1],
               "impossible_logits": np.array([0.0, 2.0], np.float32)}
    start, end, impossible = np.array([1, 0]), np.array([2, 1]), np.array([0, 1])
    start_ce = -np.log([0.6, 0.5]).mean()
    end_ce = -np.log([0.25, 0.6]).mean()
    answerable_ce = np.mean([np.log(2.0), np.log1p(np.exp(-2.0))])
    got = question_answering_loss(outputs, start, end, impossible).numpy()
    np.testing.assert_allclose(got, (start_ce + end_ce) / 2 + 0.5 * answerable_ce, rtol=1e-5)
    del outputs["impossible_logits"]
    np.testing.assert_allclose(question_answering_loss(outputs, start, end).numpy(),
                               (start_ce + end_ce) / 2, rtol=1e-5)


@pytest.mark.parametrize("head", ["huggingface", "electra"])
def test_config_and_save_pretrained_round_trip(models, head, tmp_path):
    model, inputs = models[head], make_inputs(2, 8)
    config = model.get_config()
    again = ElectraQuestionAnswering.from_config(config)
    assert again.get_config() == config
    model.save_pretrained(str(tmp_path / head))
    loaded = ElectraQuestionAnswering.from_pretrained(str(tmp_path / head))
    for name, value in model(inputs).items():
        np.testing.assert_allclose(loaded(inputs)[name], value, atol=1e-6)


@pytest.mark.parametrize("head", ["huggingface", "electra"])
def test_float32_logits_under_mixed_precision(head):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = ElectraQuestionAnswering(ElectraEncoder(**TINY), head=head, beam_size=2,
                                         head_hidden_size=4)
        inputs = make_inputs(2, 8)
        outputs = model(inputs)
        labels = {"start_positions": np.array([4, 5]), "end_positions": np.array([6, 5]),
                  "is_impossible": np.array([0, 0])}
        if head == "electra":  # training under loss scaling (the other head's loss is simpler)
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
            history = model.fit(inputs, labels, epochs=2, verbose=0).history
            assert type(model.optimizer).__name__.startswith("LossScaleOptimizer")
            assert np.all(np.isfinite(history["loss"]))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for name, value in outputs.items():
        expected = tf.int32 if name == "start_top_index" else tf.float32
        assert value.dtype == expected, name


def test_simple_is_a_deprecated_name_of_the_huggingface_head(models):
    with pytest.deprecated_call(match="head='huggingface'"):
        model = ElectraQuestionAnswering(ElectraEncoder(**TINY), head="simple")
    assert model.head == "huggingface"
    # A config saved by an earlier version (head "simple") still loads.
    config = {**models["huggingface"].get_config(), "head": "simple"}
    assert ElectraQuestionAnswering.from_config(config).head == "huggingface"


def test_bad_arguments_are_rejected(models):
    with pytest.raises(ValueError, match="`head` must be one of"):
        ElectraQuestionAnswering(ElectraEncoder(**TINY), head="xlnet")
    with pytest.raises(ValueError, match="`beam_size` must be an integer >= 1"):
        ElectraQuestionAnswering(ElectraEncoder(**TINY), head="electra", beam_size=0)
    with pytest.raises(ValueError, match="received Dense"):
        ElectraQuestionAnswering(keras.layers.Dense(2))
    with pytest.raises(ValueError, match="computes its own loss"):
        models["huggingface"].compile(loss="mse")
    model = models["huggingface"]
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="start_positions.*received \\['labels'\\]"):
        model.fit(make_inputs(2, 8), {"labels": np.zeros(2)}, verbose=0)
