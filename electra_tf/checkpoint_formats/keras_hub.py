"""keras-hub ELECTRA presets ⇄ electra_tf weights, read and written without Keras 3 in the
process: the file format. `ElectraEncoder.from_keras_hub` builds the encoder from what this
module reads; this module builds no model.

A keras-hub preset is a directory that `keras_hub.models.ElectraBackbone.from_preset(dir)`
and `keras_hub.models.ElectraTokenizer.from_preset(dir)` load:

    config.json                        the serialized ElectraBackbone (registered_name keras_hub>ElectraBackbone)
    model.weights.h5                   Keras 3 weights: layers/<group>/vars/<i>
    tokenizer.json                     the serialized ElectraTokenizer (lowercase, strip_accents, ...)
    assets/tokenizer/vocabulary.txt    one WordPiece token per line
    metadata.json                      versions, parameter count, date, tasks

We write and read these files directly (json and h5py), instead of calling
keras-hub in a subprocess: electra_tf runs tf-keras, keras-hub needs Keras 3,
and a subprocess would add keras-hub as a dependency of every export and ten
seconds of start-up. The layout is the one keras-hub 0.32 writes; the tests
check it against presets that the installed keras-hub saves and loads itself.

Keras 3 names the weight groups after layer classes, in the order of the
functional model's layers; the `name` attribute of each group holds the layer's
own name. The translation from our (TF1-style) slot names:

    embeddings/word_embeddings                 layers/reversible_embedding/vars/0      (V, E)
    embeddings/position_embeddings             layers/position_embedding/vars/0        (P, E)
    embeddings/token_type_embeddings           layers/embedding/vars/0                 (T, E)
    embeddings/LayerNorm/gamma, beta           layers/layer_normalization/vars/0, 1
    embeddings_project/kernel, bias            layers/dense/vars/0, 1                  only when E != H
    encoder/layer_3/attention/self/query/kernel  layers/transformer_encoder_3/_self_attention_layer/query_dense/vars/0
                                               (H, H) ⇄ (H, heads, H/heads); biases (H,) ⇄ (heads, H/heads)
    encoder/layer_3/attention/output/dense/kernel  .../_self_attention_layer/output_dense/vars/0   (H, H) ⇄ (heads, H/heads, H)
    encoder/layer_3/attention/output/LayerNorm  .../_self_attention_layer_norm
    encoder/layer_3/intermediate/dense         .../_feedforward_intermediate_dense
    encoder/layer_3/output/dense               .../_feedforward_output_dense
    encoder/layer_3/output/LayerNorm           .../_feedforward_layer_norm
    (none)                                     pooled_dense: layers/dense_1 (layers/dense when E == H)

(layer 0 is `transformer_encoder`, layer i > 0 `transformer_encoder_i`.)

What keras-hub computes differently from the published ELECTRA, which we keep:
- GELU: keras-hub's ElectraBackbone uses the tanh approximation, ELECTRA the
  exact erf form. The weights are the same; the outputs differ (README, "keras-hub").
- Pooler: keras-hub's `pooled_output` is tanh(dense([CLS])); ELECTRA has no
  pooler. We write an identity kernel and zero bias (`pooled_output` is then
  tanh([CLS])) and drop the pooler when reading.
- LayerNorm epsilon: 1e-12 on both sides. keras-hub fixes it, so a model with
  another `layer_norm_epsilon` is refused rather than silently changed.
- Tokenizer: keras-hub lower-cases with Unicode case folding (NFKC), BERT with
  plain lower-casing; see `load_keras_hub_tokenizer`.
"""

import datetime
import logging
import os
import re

import numpy as np

