"""Hugging Face checkpoints ⇄ electra_tf weights, exactly, in both directions: the file format.

Reads a local directory with config.json and model.safetensors (numpy only)
or pytorch_model.bin (needs torch) of `ElectraModel`, `ElectraForPreTraining`,
`ElectraForMaskedLM`, `BertModel` or `BertForMaskedLM`; writes config.json +
model.safetensors that `transformers` loads unchanged.

Names follow `weight_slots`; the translation to torch names is:

    embeddings/word_embeddings            embeddings.word_embeddings.weight
    .../LayerNorm/gamma, beta             .../LayerNorm.weight, bias
    .../kernel                            .../weight, transposed (torch is (out, in))
    encoder/layer_3/...                   encoder.layer.3....
    discriminator_predictions/dense_1     discriminator_predictions.dense_prediction
    generator_predictions/output_bias     generator_lm_head.bias  (BERT: cls.predictions.bias)
    generator_predictions/{dense,LayerNorm} (BERT: cls.predictions.transform.{dense,LayerNorm})

Encoder weights carry an `electra.`/`bert.` prefix in task checkpoints and
none in a bare `ElectraModel`/`BertModel`.

This module builds no model: it reads a checkpoint (`read_huggingface_checkpoint`: the
encoder's keyword arguments and the tensors), copies the tensors into a model it is given
(`assign_huggingface_weights`) and writes a model's weights back. The model classes build
themselves from what it reads (`ElectraEncoder.from_huggingface`, and the discriminator's,
generator's and task models'); `electra_tf.conversion.huggingface.load_huggingface` picks the
class from a model kind.
"""

import dataclasses
import json
import logging
import os

import numpy as np

from electra_tf.checkpoint_formats.checkpoint_files import read_checkpoint_json
from electra_tf.checkpoint_formats.weight_slots import (
    HEAD,
    assign_slots,
    check_published_head_shape,
    model_slots,
)
from electra_tf.utils.atomic_directory import atomic_directory

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
PYTORCH_NAME = "pytorch_model.bin"

ARCHITECTURES = {
    "encoder": "ElectraModel",
    "discriminator": "ElectraForPreTraining",
    "generator": "ElectraForMaskedLM",
}
# Keys that are not weights (buffers) or are tied to weights we already hold.
_IGNORED_SUFFIXES = ("position_ids", "token_type_ids")
# Heads of other architectures: skipped, with a log line, when loading a part.
_KNOWN_HEAD_PREFIXES = (
    "pooler.",
    "discriminator_predictions.",
    "generator_predictions.",
    "generator_lm_head.",
    "cls.",
    "classifier.",
    "qa_outputs.",
    "sequence_summary.",
)


def _torch_name(name, scope, family):
    """TF1-style slot name → (torch key without prefix, transposed?)."""
    if family == "bert" and scope == HEAD:
        name = name.replace("generator_predictions/output_bias", "cls/predictions/bias")
        name = name.replace("generator_predictions/", "cls/predictions/transform/")
    name = name.replace("generator_predictions/output_bias", "generator_lm_head/bias")
    name = name.replace("discriminator_predictions/dense_1", "discriminator_predictions/dense_prediction")
    name = name.replace("encoder/layer_", "encoder/layer/")
    transpose = name.endswith("/kernel")
    for old, new in (("/kernel", "/weight"), ("/gamma", "/weight"), ("/beta", "/bias")):
        if name.endswith(old):
            name = name[: -len(old)] + new
    if name.startswith("embeddings/") and name.count("/") == 1:
        name += "/weight"  # embedding tables: embeddings.word_embeddings.weight
    return name.replace("/", "."), transpose


def _require(module, extra="convert"):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as error:
        raise ImportError(
            f"Reading this checkpoint needs `{module}`: pip install 'electra-tf[{extra}]'"
        ) from error


def read_encoder_arguments(path):
    """config.json → (`ElectraEncoder` keyword arguments, family "electra"|"bert", raw dict).

    The arguments are the fields of `ElectraConfig` (`ElectraConfig(**arguments)`).
    """
    config_path = os.path.join(path, CONFIG_NAME)  # named in the errors below
    raw = read_checkpoint_json(path, CONFIG_NAME, (
        f"a Hugging Face checkpoint directory (config.json + {SAFETENSORS_NAME} or "
        f"{PYTORCH_NAME})"))
    family = raw.get("model_type")
    if family not in ("electra", "bert"):
        raise ValueError(
            f"{config_path} has model_type={family!r}; expected 'electra' or 'bert'."
        )
    activation = raw.get("hidden_act", "gelu")
    if activation != "gelu":
        raise ValueError(
            f"{config_path} has hidden_act={activation!r}; electra_tf implements the exact "
            "'gelu' of the published checkpoints only."
        )
    position_type = raw.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ValueError(
            f"{config_path} has position_embedding_type={position_type!r}; only "
            "'absolute' is supported."
        )
    missing = [
        key
        for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
        if key not in raw
    ]
    if missing:
        raise ValueError(f"{config_path} lacks the keys {missing}.")
    arguments = dict(
        vocab_size=raw["vocab_size"],
        hidden_size=raw["hidden_size"],
        num_layers=raw["num_hidden_layers"],
        num_heads=raw["num_attention_heads"],
        intermediate_size=raw.get("intermediate_size", 4 * raw["hidden_size"]),
        embedding_size=raw.get("embedding_size", raw["hidden_size"]),
        max_sequence_length=raw.get("max_position_embeddings", 512),
        type_vocab_size=raw.get("type_vocab_size", 2),
        dropout_rate=raw.get("hidden_dropout_prob", 0.1),
        initializer_range=raw.get("initializer_range", 0.02),
        layer_norm_epsilon=raw.get("layer_norm_eps", 1e-12),
    )
    return arguments, family, raw


