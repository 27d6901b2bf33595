"""Continued pretraining: the discriminator and generator start from a checkpoint, not at random.

    config = PretrainingConfig(corpus="corpus/*.txt.gz", init_from="google/electra_small",
                               output_dir="runs/continued")
    run_pretraining(config)

`init_from` (the discriminator, and the generator where the source holds one) is one of
    - an electra_tf run directory (what `electra-tf pretrain` writes: discriminator/, generator/),
      or one electra_tf model directory (`save_pretrained`: a discriminator or an encoder);
    - a Hugging Face directory: `ElectraForPreTraining`, or an encoder (`ElectraModel`,
      `BertModel`, `BertForPreTraining`: a BERT checkpoint) that gets a fresh RTD head;
    - an original google-research/electra TF1 pretraining checkpoint (a checkpoint prefix
      such as "electra_small/electra_small", or its directory): discriminator and generator.
`init_generator_from` (optional) overrides the generator: an electra_tf generator or run
directory, a Hugging Face `ElectraForMaskedLM`/`BertForMaskedLM` or a TF1 checkpoint.
Without a generator source the generator is fresh, `generator_width` of the discriminator.

The sizes come from the sources, not from `preset`: `model_overrides` may change
`dropout_rate` only (another size is a ValueError). Tied embeddings (the default) are the
discriminator source's; a generator source's own embeddings are then not used, and its
embedding size must be the discriminator's. The optimizer, step counter, warmup and
learning-rate schedule start fresh at step 0. An `output_dir` that already holds a
checkpoint of the run resumes from it instead: the sources are then not read.

TF1 checkpoints hold no config: the sizes are read off the variables' shapes and the
heads are `max(1, hidden_size // 64)`, the rule of google-research/electra (4, 12 and
16 heads for Small, Base and Large; the weights do not depend on it).
"""

import dataclasses
import json
import logging
import os

import numpy as np
import tensorflow as tf

from electra_tf.models.presets import ElectraConfig, get_preset, scaled_generator_config
from electra_tf.preprocessing.electra_tokenizer import DEFAULT_VOCAB_PATH

logger = logging.getLogger(__name__)

# Objectives with a separate generator and discriminator that `init_from` fills.
INIT_OBJECTIVES = ("electra", "electra_15")
# The one size `model_overrides` may change when the sizes come from a checkpoint.
_OVERRIDABLE = ("dropout_rate",)
_EXPECTED = (
    "an electra_tf run or model directory (config.json + model.weights.h5, or discriminator/ "
    "and generator/), a Hugging Face directory (config.json + model.safetensors or "
    "pytorch_model.bin) or a google-research/electra TF1 checkpoint (prefix of .index/.data files)"
)


@dataclasses.dataclass
class InitSources:
    """The models a continued run starts from, as read from `init_from`/`init_generator_from`.

    `discriminator` is an `ElectraDiscriminator`, or an `ElectraEncoder` (BERT and other
    encoder checkpoints: the RTD head starts fresh); `generator` an `ElectraGenerator` or
    None (a fresh one). `*_path` name where each came from, for messages;
    `model_configs` the run's (discriminator, generator) sizes (`init_model_configs`).
    """

    discriminator: object
    discriminator_path: str
    generator: object = None
    generator_path: str = None
    model_configs: tuple = None


def encoder_config(model):
    """The `ElectraConfig` of an encoder, discriminator or generator's sizes."""
    encoder = getattr(model, "encoder", model)
    return ElectraConfig(**{field.name: getattr(encoder, field.name)
                            for field in dataclasses.fields(ElectraConfig)})


def _model_kind(model):
    return getattr(model, "model_kind", None)


# --- Reading sources -------------------------------------------------------------------------


def _google_prefix(path):
    """The TF1 checkpoint prefix that `path` names (a prefix or a directory), or None."""
    if tf.io.gfile.exists(path + ".index"):
        return path
    if not os.path.isdir(path):
        return None
    latest = tf.train.latest_checkpoint(path)  # from the directory's `checkpoint` file
    if latest is None:  # none (a download): the prefix of the highest step's .index
        prefixes = [name[:-len(".index")] for name in os.listdir(path) if name.endswith(".index")]
        step = lambda prefix: int(prefix.rsplit("-", 1)[1]) if prefix.rsplit("-", 1)[-1].isdigit() \
            else -1
        latest = os.path.join(path, max(prefixes, key=step)) if prefixes else None
    return latest


