"""Structured pruning: remove whole attention heads and feed-forward neurons.

Magnitude pruning (`electra_tf.compression.pruning`) zeroes single weights:
the file compresses better, but every matmul keeps its shape and runs no
faster. Removing whole heads and whole feed-forward neurons makes every
matmul of the block physically smaller (Michel, Levy and Neubig 2019, "Are
Sixteen Heads Really Better than One?"):

    importance = head_and_neuron_importance(classifier, train_data, batches=32)
    smaller = prune_heads_and_neurons(classifier, num_heads=8, intermediate_size=768,
                                      importance=importance)
    # then recover: distil the unpruned model into `smaller` (`ElectraDistiller`,
    # or `electra-tf compress shrink`, which does all three steps)

Every layer keeps the same number of heads and neurons (the ones it ranks
highest), so the smaller model is an ordinary `ElectraEncoder` with
`num_heads` heads of the original `head_size` and a narrower
`intermediate_size`: it saves, loads and exports (SavedModel, TFLite) like
any other.

Importance, per layer:

- "taylor" (Michel et al.): the expected |∂L/∂ξ| of a gate ξ that
  multiplies a head's output (or a neuron's activation), at ξ = 1, with L the
  task model's own loss. A head's output reaches the block only through its
  rows of the attention output kernel W_o, so ∂L/∂ξ_h = Σ (W_o ⊙ ∂L/∂W_o)
  over those rows; a neuron's is the same sum over its row of the
  feed-forward output kernel. The expectation is over batches.
- "magnitude": the Frobenius norm of a head's rows of W_o; for a neuron,
  the norm of its input column times the norm of its output row. No data.
"""

import numpy as np
import tensorflow as tf

from electra_tf.export.encoder_saved_model import find_encoder
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.utils.checks import is_integer

IMPORTANCE_METHODS = ("taylor", "magnitude")


def gate_gradient(kernel, kernel_gradient, groups):
    """∂L/∂ξ for gates on the input rows of a dense kernel, one gate per group of rows.

    Args:
        kernel: (rows, out) the dense layer's kernel W.
        kernel_gradient: (rows, out) ∂L/∂W.
        groups: number of equal groups of consecutive rows (heads: num_heads
            groups of head_size rows; neurons: one row each).

    Returns:
        (groups,) Σ over each group's rows of W ⊙ ∂L/∂W: the derivative of L
        with respect to a factor multiplying that group's inputs.

    >>> gate_gradient(np.array([[1.0], [2.0], [3.0], [4.0]]), np.ones((4, 1)), groups=2)
    array([3., 7.])
    """
    product = np.asarray(kernel, np.float64) * np.asarray(kernel_gradient, np.float64)
    return product.reshape(groups, -1).sum(axis=1)  # (groups,)


def kept_indices(scores, keep):
    """The `keep` highest-scoring indices of a 1-D score array, in their original order.

    >>> kept_indices(np.array([0.5, 0.1, 0.9, 0.3]), 2)
    [0, 2]
    """
    if not 1 <= keep <= len(scores):
        raise ValueError(f"Can keep between 1 and {len(scores)} of these; received keep={keep}.")
    order = np.argsort(-np.asarray(scores), kind="stable")  # highest first; ties: lower index
    return sorted(int(i) for i in order[:keep])


def magnitude_importance(model):
    """{"heads": (L, num_heads), "neurons": (L, intermediate_size)} weight-norm scores."""
    heads, neurons = [], []
    for layer in find_encoder(model).transformer_layers:
        attention_output = layer.attention_output_dense.kernel.numpy()  # (A, H)
        per_head = attention_output.reshape(layer.num_heads, -1)  # (nh, hs·H)
        heads.append(np.linalg.norm(per_head, axis=1))
        inputs = np.linalg.norm(layer.intermediate_dense.kernel.numpy(), axis=0)  # (I,)
        outputs = np.linalg.norm(layer.output_dense.kernel.numpy(), axis=1)  # (I,)
        neurons.append(inputs * outputs)
    return {"heads": np.stack(heads), "neurons": np.stack(neurons)}