from electra_tf.checkpoint_formats.checkpoint_files import read_checkpoint_json
from electra_tf.checkpoint_formats.keras_hub_text_classifier_source import (
    TEXT_CLASSIFIER_MODULE_NAME,
    TEXT_CLASSIFIER_SOURCE,
)
from electra_tf.checkpoint_formats.weight_slots import (
    assign_slots,
    check_published_head_shape,
    encoder_slots,
)
# The tokenizer's files: read by ElectraTokenizer.from_keras_hub, written here.
from electra_tf.preprocessing.keras_hub_vocabulary import TOKENIZER_NAME, VOCABULARY_PATH
from electra_tf.utils.atomic_directory import atomic_directory
from electra_tf.utils.json_files import write_json

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.weights.h5"
SHARDED_WEIGHTS_NAME = "model.weights.json"
METADATA_NAME = "metadata.json"

BACKBONE_CLASS = "keras_hub>ElectraBackbone"
# keras-nlp, keras-hub's former name, registered the same classes under its own package.
BACKBONE_CLASSES = (BACKBONE_CLASS, "keras_nlp>ElectraBackbone")
TOKENIZER_CLASS = "keras_hub>ElectraTokenizer"
# The keras-hub and Keras whose preset layout this module writes; the tests load
# what we write with the installed keras-hub, so a layout change fails them.
KERAS_HUB_VERSION = "0.32.0"
KERAS_VERSION = "3.15.1"
# keras-hub's ElectraBackbone hard-codes the LayerNorm epsilon of the releases.
KERAS_HUB_LAYER_NORM_EPSILON = 1e-12
_REQUIRED_CONFIG_KEYS = ("vocab_size", "num_layers", "num_heads", "hidden_dim", "embedding_dim",
                         "intermediate_dim")

# The `name` attribute Keras gives each weight group: the layer's own name.
_LAYER_NAMES = {
    "reversible_embedding": "token_embedding",
    "position_embedding": "position_embedding",
    "embedding": "segment_embedding",
    "layer_normalization": "embeddings_layer_norm",
    "_self_attention_layer": "self_attention_layer",
    "query_dense": "query",
    "key_dense": "key",
    "value_dense": "value",
    "output_dense": "attention_output",
    "_self_attention_layer_norm": "self_attention_layer_norm",
    "_feedforward_intermediate_dense": "feedforward_intermediate_dense",
    "_feedforward_output_dense": "feedforward_output_dense",
    "_feedforward_layer_norm": "feedforward_layer_norm",
}
_EMBEDDING_GROUPS = {
    "embeddings/word_embeddings": "layers/reversible_embedding",
    "embeddings/position_embeddings": "layers/position_embedding",
    "embeddings/token_type_embeddings": "layers/embedding",
    "embeddings/LayerNorm": "layers/layer_normalization",
    "embeddings_project": "layers/dense",
}
_LAYER_GROUPS = {
    "attention/self/query": "_self_attention_layer/query_dense",
    "attention/self/key": "_self_attention_layer/key_dense",
    "attention/self/value": "_self_attention_layer/value_dense",
    "attention/output/dense": "_self_attention_layer/output_dense",
    "attention/output/LayerNorm": "_self_attention_layer_norm",
    "intermediate/dense": "_feedforward_intermediate_dense",
    "output/dense": "_feedforward_output_dense",
    "output/LayerNorm": "_feedforward_layer_norm",
}
# kernel/gamma are a layer's first variable, bias/beta its second.
_VARIABLE_INDEX = {"kernel": 0, "gamma": 0, "bias": 1, "beta": 1}
_SLOT_NAME = re.compile(r"encoder/layer_(\d+)/(.+)/(kernel|bias|gamma|beta)")


def _transformer_group(index):
    # Keras numbers a class's second and later layers: transformer_encoder, _1, _2, ...
    return "layers/transformer_encoder" + (f"_{index}" if index else "")


def _pooler_group(has_projection):
    return "layers/dense_1" if has_projection else "layers/dense"