def _google_config(shapes, scope):
    """The sizes of a TF1 checkpoint's `scope` ("electra" or "generator") model, from shapes."""
    embeddings = scope if f"{scope}/embeddings/word_embeddings" in shapes else "electra"
    layers = 0
    while f"{scope}/encoder/layer_{layers}/attention/self/query/kernel" in shapes:
        layers += 1
    needed = [f"{embeddings}/embeddings/word_embeddings",
              f"{embeddings}/embeddings/position_embeddings",
              f"{embeddings}/embeddings/token_type_embeddings",
              f"{scope}/encoder/layer_0/intermediate/dense/kernel"]
    if not layers or any(name not in shapes for name in needed):
        return None
    vocab_size, embedding_size = shapes[needed[0]]
    hidden_size = shapes[f"{scope}/encoder/layer_0/attention/self/query/kernel"][1]
    return ElectraConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_layers=layers,
        num_heads=max(1, hidden_size // 64),  # google-research/electra's rule (see above)
        intermediate_size=shapes[needed[3]][1], embedding_size=embedding_size,
        max_sequence_length=shapes[needed[1]][0], type_vocab_size=shapes[needed[2]][0])


def _read_google(prefix, role):
    """The discriminator (or encoder) or generator (None if absent) of a TF1 ELECTRA checkpoint."""
    from electra_tf.conversion.google_checkpoint import _read_checkpoint, load_google_checkpoint

    reader, _ = _read_checkpoint(prefix)
    shapes = {name: tuple(shape) for name, shape in reader.get_variable_to_shape_map().items()}
    discriminator_config = _google_config(shapes, "electra")
    if discriminator_config is None:
        raise ValueError(
            f"The TF1 checkpoint {prefix!r} holds no ELECTRA discriminator (no electra/embeddings "
            f"and electra/encoder/layer_0 variables; it has {sorted(shapes)[:8]}...); expected a "
            "google-research/electra pretraining checkpoint. Google BERT TF1 checkpoints "
            "(bert/...) are not read here: pass a Hugging Face BERT directory instead.")
    if role == "generator":
        generator_config = _google_config(shapes, "generator")
        return generator_config and load_google_checkpoint(prefix, generator_config, "generator")
    kind = "discriminator" if "discriminator_predictions/dense/kernel" in shapes else "encoder"
    return load_google_checkpoint(prefix, discriminator_config, kind)


def _read_source(path, role):
    """(model, its path) for `role` "discriminator" (or encoder) or "generator", or (None, None)
    when `path` is a run/TF1 checkpoint without a generator."""
    from electra_tf.conversion.convert import detect_huggingface_kind
    from electra_tf.conversion.huggingface import load_huggingface
    from electra_tf.models.model_io import load_pretrained

    flag = "init_from" if role == "discriminator" else "init_generator_from"
    path = os.fspath(path)
    if os.path.isdir(os.path.join(path, role)):  # an `electra-tf pretrain` output directory
        return _read_source(os.path.join(path, role), role)
    if role == "generator" and os.path.isdir(os.path.join(path, "discriminator")):
        return None, None  # a run without a generator/ (e.g. Electric)
    prefix = _google_prefix(path)
    if os.path.isfile(os.path.join(path, "config.json")):
        with open(os.path.join(path, "config.json")) as f:
            try:
                raw = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{flag}: {path}/config.json is not valid JSON: {error}") from error
        if isinstance(raw, dict) and "class_name" in raw:  # electra_tf (Keras serialization)
            model = load_pretrained(path)
        else:
            kind = detect_huggingface_kind(path)
            if role == "discriminator" and kind == "generator":
                raise ValueError(
                    f"{flag}={path!r} is a masked-LM (generator) checkpoint; expected a "
                    "discriminator (ElectraForPreTraining) or an encoder. Pass it as "
                    "init_generator_from (--init-generator-from).")
            model = load_huggingface(path, "generator" if role == "generator" else
                                     ("discriminator" if kind == "discriminator" else "encoder"))
    elif prefix is not None:
        model = _read_google(prefix, role)
        return (model, prefix) if model is not None else (None, None)
    elif not os.path.exists(path):
        raise ValueError(f"{flag}={path!r} does not exist; expected {_EXPECTED}.")
    else:
        listing = sorted(os.listdir(path)) if os.path.isdir(path) else "a file"
        raise ValueError(f"{flag}={path!r} ({listing}) is not {_EXPECTED}.")
    wanted = ("generator",) if role == "generator" else ("discriminator", "encoder")
    if _model_kind(model) not in wanted:
        raise ValueError(f"{flag}={path!r} holds a {type(model).__name__}; expected "
                         f"{' or '.join(wanted)}.")
    return model, path