def head_and_neuron_importance(model, data=None, batches=32, method="taylor"):
    """How much each head and each feed-forward neuron matters, layer by layer.

    Args:
        model: a task model (`ElectraClassifier`, `ElectraTokenClassifier`,
            `ElectraQuestionAnswering`), with `data` for "taylor".
        data: batched `(features, labels)` in the form the model's `fit`
            takes; the loss is the model's own task loss (dropout off).
        batches: how many batches of `data` to average over.
        method: "taylor" (gradients, see the module docstring) or
            "magnitude" (weights only; `data` unused).

    Returns:
        {"heads": (num_layers, num_heads), "neurons": (num_layers,
        intermediate_size)} float64 scores, higher = more important.

    >>> from electra_tf import ElectraClassifier
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=2, num_heads=2,
    ...                          intermediate_size=16)
    >>> classifier = ElectraClassifier(encoder, num_classes=2)
    >>> features = {"input_word_ids": tf.constant([[2, 5, 3], [2, 7, 3]]),
    ...             "input_mask": tf.ones((2, 3), tf.int32),
    ...             "input_type_ids": tf.zeros((2, 3), tf.int32)}
    >>> data = tf.data.Dataset.from_tensors((features, tf.constant([0, 1])))
    >>> scores = head_and_neuron_importance(classifier, data, batches=1)
    >>> scores["heads"].shape, scores["neurons"].shape
    ((2, 2), (2, 16))
    """
    if method not in IMPORTANCE_METHODS:
        raise ValueError(f"`method` must be one of {IMPORTANCE_METHODS}; received {method!r}.")
    encoder = find_encoder(model)
    if method == "magnitude":
        return magnitude_importance(model)
    if data is None:
        raise ValueError("method='taylor' needs `data`: batched (features, labels) to take the "
                         "task loss's gradients on; received data=None. Or pass "
                         "method='magnitude'.")
    if not is_integer(batches) or batches < 1:
        raise ValueError(f"`batches` must be a positive integer; received {batches!r}.")
    # The task's own loss, as distillation computes its hard term (alpha = 0: labels only).
    from electra_tf.compression.electra_distiller import ElectraDistiller

    task_loss = ElectraDistiller(model, model, alpha=0.0)
    layers = encoder.transformer_layers
    kernels = [k for layer in layers for k in (layer.attention_output_dense.kernel,
                                                layer.output_dense.kernel)]

    @tf.function
    def gradients(features, labels):
        with tf.GradientTape() as tape:
            outputs = task_loss._task_outputs(model, features, labels, training=False)
            loss = task_loss._task_losses(features, labels, outputs, outputs)[2]  # hard loss
        return tape.gradient(loss, kernels)

    heads = np.zeros((len(layers), layers[0].num_heads))
    neurons = np.zeros((len(layers), layers[0].intermediate_size))
    seen = 0
    for features, labels in data.take(batches):
        grads = gradients(features, labels)
        for i, layer in enumerate(layers):
            heads[i] += np.abs(gate_gradient(kernels[2 * i].numpy(), grads[2 * i].numpy(),
                                             layer.num_heads))
            neurons[i] += np.abs(gate_gradient(kernels[2 * i + 1].numpy(),
                                               grads[2 * i + 1].numpy(), layer.intermediate_size))
        seen += 1
    if not seen:
        raise ValueError("`data` gave no batches to compute importance on.")
    return {"heads": heads / seen, "neurons": neurons / seen}


def _check_count(name, value, limit):
    if not is_integer(value) or not 1 <= value <= limit:
        raise ValueError(f"`{name}` must be an integer in [1, {limit}] (the model has {limit}); "
                         f"received {name}={value!r}.")