def read_state_dict(path):
    """The checkpoint's tensors as a dict of numpy arrays."""
    safetensors_path = os.path.join(path, SAFETENSORS_NAME)
    pytorch_path = os.path.join(path, PYTORCH_NAME)
    if os.path.isfile(safetensors_path):
        from safetensors.numpy import load_file

        try:
            return load_file(safetensors_path)
        except Exception as error:  # safetensors raises its own error types
            raise ValueError(f"Could not read {safetensors_path}: {error}") from error
    if os.path.isfile(pytorch_path):
        torch = _require("torch")
        state = torch.load(pytorch_path, map_location="cpu", weights_only=True)
        return {key: value.float().numpy() for key, value in state.items()}
    raise ValueError(
        f"No {SAFETENSORS_NAME} or {PYTORCH_NAME} in {path!r}; found {sorted(os.listdir(path))}."
    )


def _encoder_prefix(state, family):
    prefix = f"{family}."
    return prefix if any(key.startswith(prefix) for key in state) else ""


def detect_model_kind(state):
    """"discriminator", "generator" or "encoder": the heads a checkpoint's tensors hold."""
    if any(key.startswith(("discriminator_predictions.",)) for key in state):
        return "discriminator"
    if any(key.startswith(("generator_predictions.", "cls.predictions.")) for key in state):
        return "generator"
    return "encoder"


# What a checkpoint download needs: weights, config and the tokenizer's vocabulary.
HUB_FILES = ["config.json", "model.safetensors", "pytorch_model.bin", "vocab.txt",
             "tokenizer_config.json"]


def resolve_huggingface_path(path):
    """A local checkpoint directory for `path`: the directory itself, or a Hub download.

    `path` is a local directory, or a Hugging Face Hub model id such as
    "google/electra-small-discriminator", which `huggingface_hub.snapshot_download`
    fetches (weights, config and vocabulary only) into its cache; that needs the network
    (Colab has it; these tests' machines do not) and the `huggingface_hub` package.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> resolve_huggingface_path(folder) == folder
    True
    """
    if os.path.isdir(path):
        return path
    parts = path.split("/")
    if os.path.exists(path) or len(parts) != 2 or not all(parts) or path.startswith("."):
        raise ValueError(
            "Expected a Hugging Face checkpoint directory or a Hub model id such as "
            f"'google/electra-small-discriminator'; {path!r} is not one.")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as error:
        raise ImportError(
            f"Downloading {path!r} from the Hugging Face Hub needs `huggingface_hub` "
            "(pip install huggingface_hub, or the `convert` extra); or pass a local directory."
        ) from error
    return snapshot_download(repo_id=path, allow_patterns=HUB_FILES)


@dataclasses.dataclass(frozen=True)
class HuggingFaceCheckpoint:
    """A Hugging Face checkpoint directory, read: what a model class builds itself from.

    `encoder_arguments` are the `ElectraEncoder` keyword arguments of config.json
    (`ElectraConfig(**encoder_arguments)`); `config` is config.json itself; `family` its
    model_type ("electra" or "bert"); `state` the tensors (torch keys, numpy arrays in torch
    layout).
    """

    path: str
    encoder_arguments: dict
    family: str
    config: dict
    state: dict


def read_huggingface_checkpoint(path, model_kind="encoder"):
    """Reads the checkpoint at `path` (a directory or Hub id) for a model of `model_kind`.

    Raises:
        ValueError: the directory is not a supported checkpoint, or holds another head
            than `model_kind` needs ("encoder" takes any).
    """
    path = resolve_huggingface_path(path)
    arguments, family, raw = read_encoder_arguments(path)
    state = read_state_dict(path)
    checkpoint_kind = detect_model_kind(state)
    if model_kind != "encoder" and checkpoint_kind != model_kind:
        raise ValueError(
            f"{path!r} holds a {checkpoint_kind} checkpoint (no {model_kind} head); "
            f"load it with the class for a {checkpoint_kind}, or as an ElectraEncoder."
        )
    return HuggingFaceCheckpoint(path, arguments, family, raw, state)