def keras_hub_location(name):
    """Our slot name → (h5 group, variable index), e.g.

    >>> keras_hub_location("encoder/layer_2/attention/self/query/kernel")
    ('layers/transformer_encoder_2/_self_attention_layer/query_dense', 0)
    >>> keras_hub_location("embeddings/LayerNorm/beta")
    ('layers/layer_normalization', 1)
    """
    if name.startswith("embeddings"):
        if name.startswith("embeddings/") and name.count("/") == 1:  # a table
            return _EMBEDDING_GROUPS[name], 0
        layer, variable = name.rsplit("/", 1)
        return _EMBEDDING_GROUPS[layer], _VARIABLE_INDEX[variable]
    match = _SLOT_NAME.fullmatch(name)
    if match is None or match.group(2) not in _LAYER_GROUPS:
        raise ValueError(f"No keras-hub ElectraBackbone weight corresponds to {name!r}.")
    index, layer, variable = match.groups()
    group = f"{_transformer_group(int(index))}/{_LAYER_GROUPS[layer]}"
    return group, _VARIABLE_INDEX[variable]


def _layer_name(group, has_projection):
    """The `name` attribute Keras writes on a weight group."""
    last = group.rsplit("/", 1)[-1]
    if group == _pooler_group(has_projection):
        return "pooled_dense"
    if group == "layers/dense":
        return "embeddings_projection"
    if group.count("/") == 1 and last.startswith("transformer_encoder"):
        index = last[len("transformer_encoder_"):] or "0"
        return f"transformer_layer_{index}"
    return _LAYER_NAMES[last]


def _to_keras_hub(name, value, num_heads):
    """Our value → keras-hub's layout: attention projections are per head (EinsumDense)."""
    if "/attention/self/" in name:
        if name.endswith("/kernel"):
            return value.reshape(value.shape[0], num_heads, -1)  # (H, heads, H/heads)
        return value.reshape(num_heads, -1)  # (heads, H/heads)
    if "/attention/output/dense/kernel" in name:
        return value.reshape(num_heads, -1, value.shape[-1])  # (heads, H/heads, H)
    return value


def _from_keras_hub(name, value):
    """keras-hub's value → our layout (any size: shapes are checked when assigned)."""
    if "/attention/self/" in name:
        if name.endswith("/kernel"):
            return value.reshape(value.shape[0], -1)  # (H, heads·H/heads)
        return value.reshape(-1)
    if "/attention/output/dense/kernel" in name:
        return value.reshape(-1, value.shape[-1])  # (heads·H/heads, H)
    return value


# === Writing ===


def _encoder_of(model):
    kind = getattr(model, "model_kind", None)
    if kind not in ("encoder", "discriminator", "generator"):
        raise ValueError(
            "save_keras_hub takes an ElectraEncoder, ElectraDiscriminator or ElectraGenerator; "
            f"received {type(model).__name__}."
        )
    return model if kind == "encoder" else model.encoder


def keras_hub_config(encoder):
    """The serialized keras-hub `ElectraBackbone` (config.json) describing `encoder`.

    Raises a ValueError for a `layer_norm_epsilon` other than keras-hub's fixed 1e-12, and
    for an encoder whose heads were removed (`check_published_head_shape`).
    """
    check_published_head_shape(encoder)
    if encoder.layer_norm_epsilon != KERAS_HUB_LAYER_NORM_EPSILON:
        raise ValueError(
            f"The encoder has layer_norm_epsilon={encoder.layer_norm_epsilon}, but keras-hub's "
            f"ElectraBackbone fixes it at {KERAS_HUB_LAYER_NORM_EPSILON} (that of the released "
            "checkpoints); such a model cannot be written as a keras-hub preset without "
            "changing its outputs."
        )
    return {
        "module": "keras_hub.src.models.electra.electra_backbone",
        "class_name": "ElectraBackbone",
        "config": {
            "name": "electra_backbone",
            "trainable": True,
            # Weights are saved in float32 whatever the compute policy.
            "dtype": {"module": "keras", "class_name": "DTypePolicy",
                      "config": {"name": "float32"}, "registered_name": None},
            "vocab_size": encoder.vocab_size,
            "num_layers": encoder.num_layers,
            "num_heads": encoder.num_heads,
            "hidden_dim": encoder.hidden_size,
            "embedding_dim": encoder.embedding_size,
            "intermediate_dim": encoder.intermediate_size,
            "dropout": encoder.dropout_rate,
            "max_sequence_length": encoder.max_sequence_length,
            "num_segments": encoder.type_vocab_size,
        },
        "registered_name": BACKBONE_CLASS,
    }


