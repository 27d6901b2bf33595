"""Model sizes of the released ELECTRA checkpoints, and a tiny one for tests.

`ElectraConfig` is the one place where sizes live as a dataclass (presets,
CLI, checkpoint conversion); models themselves take flat keyword arguments
and are built from a config by `build_from_preset` / `ElectraConfig.build`.
"""

import dataclasses

UNCASED_VOCAB_SIZE = 30522  # BERT's uncased WordPiece vocabulary, used by every release.


@dataclasses.dataclass(frozen=True)
class ElectraConfig:
    vocab_size: int = UNCASED_VOCAB_SIZE
    hidden_size: int = 256
    num_layers: int = 12
    num_heads: int = 4
    intermediate_size: int = 1024
    embedding_size: int = 128  # < hidden_size for Small: embeddings are projected up.
    max_sequence_length: int = 512
    type_vocab_size: int = 2
    dropout_rate: float = 0.1
    initializer_range: float = 0.02  # BERT's truncated-normal stddev.
    layer_norm_epsilon: float = 1e-12  # as trained; 1e-5/1e-6 changes outputs by ~1e-4.

    @classmethod
    def from_dict(cls, values):
        """Builds a config from a dict, rejecting unknown keys by name."""
        if isinstance(values, cls):
            return values
        if not isinstance(values, dict):
            raise ValueError(
                f"Expected a preset name, ElectraConfig or dict; received {type(values).__name__}."
            )
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"Unknown ELECTRA config keys {unknown}; expected a subset of {sorted(known)}."
            )
        return cls(**values)

    def to_dict(self):
        return dataclasses.asdict(self)

    def build_encoder(self, embedding_layer=None, dtype=None, name=None):
        from electra_tf.models.electra_encoder import ElectraEncoder

        return ElectraEncoder(
            **self.to_dict(), embedding_layer=embedding_layer, dtype=dtype, name=name
        )

    def build(self, model_kind, embedding_layer=None, dtype=None):
        """Builds an "encoder", "discriminator" or "generator" of these sizes."""
        cls = model_class(model_kind)
        if model_kind == "encoder":
            return self.build_encoder(embedding_layer, dtype)
        encoder = self.build_encoder(embedding_layer, dtype, name=f"{model_kind}_encoder")
        return cls(encoder, dtype=dtype)


def model_class(model_kind):
    """The class of an "encoder", "discriminator" or "generator".

    >>> model_class("generator").__name__
    'ElectraGenerator'
    """
    from electra_tf.models.electra_discriminator import ElectraDiscriminator
    from electra_tf.models.electra_encoder import ElectraEncoder
    from electra_tf.models.electra_generator import ElectraGenerator

    classes = {"encoder": ElectraEncoder, "discriminator": ElectraDiscriminator,
               "generator": ElectraGenerator}
    if model_kind not in classes:
        raise ValueError(
            "`model_kind` must be 'encoder', 'discriminator' or 'generator'; "
            f"received {model_kind!r}."
        )
    return classes[model_kind]


def scaled_generator_config(discriminator_config, width_fraction):
    """The generator config the original code derives from the discriminator's.

    google-research/electra scales hidden size, heads and intermediate size by
    `generator_hidden_size` and keeps depth and embedding size (the embeddings
    are shared). The paper's best ratio is 1/4 to 1/2 of the discriminator.

    >>> scaled_generator_config(PRESETS["small"]["discriminator"], 0.25).hidden_size
    64
    """
    if not 0.0 < width_fraction <= 1.0:
        raise ValueError(f"`width_fraction` must be in (0, 1]; received {width_fraction}.")
    config = ElectraConfig.from_dict(discriminator_config)
    return dataclasses.replace(
        config,
        hidden_size=max(1, int(round(config.hidden_size * width_fraction))),
        num_heads=max(1, int(round(config.num_heads * width_fraction))),
        intermediate_size=max(1, int(round(config.intermediate_size * width_fraction))),
    )


_SMALL = ElectraConfig(hidden_size=256, num_heads=4, intermediate_size=1024, embedding_size=128)
_BASE = ElectraConfig(hidden_size=768, num_heads=12, intermediate_size=3072, embedding_size=768)
_LARGE = ElectraConfig(
    hidden_size=1024, num_layers=24, num_heads=16, intermediate_size=4096, embedding_size=1024
)
_TINY = ElectraConfig(
    hidden_size=32,
    num_layers=2,
    num_heads=2,
    intermediate_size=64,
    embedding_size=16,
    max_sequence_length=128,
)

PRESETS = {
    # google/electra-small-*: the released Small generator is full width
    # (hidden 256), unlike the paper's 1/4-width one ("small_paper").
    "small": {"discriminator": _SMALL, "generator": _SMALL},
    "small_paper": {"discriminator": _SMALL, "generator": scaled_generator_config(_SMALL, 0.25)},
    # google/electra-base-*: generator hidden 256 (1/3), embeddings 768 shared.
    "base": {
        "discriminator": _BASE,
        "generator": dataclasses.replace(
            _BASE, hidden_size=256, num_heads=4, intermediate_size=1024
        ),
    },
    # google/electra-large-*: generator hidden 256 (1/4), embeddings 1024 shared.
    "large": {
        "discriminator": _LARGE,
        "generator": dataclasses.replace(
            _LARGE, hidden_size=256, num_heads=4, intermediate_size=1024
        ),
    },
    # For tests and the quickstart: real vocabulary, a few hundred thousand weights.
    "tiny": {"discriminator": _TINY, "generator": scaled_generator_config(_TINY, 0.5)},
}


def get_preset(preset, model_kind):
    """Returns the `ElectraConfig` of a preset for "discriminator"/"encoder" or "generator"."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; expected one of {sorted(PRESETS)}.")
    return PRESETS[preset]["generator" if model_kind == "generator" else "discriminator"]


def build_from_preset(preset, model_kind, embedding_layer=None, dtype=None, **overrides):
    """Builds a model of a preset's sizes; `overrides` replace config fields.

    >>> build_from_preset("tiny", "encoder", num_layers=1).num_layers
    1
    """
    config = ElectraConfig.from_dict({**get_preset(preset, model_kind).to_dict(), **overrides})
    return config.build(model_kind, embedding_layer=embedding_layer, dtype=dtype)


def describe_presets(presets):
    """A text table of each preset's sizes and parameter counts (computed, not stored)."""
    rows = [f"{'preset':<12} {'part':<14} {'layers':>6} {'hidden':>6} {'heads':>5} "
            f"{'ffn':>5} {'embed':>5} {'params':>12}"]
    for name, parts in presets.items():
        for part, config in parts.items():
            count = _parameter_count(config, part)
            rows.append(
                f"{name:<12} {part:<14} {config.num_layers:>6} {config.hidden_size:>6} "
                f"{config.num_heads:>5} {config.intermediate_size:>5} "
                f"{config.embedding_size:>5} {count:>12,}"
            )
    return "\n".join(rows)


def _parameter_count(config, part):
    """Parameters of a preset's model, from its sizes alone (no weights are built)."""
    V, H, E, I = config.vocab_size, config.hidden_size, config.embedding_size, config.intermediate_size
    P, T, L = config.max_sequence_length, config.type_vocab_size, config.num_layers
    embeddings = (V + P + T) * E + 2 * E
    projection = (E * H + H) if E != H else 0
    layer = 4 * (H * H + H) + 2 * (H * I) + I + H + 4 * H
    head = (H * H + H + H + 1) if part == "discriminator" else (H * E + E + 2 * E + V)
    return embeddings + projection + L * layer + head