def assign_huggingface_weights(model, model_kind, checkpoint):
    """Copies a read `HuggingFaceCheckpoint`'s tensors into `model`, an electra_tf model of
    `model_kind` built with its `encoder_arguments`.

    Raises:
        ValueError: a key is missing or unexpected (all are listed), or a shape
            does not match the model (the variable and both shapes are named).
    """
    state, family = checkpoint.state, checkpoint.family
    prefix = _encoder_prefix(state, family)

    slots = model_slots(model, model_kind)
    used, missing = set(), []

    def key_of(name, scope):
        torch_name, transpose = _torch_name(name, scope, family)
        return (torch_name if scope == HEAD else prefix + torch_name), transpose

    for slot in slots:
        for name in slot.names:
            key, _ = key_of(name, slot.scope)
            if key not in state:
                missing.append(key)
            used.add(key)
    # Tied output embeddings: the decoder/lm_head weight is the word table.
    word_key = prefix + "embeddings.word_embeddings.weight"
    for tied_key in ("generator_lm_head.weight", "cls.predictions.decoder.weight"):
        if tied_key in state:
            if word_key in state and not np.array_equal(state[tied_key], state[word_key]):
                raise ValueError(
                    f"{tied_key} differs from {word_key}: untied output embeddings are not "
                    "supported (ELECTRA and BERT tie them)."
                )
            used.add(tied_key)
    if "cls.predictions.decoder.bias" in state:
        used.add("cls.predictions.decoder.bias")  # the same tensor as cls.predictions.bias
    unexpected, skipped = [], []
    for key in state:
        if key in used or key.endswith(_IGNORED_SUFFIXES):
            continue
        (skipped if key.startswith(_KNOWN_HEAD_PREFIXES) else unexpected).append(key)
    if missing or unexpected:
        raise ValueError(
            f"Cannot load {checkpoint.path!r} as an electra_tf {model_kind}.\n"
            f"  missing keys ({len(missing)}): {missing}\n"
            f"  unexpected keys ({len(unexpected)}): {unexpected}"
        )
    if skipped:
        logger.info("Skipped %d head weights not used by a %s: %s", len(skipped), model_kind, skipped)

    def fetch(slot):
        values = []
        for name in slot.names:
            key, transpose = key_of(name, slot.scope)
            value = state[key]
            values.append(value.T if transpose else value)
        return values

    assign_slots(slots, fetch)


def _model_kind(model):
    kind = getattr(model, "model_kind", None)
    if kind not in ARCHITECTURES:
        raise ValueError(
            "save_huggingface takes an ElectraEncoder, ElectraDiscriminator or "
            f"ElectraGenerator; received {type(model).__name__}."
        )
    return kind


def huggingface_config(model):
    """The transformers `ElectraConfig` dict describing `model`."""
    kind = _model_kind(model)
    encoder = model if kind == "encoder" else model.encoder
    check_published_head_shape(encoder)
    return {
        "architectures": [ARCHITECTURES[kind]],
        "model_type": "electra",
        "vocab_size": encoder.vocab_size,
        "embedding_size": encoder.embedding_size,
        "hidden_size": encoder.hidden_size,
        "num_hidden_layers": encoder.num_layers,
        "num_attention_heads": encoder.num_heads,
        "intermediate_size": encoder.intermediate_size,
        "hidden_act": "gelu",
        "hidden_dropout_prob": encoder.dropout_rate,
        "attention_probs_dropout_prob": encoder.dropout_rate,
        "max_position_embeddings": encoder.max_sequence_length,
        "type_vocab_size": encoder.type_vocab_size,
        "initializer_range": encoder.initializer_range,
        "layer_norm_eps": encoder.layer_norm_epsilon,
        "position_embedding_type": "absolute",
        "pad_token_id": 0,
        "tie_word_embeddings": True,
    }


def huggingface_state_dict(model):
    """Our weights under transformers' names, as numpy arrays (torch layout)."""
    kind = _model_kind(model)
    prefix = "" if kind == "encoder" else "electra."
    state = {}
    for slot in model_slots(model, kind):
        for name, value in zip(slot.names, slot.split(slot.variable.numpy())):
            key, transpose = _torch_name(name, slot.scope, "electra")
            key = key if slot.scope == HEAD else prefix + key
            state[key] = np.ascontiguousarray(value.T if transpose else value)
    # generator_lm_head.weight is tied to the word embeddings; transformers
    # omits tied copies from its files too and re-ties on load.
    return state


def write_huggingface_directory(config, state, path, overwrite=False):
    """Writes config.json + model.safetensors (numpy `state`) to `path`, atomically.

    The files are written into a temporary directory next to `path`, which is
    renamed into place only when complete.
    """
    from safetensors.numpy import save_file

    with atomic_directory(path, overwrite=overwrite) as tmp:
        with open(os.path.join(tmp, CONFIG_NAME), "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
        save_file(state, os.path.join(tmp, SAFETENSORS_NAME), metadata={"format": "pt"})


def save_huggingface(model, path, overwrite=False):
    """Writes `model` as a Hugging Face directory (config.json + model.safetensors)."""
    write_huggingface_directory(huggingface_config(model), huggingface_state_dict(model), path,
                                overwrite=overwrite)
