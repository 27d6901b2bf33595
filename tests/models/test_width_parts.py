"""`electra_tf.width_parts(N)`: inference graphs traced inside it run each transformer block
as N groups of heads and of feed-forward neurons that share no op until their sum, and
compute the encoder's function, padded or padding-free; training and eager calls run as before."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, make_inputs

import electra_tf
from electra_tf import ElectraClassifier, ElectraEncoder, width_parts

HEAD_SIZE = TINY["hidden_size"] // TINY["num_heads"]


def _traced(model, inputs, parts=None, **call):
    function = tf.function(lambda x: model(x, **call))
    if parts is None:
        return function.get_concrete_function(inputs)
    with width_parts(parts):
        return function.get_concrete_function(inputs)


def _group_matmuls(graph, rows, columns):
    """The MatMul ops whose right-hand side is a (rows, columns) matrix."""
    return [op for op in graph.get_operations()
            if op.type == "MatMul" and op.inputs[1].shape.as_list() == [rows, columns]]


def _matmuls_in(concrete, rows, columns):
    """`_group_matmuls` of a traced function's graph and of the branch graphs of its conds."""
    graphs = [concrete.graph] + [function.graph for function in concrete.graph._functions.values()
                                 if hasattr(function, "graph")]
    return [op for graph in graphs for op in _group_matmuls(graph, rows, columns)]


def _ancestors(op):
    seen, stack = set(), [tensor.op for tensor in op.inputs]
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(tensor.op for tensor in current.inputs)
            stack.extend(current.control_inputs)
    return seen


@pytest.mark.parametrize("parts", [2, 3])
@pytest.mark.parametrize("remove_padding", [False, True])
def test_width_parts_compute_the_encoders_function(parts, remove_padding):
    """Padded rows, two segments; 3 parts of a 2-head block: 2 head groups, 3 neuron groups;
    with `remove_padding=True` the groups run on the real tokens only."""
    encoder = ElectraEncoder(**TINY)
    inputs = make_inputs(batch_size=3, seq_length=9, vocab_size=TINY["vocab_size"])
    expected = encoder(inputs, training=False)
    outputs = _traced(encoder, inputs, parts, training=False, remove_padding=remove_padding)(inputs)
    mask = inputs["input_mask"][..., None]  # remove_padding leaves padded positions 0
    np.testing.assert_allclose(outputs["sequence_output"] * mask,
                               expected["sequence_output"] * mask, rtol=0, atol=1e-5)
    np.testing.assert_allclose(outputs["pooled_output"], expected["pooled_output"],
                               rtol=0, atol=1e-5)
    if remove_padding:
        assert _matmuls_in(_traced(encoder, inputs, parts, training=False, remove_padding=True),
                           TINY["hidden_size"], 3 * HEAD_SIZE)


def test_a_task_model_traced_in_width_parts_gives_its_logits():
    classifier = ElectraClassifier(ElectraEncoder(**TINY), num_classes=3)
    inputs = make_inputs(batch_size=2, seq_length=7, vocab_size=TINY["vocab_size"])
    expected = classifier(inputs, training=False)
    np.testing.assert_allclose(_traced(classifier, inputs, 2, training=False)(inputs), expected,
                               rtol=0, atol=1e-5)


def test_bfloat16_in_width_parts_is_as_close_to_float32_as_the_block_in_one():
    encoder = ElectraEncoder(**TINY)
    inputs = make_inputs(batch_size=2, seq_length=8, vocab_size=TINY["vocab_size"])
    half = ElectraEncoder.from_config({**encoder.get_config(), "dtype": "mixed_bfloat16"})
    half(inputs)
    half.set_weights(encoder.get_weights())
    reference = encoder(inputs, training=False)["sequence_output"]

    def error(parts):
        outputs = _traced(half, inputs, parts, training=False)(inputs)["sequence_output"]
        return float(tf.reduce_max(tf.abs(tf.cast(outputs, tf.float32) - reference)))

    whole = error(None)
    assert 0 < error(2) <= 2 * whole + 1e-3, (error(2), whole)


def test_each_group_is_a_chain_of_its_own_until_the_sum():
    """Per block, two (H, 3·hs) projections (one head each) and two (H, I/2) feed-forward
    matmuls; no group's share of the attention output depends on the other group's."""
    encoder = ElectraEncoder(**dict(TINY, intermediate_size=10))  # groups (8, 5): no other shape
    inputs = make_inputs(batch_size=1, seq_length=5, vocab_size=TINY["vocab_size"])
    hidden, layers = TINY["hidden_size"], TINY["num_layers"]
    assert not _matmuls_in(_traced(encoder, inputs, training=False), hidden, 3 * HEAD_SIZE)
    grouped = _traced(encoder, inputs, 2, training=False)
    projections = _matmuls_in(grouped, hidden, 3 * HEAD_SIZE)
    feed_forward = _matmuls_in(grouped, hidden, 5)
    traces = len(projections) // (2 * layers)  # choose_layer_norms may trace the stack twice
    assert traces >= 1 and len(projections) == len(feed_forward) == 2 * layers * traces
    graph = projections[0].graph
    first, second = [op for op in _group_matmuls(graph, HEAD_SIZE, hidden)  # two (hs, H) shares
                     if "transformer_layer_0/" in op.name]
    assert first not in _ancestors(second) and second not in _ancestors(first)


def test_training_and_eager_calls_run_the_block_in_one():
    encoder = ElectraEncoder(**TINY)
    inputs = make_inputs(batch_size=2, seq_length=6, vocab_size=TINY["vocab_size"])
    hidden = TINY["hidden_size"]

    def grouped_matmuls(concrete):
        return len(_matmuls_in(concrete, hidden, 3 * HEAD_SIZE))

    assert grouped_matmuls(_traced(encoder, inputs, 2, training=False)) > 0
    assert grouped_matmuls(_traced(encoder, inputs, 2, training=True)) == 0
    with width_parts(2):  # eager: no graph to run groups at once; the block as one
        eager = encoder(inputs, training=False)["sequence_output"]
    np.testing.assert_array_equal(eager, encoder(inputs, training=False)["sequence_output"])


def test_a_graph_keeps_the_weights_it_was_traced_with_and_a_new_trace_reads_new_ones():
    encoder = ElectraEncoder(**TINY)
    inputs = make_inputs(batch_size=1, seq_length=5, vocab_size=TINY["vocab_size"])
    before = encoder(inputs, training=False)["sequence_output"]
    old = _traced(encoder, inputs, 2, training=False)
    layer = encoder.transformer_layers[0]
    layer.output_dense.kernel.assign(layer.output_dense.kernel * 3.0)
    after = encoder(inputs, training=False)["sequence_output"]
    assert float(tf.reduce_max(tf.abs(after - before))) > 1e-3
    np.testing.assert_allclose(old(inputs)["sequence_output"], before, rtol=0, atol=1e-5)
    new = _traced(encoder, inputs, 2, training=False)
    np.testing.assert_allclose(new(inputs)["sequence_output"], after, rtol=0, atol=1e-5)


@pytest.mark.parametrize("parts", [0, -1, True, 2.0, "2", None])
def test_bad_part_counts_are_refused(parts):
    with pytest.raises(ValueError, match=f"positive integer number of groups; received {parts!r}"):
        with width_parts(parts):
            pass


def test_blocks_nest_and_restore_the_outer_count():
    from electra_tf.layers import transformer_layer

    with width_parts(3):
        with width_parts(2):
            assert transformer_layer._width_parts.value == 2
        assert transformer_layer._width_parts.value == 3
    assert transformer_layer._width_parts.value == 1
    assert electra_tf.width_parts is width_parts