def prune_heads_and_neurons(model, num_heads, intermediate_size, importance=None):
    """A copy of `model` with `num_heads` heads and `intermediate_size` neurons left per layer.

    Args:
        model: a task model or an `ElectraEncoder`.
        num_heads: heads each layer keeps (of the model's `num_heads`).
        intermediate_size: feed-forward neurons each layer keeps.
        importance: `head_and_neuron_importance`'s result; each layer keeps its
            highest-scoring heads and neurons. None: "magnitude" scores.

    Returns:
        A new model of the same class: embeddings, LayerNorms and task head
        copied; each block's query/key/value columns and attention-output rows
        of the removed heads, and the feed-forward columns/rows of the removed
        neurons, dropped. With nothing removed it computes exactly what
        `model` does.

    >>> from electra_tf import ElectraClassifier
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=2, num_heads=4,
    ...                          intermediate_size=16)
    >>> smaller = prune_heads_and_neurons(ElectraClassifier(encoder, num_classes=2),
    ...                                   num_heads=2, intermediate_size=8)
    >>> smaller.encoder.num_heads, smaller.encoder.head_size, smaller.encoder.intermediate_size
    (2, 2, 8)
    """
    encoder = find_encoder(model)
    layers = encoder.transformer_layers
    _check_count("num_heads", num_heads, encoder.num_heads)
    _check_count("intermediate_size", intermediate_size, encoder.intermediate_size)
    importance = importance or magnitude_importance(model)
    expected = {"heads": (len(layers), encoder.num_heads),
                "neurons": (len(layers), encoder.intermediate_size)}
    for key, shape in expected.items():
        if np.shape(importance.get(key)) != shape:
            raise ValueError(f"`importance[{key!r}]` must have shape {shape} (layers, "
                             f"{'heads' if key == 'heads' else 'neurons'}) for this model; "
                             f"received {np.shape(importance.get(key))}.")
    head_size = layers[0].head_size
    config = encoder.get_config()
    config.update(num_heads=num_heads, intermediate_size=intermediate_size, head_size=head_size,
                  embedding_layer=None, name=f"{encoder.name}_pruned")
    smaller_encoder = ElectraEncoder.from_config(config)
    smaller_encoder.embedding_layer.set_weights(encoder.embedding_layer.get_weights())
    if encoder.embedding_projection is not None:
        smaller_encoder.embedding_projection.set_weights(encoder.embedding_projection.get_weights())
    for i, (layer, smaller) in enumerate(zip(layers, smaller_encoder.transformer_layers)):
        heads = kept_indices(importance["heads"][i], num_heads)
        neurons = kept_indices(importance["neurons"][i], intermediate_size)
        _copy_block(layer, smaller, heads, neurons)
    if isinstance(model, ElectraEncoder):
        return smaller_encoder
    smaller_model = type(model).from_config({**model.get_config(), "encoder": smaller_encoder,
                                             "name": f"{model.name}_pruned"})
    # The task head: every other layer with weights (dense, logits, qa_outputs, ...), by name.
    smaller_layers = {layer.name: layer for layer in smaller_model.layers}
    for layer in model.layers:
        if layer is not encoder and layer.weights:
            smaller_layers[layer.name].set_weights(layer.get_weights())
    return smaller_model


def _copy_block(layer, smaller, heads, neurons):
    """Copies `layer`'s weights into `smaller`, keeping only `heads` and `neurons`."""
    hidden, num_heads, head_size = layer.hidden_size, layer.num_heads, layer.head_size
    qkv_kernel, qkv_bias = layer.qkv_dense.get_weights()  # (H, 3A), (3A,)
    # Columns are [query | key | value], each num_heads blocks of head_size.
    qkv_kernel = qkv_kernel.reshape(hidden, 3, num_heads, head_size)[:, :, heads]
    qkv_bias = qkv_bias.reshape(3, num_heads, head_size)[:, heads]
    smaller.qkv_dense.set_weights([qkv_kernel.reshape(hidden, -1), qkv_bias.reshape(-1)])
    output_kernel, output_bias = layer.attention_output_dense.get_weights()  # (A, H), (H,)
    output_kernel = output_kernel.reshape(num_heads, head_size, hidden)[heads]
    smaller.attention_output_dense.set_weights([output_kernel.reshape(-1, hidden), output_bias])
    smaller.attention_layer_norm.set_weights(layer.attention_layer_norm.get_weights())
    kernel, bias = layer.intermediate_dense.get_weights()  # (H, I), (I,)
    smaller.intermediate_dense.set_weights([kernel[:, neurons], bias[neurons]])
    kernel, bias = layer.output_dense.get_weights()  # (I, H), (H,)
    smaller.output_dense.set_weights([kernel[neurons], bias])
    smaller.output_layer_norm.set_weights(layer.output_layer_norm.get_weights())
