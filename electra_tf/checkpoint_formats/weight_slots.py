"""Every weight of an electra_tf model, named the way the original TF1 code names it.

Both converters start from this one list. A slot is one of our variables and
the checkpoint name(s) it holds, relative to the encoder's scope
(`electra/` or `generator/`) or, for heads, the checkpoint root:

    embeddings/word_embeddings                        (V, E)
    embeddings/LayerNorm/gamma                        (E,)
    embeddings_project/kernel                         (E, H)   only when E != H
    encoder/layer_3/attention/self/query/kernel  ┐
    encoder/layer_3/attention/self/key/kernel    ├─ one fused (H, 3H) "qkv" kernel
    encoder/layer_3/attention/self/value/kernel  ┘
    discriminator_predictions/dense_1/kernel          (H, 1)
    generator_predictions/output_bias                 (V,)

Kernels are stored (in, out), as in TF1 checkpoints; the Hugging Face
converter transposes to torch's (out, in).
"""

import dataclasses

import numpy as np

ENCODER = "encoder"
HEAD = "head"


@dataclasses.dataclass
class Slot:
    """One variable of ours and the checkpoint names that fill it.

    `names` has one entry, or three (query, key, value) for a fused qkv
    variable, which is split into equal parts along its last axis.
    `scope` says whether the names are under the encoder's scope or at the root.
    """

    variable: object
    names: tuple
    scope: str = ENCODER

    def split(self, value):
        """Our (…, n·k) value → n checkpoint values of (…, k)."""
        return np.split(value, len(self.names), axis=-1)

    def join(self, values):
        """n checkpoint values → our value, concatenated along the last axis."""
        return values[0] if len(values) == 1 else np.concatenate(values, axis=-1)


def _dense_slots(layer, name, scope=ENCODER):
    return [
        Slot(layer.kernel, (f"{name}/kernel",), scope),
        Slot(layer.bias, (f"{name}/bias",), scope),
    ]


def _layer_norm_slots(layer, name, scope=ENCODER):
    return [
        Slot(layer.gamma, (f"{name}/gamma",), scope),
        Slot(layer.beta, (f"{name}/beta",), scope),
    ]


def embedding_slots(embedding_layer):
    return [
        Slot(embedding_layer.word_embeddings, ("embeddings/word_embeddings",)),
        Slot(embedding_layer.position_embeddings, ("embeddings/position_embeddings",)),
        Slot(embedding_layer.token_type_embeddings, ("embeddings/token_type_embeddings",)),
        *_layer_norm_slots(embedding_layer.layer_norm, "embeddings/LayerNorm"),
    ]


def check_published_head_shape(encoder):
    """Raises a ValueError when `encoder`'s heads were removed: the published formats cannot say so.

    Google's checkpoints, transformers' ElectraConfig and keras-hub's
    ElectraBackbone all take each head to be `hidden_size / num_heads` wide;
    a structurally pruned encoder (`prune_heads_and_neurons`) has fewer heads
    of the original width.
    """
    layer = encoder.transformer_layers[0]
    if layer.attention_size != encoder.hidden_size:
        raise ValueError(
            f"This encoder has {encoder.num_heads} heads of width {layer.head_size} (attention "
            f"width {layer.attention_size}, hidden size {encoder.hidden_size}): its heads were "
            "removed by structured pruning, and the published checkpoint formats (Google, "
            "transformers, keras-hub) expect heads of width hidden_size / num_heads. Save it "
            "with save_pretrained, or export it as a SavedModel or TFLite file."
        )


def encoder_slots(encoder):
    """Slots of an `ElectraEncoder`: embeddings, projection, transformer layers.

    >>> import electra_tf
    >>> encoder = electra_tf.ElectraEncoder(vocab_size=30, hidden_size=8, num_layers=1,
    ...                                     num_heads=2, intermediate_size=16)
    >>> slots = encoder_slots(encoder)
    >>> len(slots), slots[0].names, tuple(slots[0].variable.shape)  # 5 embedding + 12 per layer
    (17, ('embeddings/word_embeddings',), (30, 8))
    >>> qkv = slots[5]  # the first layer's fused query/key/value kernel
    >>> qkv.names
    ('encoder/layer_0/attention/self/query/kernel',
     'encoder/layer_0/attention/self/key/kernel',
     'encoder/layer_0/attention/self/value/kernel')
    >>> tuple(qkv.variable.shape), [part.shape for part in qkv.split(qkv.variable.numpy())]
    ((8, 24), [(8, 8), (8, 8), (8, 8)])
    >>> np.array_equal(qkv.join(qkv.split(qkv.variable.numpy())), qkv.variable.numpy())
    True
    """
    check_published_head_shape(encoder)
    slots = embedding_slots(encoder.embedding_layer)
    if encoder.embedding_projection is not None:
        slots += _dense_slots(encoder.embedding_projection, "embeddings_project")
    for i, layer in enumerate(encoder.transformer_layers):
        prefix = f"encoder/layer_{i}"
        qkv = tuple(f"{prefix}/attention/self/{part}" for part in ("query", "key", "value"))
        slots += [
            Slot(layer.qkv_dense.kernel, tuple(f"{n}/kernel" for n in qkv)),
            Slot(layer.qkv_dense.bias, tuple(f"{n}/bias" for n in qkv)),
            *_dense_slots(layer.attention_output_dense, f"{prefix}/attention/output/dense"),
            *_layer_norm_slots(
                layer.attention_layer_norm, f"{prefix}/attention/output/LayerNorm"
            ),
            *_dense_slots(layer.intermediate_dense, f"{prefix}/intermediate/dense"),
            *_dense_slots(layer.output_dense, f"{prefix}/output/dense"),
            *_layer_norm_slots(layer.output_layer_norm, f"{prefix}/output/LayerNorm"),
        ]
    return slots


def head_slots(model, model_kind):
    """Slots of the discriminator's or generator's head (none for a bare encoder)."""
    if model_kind == "discriminator":
        return _dense_slots(model.dense, "discriminator_predictions/dense", HEAD) + _dense_slots(
            model.dense_prediction, "discriminator_predictions/dense_1", HEAD
        )
    if model_kind == "generator":
        return [
            *_dense_slots(model.dense, "generator_predictions/dense", HEAD),
            *_layer_norm_slots(model.layer_norm, "generator_predictions/LayerNorm", HEAD),
            Slot(model.output_bias, ("generator_predictions/output_bias",), HEAD),
        ]
    return []


def model_slots(model, model_kind):
    """All slots of an encoder, discriminator or generator."""
    encoder = model if model_kind == "encoder" else model.encoder
    return encoder_slots(encoder) + head_slots(model, model_kind)


def assign_slots(slots, fetch):
    """Fills every slot from `fetch(slot) -> list of numpy arrays`, checking shapes.

    Nothing is assigned unless every value has the right shape, so a bad
    checkpoint never leaves a model half-loaded.

    Raises:
        ValueError naming each variable whose checkpoint shape differs.
    """
    values, mismatches = [], []
    for slot in slots:
        value = slot.join(fetch(slot))
        expected = tuple(slot.variable.shape)
        if tuple(value.shape) != expected:
            mismatches.append(
                f"{' + '.join(slot.names)}: checkpoint {tuple(value.shape)}, model {expected}"
            )
        values.append(value)
    if mismatches:
        raise ValueError(
            "Checkpoint shapes do not match the model config (is the config the "
            "one the checkpoint was trained with?):\n  " + "\n  ".join(mismatches)
        )
    for slot, value in zip(slots, values):
        slot.variable.assign(value.astype(slot.variable.dtype.as_numpy_dtype))