def read_init_sources(config, vocab_size):
    """The `InitSources` of `config.init_from`/`init_generator_from`, checked, or None.

    `vocab_size` is the run's vocabulary's (`config.vocab_path`); the sources'
    must be the same (see `init_model_configs` for every check).

    None when `config.init_from` is None, or when `config.output_dir` already
    holds a checkpoint of this run: resuming takes precedence (logged at INFO).

    Raises:
        ValueError: a source is missing or not a checkpoint this reads (what was
            found and what was expected are named), does not fit the run
            (`init_model_configs`), or the objective has no discriminator and
            generator to fill.
    """
    if config.init_from is None:
        if config.init_generator_from is not None:
            raise ValueError("init_generator_from needs init_from (the discriminator's source); "
                             f"received init_generator_from={config.init_generator_from!r} only.")
        return None
    from electra_tf.pretraining.pretrain import latest_checkpoint

    checkpoint = latest_checkpoint(config.output_dir)
    if checkpoint is not None:
        logger.info("Resuming from %s: its checkpoint takes precedence over init_from=%r.",
                    checkpoint[0], config.init_from)
        return None
    if config.objective not in INIT_OBJECTIVES:
        raise ValueError(f"init_from fills a discriminator and a generator: objective must be one "
                         f"of {INIT_OBJECTIVES}; received {config.objective!r}.")
    discriminator, discriminator_path = _read_source(config.init_from, "discriminator")
    generator, generator_path = _read_source(config.init_generator_from or config.init_from,
                                             "generator") if (
        config.init_generator_from or _has_generator(config.init_from)) else (None, None)
    sources = InitSources(discriminator, discriminator_path, generator, generator_path)
    sources.model_configs = init_model_configs(config, sources, vocab_size)
    return sources


def _has_generator(path):
    """Whether a discriminator source also holds a generator (a run directory or TF1 checkpoint)."""
    path = os.fspath(path)
    return os.path.isdir(os.path.join(path, "generator")) or (
        not os.path.isfile(os.path.join(path, "config.json")) and _google_prefix(path) is not None)


# --- Sizes and checks ------------------------------------------------------------------------


def _vocabulary_name(config):
    return config.vocab_path or f"the packaged uncased vocabulary ({DEFAULT_VOCAB_PATH})"


def init_model_configs(config, sources, vocab_size):
    """(discriminator, generator) `ElectraConfig`s of a run that starts from `sources`.

    Raises:
        ValueError: a source's vocabulary is not the run's (`vocab_size` tokens),
            `model_overrides` changes a size, `max_seq_length` exceeds the source's
            positions, or tied embeddings differ in size between the sources.
    """
    discriminator = encoder_config(sources.discriminator)
    generator = encoder_config(sources.generator) if sources.generator is not None else None
    for name, source, path in (("init_from", discriminator, sources.discriminator_path),
                               ("init_generator_from", generator, sources.generator_path)):
        if source is not None and source.vocab_size != vocab_size:
            raise ValueError(
                f"{name}={path!r} has vocab_size {source.vocab_size}, but the run's vocabulary, "
                f"{_vocabulary_name(config)}, has {vocab_size} tokens. Pass the checkpoint's "
                "vocabulary as vocab_path (--vocab): its vocab.txt.")
    for key, value in config.model_overrides.items():
        if not hasattr(discriminator, key):
            raise ValueError(f"Unknown model_overrides key {key!r}; expected one of "
                             f"{[field.name for field in dataclasses.fields(ElectraConfig)]}.")
        if key not in _OVERRIDABLE and getattr(discriminator, key) != value:
            raise ValueError(
                f"model_overrides sets {key}={value!r}, but "
                f"init_from={sources.discriminator_path!r} "
                f"has {key}={getattr(discriminator, key)!r}: continued pretraining keeps the "
                f"checkpoint's sizes. Drop {key!r} from model_overrides (only {_OVERRIDABLE} may "
                "change).")
    overrides = {key: value for key, value in config.model_overrides.items() if key in _OVERRIDABLE}
    discriminator = dataclasses.replace(discriminator, **overrides)
    if config.max_seq_length > discriminator.max_sequence_length:
        raise ValueError(
            f"max_seq_length={config.max_seq_length} exceeds init_from="
            f"{sources.discriminator_path!r}'s {discriminator.max_sequence_length} positions; "
            f"pass max_seq_length <= {discriminator.max_sequence_length}.")
    if generator is None:
        if config.generator_width is None:
            shared = {key: getattr(discriminator, key) for key in (
                "vocab_size", "embedding_size", "max_sequence_length", "type_vocab_size")}
            generator = dataclasses.replace(get_preset(config.preset, "generator"), **shared)
        else:
            generator = scaled_generator_config(discriminator, config.generator_width)
    generator = dataclasses.replace(generator, **overrides)
    if not config.untied_embeddings:
        fields = ("embedding_size", "max_sequence_length", "type_vocab_size")
        theirs, ours = ([getattr(c, key) for key in fields] for c in (generator, discriminator))
        if theirs != ours:
            raise ValueError(
                f"Tied embeddings need one table, but (embedding_size, max_sequence_length, "
                f"type_vocab_size) is {tuple(theirs)} for init_generator_from="
                f"{sources.generator_path!r} and {tuple(ours)} for init_from="
                f"{sources.discriminator_path!r}. Pass a generator of the discriminator's "
                "embedding size, or untied_embeddings=True (--untied-embeddings).")
    if generator.hidden_size > discriminator.hidden_size:
        logger.warning("The generator (hidden %d) is wider than the discriminator (hidden %d).",
                       generator.hidden_size, discriminator.hidden_size)
    return discriminator, generator