def keras_hub_weights(encoder):
    """{h5 group: [variable values]} for a keras-hub ElectraBackbone holding `encoder`'s weights.

    The pooler ELECTRA does not have gets an identity kernel and zero bias.
    """
    groups = {}
    for slot in encoder_slots(encoder):
        for name, value in zip(slot.names, slot.split(slot.variable.numpy())):
            group, index = keras_hub_location(name)
            values = groups.setdefault(group, {})
            values[index] = _to_keras_hub(name, value.astype(np.float32), encoder.num_heads)
    hidden = encoder.hidden_size
    groups[_pooler_group(encoder.embedding_projection is not None)] = {
        0: np.eye(hidden, dtype=np.float32), 1: np.zeros(hidden, np.float32)}
    return {group: [values[i] for i in sorted(values)] for group, values in groups.items()}


def _write_weights(groups, has_projection, path):
    import h5py

    with h5py.File(path, "w") as f:
        f.create_group("vars").attrs["name"] = "electra_backbone"
        for group, values in groups.items():
            entry = f.create_group(group).create_group("vars")
            entry.attrs["name"] = _layer_name(group, has_projection)
            for index, value in enumerate(values):
                entry.create_dataset(str(index), data=value)


def keras_hub_tokenizer_config(lower_case):
    """The serialized keras-hub `ElectraTokenizer` (tokenizer.json).

    `lower_case` sets both keras-hub flags, as BERT's uncased tokenization
    lower-cases and strips accents together.
    """
    return {
        "module": "keras_hub.src.models.electra.electra_tokenizer",
        "class_name": "ElectraTokenizer",
        "config": {
            "name": "electra_tokenizer",
            "trainable": True,
            "dtype": {"module": "keras", "class_name": "DTypePolicy",
                      "config": {"name": "int32"}, "registered_name": None},
            "config_file": TOKENIZER_NAME,
            "vocabulary": None,  # keras-hub saves it as an asset
            "sequence_length": None,
            "lowercase": lower_case,
            "strip_accents": lower_case,
            "split": True,
            "suffix_indicator": "##",
            "oov_token": "[UNK]",
            "special_tokens": None,
            "special_tokens_in_strings": False,
        },
        "registered_name": TOKENIZER_CLASS,
    }


def _write_json(value, path):
    write_json(path, value, indent=4)  # keras-hub's own files are indented by 4


