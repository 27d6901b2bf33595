"""Original google-research/electra TF1 checkpoints → electra_tf.

The TF1 code names variables like `electra/encoder/layer_0/attention/self/query/kernel`
(discriminator encoder), `generator/encoder/...` (generator encoder),
`discriminator_predictions/dense_1/kernel` and `generator_predictions/output_bias`
(heads). The generator shares `electra/embeddings/*` with the discriminator;
checkpoints trained without sharing have `generator/embeddings/*` instead, which
is used when present. Kernels are (in, out), as in Keras: no transposes.
Optimizer slots (`*/adam_m`, `*/adam_v`) and `global_step` are ignored.
"""

import tensorflow as tf

from electra_tf.conversion.weight_slots import HEAD, assign_slots, model_slots
from electra_tf.models.presets import ElectraConfig, get_preset

_IGNORED = ("global_step",)
_OPTIMIZER_SUFFIXES = ("/adam_m", "/adam_v")


def _config(config, model_kind):
    if isinstance(config, str):
        return get_preset(config, model_kind)
    return ElectraConfig.from_dict(config)


def _read_checkpoint(checkpoint_prefix):
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


def load_google_checkpoint(checkpoint_prefix, config, model_kind):
    """Builds an electra_tf model from an original TF1 checkpoint.

    Args:
        checkpoint_prefix: e.g. "electra_small/electra_small" or ".../model.ckpt-1000000".
        config: a preset name ("small", "base", "large", …), an `ElectraConfig`
            or a dict of its fields, for the part being loaded (the generator's
            sizes for a generator).
        model_kind: "encoder" (the discriminator's encoder), "discriminator" or "generator".

    Raises:
        ValueError listing missing variables, or naming each variable whose
        shape differs from the config.

    Example:
        discriminator = ElectraDiscriminator.from_google_checkpoint(
            "electra_small/electra_small", "small")

    A tiny checkpoint with the TF1 names (written here with `SaveV2`, as the
    TF1 `Saver` writes them) loads into a model of its sizes:

    >>> import tempfile
    >>> import numpy as np
    >>> from electra_tf.conversion.weight_slots import model_slots
    >>> sizes = dict(vocab_size=30, hidden_size=8, embedding_size=8, num_layers=1,
    ...              num_heads=2, intermediate_size=16, max_sequence_length=16)
    >>> original = ElectraConfig.from_dict(sizes).build("encoder")
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
    >>> encoder = load_google_checkpoint(prefix, sizes, "encoder")
    >>> all(np.array_equal(a.numpy(), b.numpy())
    ...     for a, b in zip(encoder.weights, original.weights))
    True
    >>> load_google_checkpoint(prefix, sizes, "discriminator")
    Traceback (most recent call last):
    ...
    ValueError: The checkpoint '.../model.ckpt-1000' lacks 4 variables needed by a discriminator:
    ['discriminator_predictions/dense/bias', 'discriminator_predictions/dense/kernel', ...
    """
    reader, names = _read_checkpoint(checkpoint_prefix)
    model = _config(config, model_kind).build(model_kind)
    slots = model_slots(model, model_kind)
    full_names = _scoped_names(slots, model_kind, names)
    missing = sorted(n for slot in slots for n in full_names[id(slot)] if n not in names)
    if missing:
        raise ValueError(
            f"The checkpoint {checkpoint_prefix!r} lacks {len(missing)} variables needed by a "
            f"{model_kind}: {missing}. It holds: {sorted(names)[:20]}…"
        )
    assign_slots(slots, lambda slot: [reader.get_tensor(n) for n in full_names[id(slot)]])
    return model


def load_google_pretraining_checkpoint(checkpoint_prefix, preset):
    """Loads both halves of an original pretraining checkpoint, embeddings tied.

    Returns:
        (generator, discriminator), the generator built on the discriminator's
        `ElectraEmbeddings` as in the original.
    """
    discriminator = load_google_checkpoint(checkpoint_prefix, preset, "discriminator")
    generator = load_google_checkpoint(checkpoint_prefix, preset, "generator")
    tied = get_preset(preset, "generator").build(
        "generator", embedding_layer=discriminator.encoder.embedding_layer
    )
    for target, source in zip(model_slots(tied, "generator"), model_slots(generator, "generator")):
        target.variable.assign(source.variable)
    return tied, discriminator
