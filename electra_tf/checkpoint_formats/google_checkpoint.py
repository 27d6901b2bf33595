"""Original google-research/electra TF1 checkpoints → electra_tf weights: the file format.

The TF1 code names variables like `electra/encoder/layer_0/attention/self/query/kernel`
(discriminator encoder), `generator/encoder/...` (generator encoder),
`discriminator_predictions/dense_1/kernel` and `generator_predictions/output_bias`
(heads). The generator shares `electra/embeddings/*` with the discriminator;
checkpoints trained without sharing have `generator/embeddings/*` instead, which
is used when present. Kernels are (in, out), as in Keras: no transposes.
Optimizer slots (`*/adam_m`, `*/adam_v`) and `global_step` are ignored.

This module builds no model: it reads a checkpoint and copies its variables into a model it
is given, built to the sizes the checkpoint was trained with. The model classes build
themselves (`ElectraDiscriminator.from_google_checkpoint(prefix, "small")`, ...).
"""

import tensorflow as tf

from electra_tf.checkpoint_formats.weight_slots import HEAD, assign_slots, model_slots

_IGNORED = ("global_step",)
_OPTIMIZER_SUFFIXES = ("/adam_m", "/adam_v")


def read_google_checkpoint(checkpoint_prefix):
    """(a `tf.train.CheckpointReader`, the names of its model variables) of a TF1 checkpoint.

    Raises:
        ValueError: no checkpoint can be read at `checkpoint_prefix`.
    """
    try:
        reader = tf.train.load_checkpoint(checkpoint_prefix)
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as error:
        raise ValueError(
            f"Cannot read a TF checkpoint at {checkpoint_prefix!r} (expected the prefix "
            f"of `model.ckpt-N.index`/`.data-*` files): {error}"
        ) from error
    names = {
        name
        for name in reader.get_variable_to_shape_map()
        if name not in _IGNORED and not name.endswith(_OPTIMIZER_SUFFIXES)
    }
    return reader, names


def _scoped_names(slots, model_kind, names):
    """Slot → list of full checkpoint names."""
    scope = "generator" if model_kind == "generator" else "electra"
    # Shared embeddings live under electra/ even for the generator.
    embeddings_scope = scope
    if model_kind == "generator" and "generator/embeddings/word_embeddings" not in names:
        embeddings_scope = "electra"

    def full(name, slot_scope):
        if slot_scope == HEAD:
            return name
        if name.startswith("embeddings/"):
            return f"{embeddings_scope}/{name}"
        return f"{scope}/{name}"

    return {id(slot): [full(name, slot.scope) for name in slot.names] for slot in slots}


def assign_google_checkpoint_weights(model, model_kind, checkpoint_prefix, checkpoint):
    """Copies a TF1 checkpoint's variables into `model`, an electra_tf model of `model_kind`.

    Args:
        model: an encoder, discriminator or generator built to the checkpoint's sizes.
        model_kind: "encoder" (the discriminator's encoder), "discriminator" or "generator".
        checkpoint_prefix: e.g. "electra_small/electra_small" or ".../model.ckpt-1000000".
        checkpoint: what `read_google_checkpoint(checkpoint_prefix)` returned.

    Raises:
        ValueError listing missing variables, or naming each variable whose
        shape differs from the model's.

    A tiny checkpoint with the TF1 names (written here with `SaveV2`, as the
    TF1 `Saver` writes them) loads into a model of its sizes:

    >>> import tempfile
    >>> import numpy as np
    >>> import electra_tf
    >>> sizes = dict(vocab_size=30, hidden_size=8, embedding_size=8, num_layers=1,
    ...              num_heads=2, intermediate_size=16, max_sequence_length=16)
    >>> original = electra_tf.ElectraEncoder(**sizes)
    >>> tensors = {f"electra/{name}": value
    ...            for slot in model_slots(original, "encoder")
    ...            for name, value in zip(slot.names, slot.split(slot.variable.numpy()))}
    >>> tensors["global_step"] = np.array(1000, np.int64)  # ignored, as are Adam slots
    >>> names = sorted(tensors)
    >>> names[:3]
    ['electra/embeddings/LayerNorm/beta', 'electra/embeddings/LayerNorm/gamma',
     'electra/embeddings/position_embeddings']
    >>> "electra/encoder/layer_0/attention/self/query/kernel" in names
    True
    >>> prefix = tempfile.mkdtemp() + "/model.ckpt-1000"
    >>> _ = tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
    ...                       tensors=[tensors[name] for name in names])
    >>> encoder = electra_tf.ElectraEncoder(**sizes)
    >>> assign_google_checkpoint_weights(encoder, "encoder", prefix, read_google_checkpoint(prefix))
    >>> all(np.array_equal(a.numpy(), b.numpy())
    ...     for a, b in zip(encoder.weights, original.weights))
    True
    >>> electra_tf.ElectraDiscriminator.from_google_checkpoint(prefix, sizes)
    Traceback (most recent call last):
    ...
    ValueError: The checkpoint '.../model.ckpt-1000' lacks 4 variables needed by a discriminator:
    ['discriminator_predictions/dense/bias', 'discriminator_predictions/dense/kernel', ...
    """
    reader, names = checkpoint
    slots = model_slots(model, model_kind)
    full_names = _scoped_names(slots, model_kind, names)
    missing = sorted(n for slot in slots for n in full_names[id(slot)] if n not in names)
    if missing:
        raise ValueError(
            f"The checkpoint {checkpoint_prefix!r} lacks {len(missing)} variables needed by a "
            f"{model_kind}: {missing}. It holds: {sorted(names)[:20]}…"
        )
    assign_slots(slots, lambda slot: [reader.get_tensor(n) for n in full_names[id(slot)]])