def save_keras_hub(model, path, vocab_path=None, lower_case=True, overwrite=False):
    """Writes `model`'s encoder and a tokenizer as a keras-hub ELECTRA preset directory.

    Heads (discriminator, generator) are not part of a keras-hub backbone and are
    left out. The directory also holds `electra_text_classifier.py`, which
    registers a keras-hub `ElectraTextClassifier` (keras-hub 0.32 has none).

    Args:
        model: an `ElectraEncoder`, `ElectraDiscriminator` or `ElectraGenerator`.
        path: the preset directory to write (atomically).
        vocab_path: the WordPiece vocabulary the model was trained with; None
            means the packaged uncased BERT vocabulary.
        lower_case: whether the vocabulary is uncased (lower-case and strip accents).
        overwrite: replace an existing `path`.

    Raises:
        ValueError: the vocabulary does not have the encoder's `vocab_size`, or
            the encoder's LayerNorm epsilon is not keras-hub's 1e-12.

    >>> import tempfile, electra_tf
    >>> path = tempfile.mkdtemp() + "/preset"
    >>> save_keras_hub(electra_tf.ElectraDiscriminator.from_preset("tiny"), path)
    >>> sorted(os.listdir(path))  # doctest: +NORMALIZE_WHITESPACE
    ['assets', 'config.json', 'electra_text_classifier.py', 'metadata.json',
     'model.weights.h5', 'tokenizer.json']
    >>> electra_tf.ElectraEncoder.from_keras_hub(path).num_layers
    2
    """
    from electra_tf.preprocessing.electra_tokenizer import DEFAULT_VOCAB_PATH, read_vocabulary

    encoder = _encoder_of(model)
    config = keras_hub_config(encoder)
    vocab_path = DEFAULT_VOCAB_PATH if vocab_path is None else vocab_path
    tokens = read_vocabulary(vocab_path)
    if len(tokens) != encoder.vocab_size:
        raise ValueError(
            f"The vocabulary {vocab_path!r} has {len(tokens)} tokens but the encoder's "
            f"vocab_size is {encoder.vocab_size}; pass the vocabulary the model was trained "
            "with as vocab_path (--vocab)."
        )
    if not isinstance(lower_case, bool):
        raise ValueError(f"`lower_case` must be True or False; received {lower_case!r}.")
    has_projection = encoder.embedding_projection is not None
    hidden = encoder.hidden_size
    with atomic_directory(path, overwrite=overwrite) as tmp:
        _write_json(config, os.path.join(tmp, CONFIG_NAME))
        _write_weights(keras_hub_weights(encoder), has_projection, os.path.join(tmp, WEIGHTS_NAME))
        _write_json(keras_hub_tokenizer_config(lower_case), os.path.join(tmp, TOKENIZER_NAME))
        os.makedirs(os.path.dirname(os.path.join(tmp, VOCABULARY_PATH)))
        with open(os.path.join(tmp, VOCABULARY_PATH), "w", encoding="utf-8") as f:
            f.writelines(f"{token}\n" for token in tokens)  # keras-hub's own format
        _write_json({
            "keras_version": KERAS_VERSION,
            "keras_hub_version": KERAS_HUB_VERSION,
            "parameter_count": int(encoder.count_params()) + hidden * hidden + hidden,  # + pooler
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            # What keras-hub lists once electra_text_classifier.py is imported.
            "tasks": ["TextClassifier"],
        }, os.path.join(tmp, METADATA_NAME))
        with open(os.path.join(tmp, TEXT_CLASSIFIER_MODULE_NAME), "w") as f:
            f.write(TEXT_CLASSIFIER_SOURCE)
    logger.info("Wrote a keras-hub ElectraBackbone preset (%s) to %s", type(model).__name__, path)


# === Reading ===


def read_keras_hub_config(path):
    """The ElectraBackbone config dict of the preset at `path`, checked."""
    config_path = os.path.join(path, CONFIG_NAME)  # named in the errors below
    raw = read_checkpoint_json(path, CONFIG_NAME, (
        f"a keras-hub preset directory ({CONFIG_NAME}, {WEIGHTS_NAME}, {TOKENIZER_NAME}, "
        f"{VOCABULARY_PATH})"))
    registered = raw.get("registered_name") if isinstance(raw, dict) else None
    if registered not in BACKBONE_CLASSES:
        hint = " It is a Hugging Face config: use from_huggingface." if "model_type" in raw else ""
        raise ValueError(
            f"{config_path} describes {registered!r}; expected a keras-hub ELECTRA backbone "
            f"(registered_name {BACKBONE_CLASS!r}).{hint}"
        )
    config = raw.get("config", {})
    missing = [key for key in _REQUIRED_CONFIG_KEYS if key not in config]
    if missing:
        raise ValueError(f"{config_path} lacks the keys {missing}.")
    return config


def _read_weights(path):
    """{dataset path: (value as float32, the group's `name` attribute)} of a Keras 3 weights file."""
    import h5py

    weights_path = os.path.join(path, WEIGHTS_NAME)
    if not os.path.isfile(weights_path):
        sharded = os.path.isfile(os.path.join(path, SHARDED_WEIGHTS_NAME))
        raise ValueError(
            f"No {WEIGHTS_NAME} in {path!r}"
            + (f"; sharded weights ({SHARDED_WEIGHTS_NAME}) are not supported."
               if sharded else f"; found {sorted(os.listdir(path))}.")
        )
    datasets = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            value = item[()]
            if item.attrs.get("dtype") == "bfloat16":  # stored as the upper 16 bits of float32
                value = (value.astype(np.uint32) << 16).view(np.float32)
            datasets[name] = (np.asarray(value, np.float32), item.parent.attrs.get("name"))

    try:
        with h5py.File(weights_path, "r") as f:
            f.visititems(visit)
    except OSError as error:
        raise ValueError(f"Could not read {weights_path}: {error}") from error
    return datasets


