"""best_spans (in the graph) against brute force; context_mask."""


import numpy as np
import pytest
import tensorflow as tf

from electra_tf.tasks.squad_postprocessing import best_spans, context_mask


def brute_force(start_scores, end_scores, mask, max_answer_length, starts=None):
    """Best (start, end, score) by enumerating every allowed pair, in numpy."""
    best = (0, 0, -np.inf)
    if starts is None:  # simple head: every position may start
        rows = [(i, i, start_scores[i], end_scores) for i in range(len(mask))]
    else:  # electra head: beam row k starts at starts[k]
        rows = [(k, starts[k], start_scores[starts[k]], end_scores[k]) for k in range(len(starts))]
    for _, start, start_score, ends in rows:
        for end in range(len(mask)):
            if mask[start] and mask[end] and start <= end < start + max_answer_length:
                score = start_score + ends[end]
                if score > best[2]:
                    best = (start, end, score)
    return best


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.mark.parametrize("max_answer_length", [1, 3, 30])
def test_simple_head_matches_brute_force(max_answer_length):
    rng = np.random.default_rng(max_answer_length)
    start, end = rng.normal(size=(2, 6, 11)).astype(np.float32)
    mask = rng.random((6, 11)) < 0.6
    mask[0] = False  # a row without context: score -inf
    got = [t.numpy() for t in best_spans(start, end, mask, max_answer_length)]
    for row in range(6):
        expected = brute_force(start[row], end[row], mask[row], max_answer_length)
        if row == 0:
            assert got[2][row] == -np.inf
            continue
        assert (got[0][row], got[1][row]) == expected[:2]
        np.testing.assert_allclose(got[2][row], expected[2], rtol=1e-6)
        assert got[0][row] <= got[1][row] < got[0][row] + max_answer_length


@pytest.mark.parametrize("max_answer_length", [2, 30])
def test_electra_head_beam_matches_brute_force(max_answer_length):
    rng = np.random.default_rng(7)
    batch, beam, seq = 5, 3, 9
    start = rng.normal(size=(batch, seq)).astype(np.float32)
    end = rng.normal(size=(batch, beam, seq)).astype(np.float32)
    top = np.stack([rng.permutation(seq)[:beam] for _ in range(batch)]).astype(np.int32)
    mask = rng.random((batch, seq)) < 0.7
    got = [t.numpy() for t in best_spans(start, end, mask, max_answer_length, start_top_index=top)]
    for row in range(batch):
        expected = brute_force(log_softmax(start[row]), log_softmax(end[row]), mask[row],
                               max_answer_length, starts=top[row])
        assert (got[0][row], got[1][row]) == expected[:2]
        np.testing.assert_allclose(got[2][row], expected[2], rtol=1e-5)


def test_best_spans_runs_in_a_traced_function_with_unknown_shapes():
    spans = tf.function(lambda s, e, m: best_spans(s, e, m, 30), input_signature=[
        tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None, None], tf.float32),
        tf.TensorSpec([None, None], tf.bool)])
    start = np.array([[9.0, 0, 1, 0]], np.float32)  # [CLS] has the largest logit, not context
    end = np.array([[9.0, 0, 0, 2]], np.float32)
    got = [t.numpy().tolist() for t in spans(start, end, np.array([[False, True, True, True]]))]
    assert got == [[2], [3], [3.0]]


def test_end_logits_of_the_electra_head_need_the_beam():
    with pytest.raises(ValueError, match="start_top_index"):
        best_spans(tf.zeros([1, 4]), tf.zeros([1, 2, 4]), tf.ones([1, 4], tf.bool))


def test_context_mask_leaves_out_question_specials_and_padding():
    inputs = {"input_word_ids": [[101, 5, 102, 7, 8, 102, 0, 0]],
              "input_mask": [[1, 1, 1, 1, 1, 1, 0, 0]],
              "input_type_ids": [[0, 0, 0, 1, 1, 1, 0, 0]]}
    assert context_mask(inputs).numpy().astype(int).tolist() == [[0, 0, 0, 1, 1, 0, 0, 0]]