# --- Copying weights -------------------------------------------------------------------------


def _copy(target, source, kind, skip=()):
    """Assigns `source`'s weights to `target` slot by slot (both `kind`), but not `skip`'s."""
    from electra_tf.conversion.weight_slots import assign_slots, model_slots

    values = {slot.names: slot.variable.numpy() for slot in model_slots(source, kind)}
    slots = [slot for slot in model_slots(target, kind) if slot.variable.ref() not in skip]
    assign_slots(slots, lambda slot: [values[slot.names]])


def build_initialized_pretrainer(config, tokenizer, sources=None):
    """The pretrainer of `config`, its weights from `config.init_from` when set.

    `sources` are `read_init_sources`'s (read here when not given; when it
    is None, e.g. a run that resumes, this is `build_pretrainer`). The optimizer is
    not touched: the run starts at step 0 with a fresh learning-rate schedule.

    A tiny run directory is a source; the new discriminator starts with its weights:

    >>> import tempfile, numpy as np, electra_tf
    >>> from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    >>> from electra_tf.pretraining.run_pretraining import PretrainingConfig
    >>> source = tempfile.mkdtemp() + "/run"
    >>> tiny = electra_tf.ElectraDiscriminator.from_preset("tiny", num_layers=1)
    >>> tiny.save_pretrained(source + "/discriminator")
    >>> config = PretrainingConfig(corpus="corpus/*.txt", init_from=source, max_seq_length=32,
    ...                            generator_width=0.5, output_dir=tempfile.mkdtemp())
    >>> pretrainer = build_initialized_pretrainer(config, ElectraTokenizer())
    >>> all(np.array_equal(a, b) for a, b in
    ...     zip(pretrainer.discriminator.get_weights(), tiny.get_weights()))
    True
    >>> pretrainer.discriminator.encoder.num_layers, pretrainer.generator.encoder.hidden_size
    (1, 16)
    >>> build_initialized_pretrainer(dataclasses.replace(config, init_from=source + "/nothing"),
    ...                              ElectraTokenizer())
    Traceback (most recent call last):
    ...
    ValueError: init_from='.../nothing' does not exist; expected an electra_tf run or model ...
    """
    from electra_tf.pretraining.run_pretraining import build_pretrainer

    special_token_ids = (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id,
                         tokenizer.sep_token_id, tokenizer.mask_token_id)
    if sources is None:
        sources = read_init_sources(config, tokenizer.vocab_size)
    if sources is None:
        return build_pretrainer(config, tokenizer.vocab_size, special_token_ids,
                                tokenizer.mask_token_id)
    pretrainer = build_pretrainer(config, tokenizer.vocab_size, special_token_ids,
                                  tokenizer.mask_token_id, model_configs=sources.model_configs)
    discriminator_kind = _model_kind(sources.discriminator)
    if discriminator_kind == "discriminator":
        _copy(pretrainer.discriminator, sources.discriminator, "discriminator")
    else:  # an encoder (BERT): the replaced-token-detection head starts fresh
        _copy(pretrainer.discriminator.encoder, sources.discriminator, "encoder")
    logger.info("Discriminator (%s) from %s.", discriminator_kind, sources.discriminator_path)
    if sources.generator is not None:
        shared = set()
        if not config.untied_embeddings:  # the discriminator's table, already loaded
            shared = {v.ref() for v in pretrainer.discriminator.encoder.embedding_layer.weights}
            own = sources.generator.encoder.embedding_layer.get_weights()
            theirs = getattr(sources.discriminator, "encoder",
                             sources.discriminator).embedding_layer.get_weights()
            if not all(np.array_equal(a, b) for a, b in zip(own, theirs)):
                logger.info("Tied embeddings: the generator uses the discriminator's; those of "
                            "%s are not used.", sources.generator_path)
        _copy(pretrainer.generator, sources.generator, "generator", skip=shared)
        logger.info("Generator from %s.", sources.generator_path)
    else:
        logger.info("Generator: fresh (hidden %d).", pretrainer.generator.encoder.hidden_size)
    return pretrainer