def read_keras_hub_encoder_arguments(path, model_kind="encoder"):
    """The `ElectraEncoder` keyword arguments of the keras-hub ELECTRA preset at `path`.

    Raises:
        ValueError: `path` is not a keras-hub ELECTRA preset, or `model_kind` is not
            "encoder" (presets hold no heads).
    """
    if model_kind != "encoder":
        raise ValueError(
            f"A keras-hub ELECTRA preset holds the backbone (the encoder) only, no {model_kind} "
            "head; load it with ElectraEncoder.from_keras_hub (--model encoder)."
        )
    if not os.path.isdir(path):
        raise ValueError(f"Expected a keras-hub preset directory; {path!r} is not a directory.")
    config = read_keras_hub_config(path)
    return dict(
        vocab_size=config["vocab_size"],
        hidden_size=config["hidden_dim"],
        num_layers=config["num_layers"],
        num_heads=config["num_heads"],
        intermediate_size=config["intermediate_dim"],
        embedding_size=config["embedding_dim"],
        max_sequence_length=config.get("max_sequence_length", 512),
        type_vocab_size=config.get("num_segments", 2),
        dropout_rate=config.get("dropout", 0.1),
        layer_norm_epsilon=KERAS_HUB_LAYER_NORM_EPSILON,
    )


def assign_keras_hub_weights(encoder, path):
    """Copies the weights of the keras-hub preset at `path` into `encoder`, exactly.

    `encoder` is an `ElectraEncoder` built with `read_keras_hub_encoder_arguments(path)`.
    The pooler is dropped (ELECTRA has none).

    Raises:
        ValueError: a weight is missing, unexpected, misplaced or wrongly shaped (all are
            named).
    """
    datasets = _read_weights(path)
    has_projection = encoder.embedding_projection is not None
    slots = encoder_slots(encoder)
    used, missing, misplaced = set(), [], []
    for slot in slots:
        for name in slot.names:
            group, index = keras_hub_location(name)
            key = f"{group}/vars/{index}"
            used.add(key)
            if key not in datasets:
                missing.append(key)
            elif datasets[key][1] not in (None, _layer_name(group, has_projection)):
                misplaced.append(f"{key} belongs to layer {datasets[key][1]!r}, expected "
                                 f"{_layer_name(group, has_projection)!r}")
    pooler = _pooler_group(has_projection)
    unexpected = [key for key in datasets if key not in used and not key.startswith(pooler + "/")]
    if missing or unexpected or misplaced:
        raise ValueError(
            f"Cannot load {path!r} as an electra_tf encoder (config: {read_keras_hub_config(path)}).\n"
            f"  missing weights ({len(missing)}): {missing}\n"
            f"  unexpected weights ({len(unexpected)}): {unexpected}\n"
            f"  misplaced weights ({len(misplaced)}): {misplaced}"
        )

    def fetch(slot):
        values = []
        for name in slot.names:
            group, index = keras_hub_location(name)
            values.append(_from_keras_hub(name, datasets[f"{group}/vars/{index}"][0]))
        return values

    assign_slots(slots, fetch)
    logger.info("Dropped keras-hub's pooled_dense (%s): ELECTRA has no pooler.", pooler)


def load_keras_hub_tokenizer(path):
    """An electra_tf `ElectraTokenizer` with the vocabulary of the preset at `path`.

    `lower_case` follows the preset's `lowercase`. Our uncased tokenization is
    BERT's (lower-case and strip accents, plain Unicode lower-casing);
    keras-hub's case-folds (NFKC) and strips accents only with
    `strip_accents`, so ids can differ on text with accents or compatibility
    characters (ligatures, full-width letters); ours are those of the
    published checkpoints.
    """
    from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer

    return ElectraTokenizer.from_keras_hub(path)
