"""Original google-research/electra TF1 checkpoints → electra_tf models, by function.

The file format (the TF1 names, reading, copying) is
`electra_tf.checkpoint_formats.google_checkpoint`; the model classes build themselves from it
(`ElectraDiscriminator.from_google_checkpoint("electra_small/electra_small", "small")`). This
module adds what needs the classes: `load_google_checkpoint(prefix, config, model_kind)`, which
picks the class, and `load_google_pretraining_checkpoint`, which ties the two halves.

>>> load_google_checkpoint("no/such/model.ckpt", "tiny", "encoder")
Traceback (most recent call last):
...
ValueError: Cannot read a TF checkpoint at 'no/such/model.ckpt' (expected the prefix of ...
"""

from electra_tf.checkpoint_formats.google_checkpoint import (  # noqa: F401  (old homes)
    read_google_checkpoint,
    read_google_checkpoint as _read_checkpoint,  # its old name (continued_pretraining)
)
from electra_tf.checkpoint_formats.weight_slots import model_slots
from electra_tf.models.presets import get_preset, model_class


def load_google_checkpoint(checkpoint_prefix, config, model_kind):
    """Builds an electra_tf model from an original TF1 checkpoint:
    `model_class(model_kind).from_google_checkpoint(checkpoint_prefix, config)`.

    Args:
        checkpoint_prefix: e.g. "electra_small/electra_small" or ".../model.ckpt-1000000".
        config: a preset name ("small", "base", "large", …), an `ElectraConfig`
            or a dict of its fields, for the part being loaded (the generator's
            sizes for a generator).
        model_kind: "encoder" (the discriminator's encoder), "discriminator" or "generator".

    Raises:
        ValueError listing missing variables, or naming each variable whose
        shape differs from the config.
    """
    return model_class(model_kind).from_google_checkpoint(checkpoint_prefix, config)


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
