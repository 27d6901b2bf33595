"""One naming vocabulary everywhere (STYLE.md §3): signatures match docstrings, no aliases."""

import dataclasses
import inspect
import re

import pytest

import electra_tf
from electra_tf.optimization.layerwise_decay_adamw import LayerwiseDecayAdamW
from electra_tf.optimization.warmup_linear_decay import WarmupLinearDecay
from electra_tf.preprocessing.electra_packer import ElectraPacker
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.pretraining.electra_pretrainer import ElectraPretrainer
from electra_tf.pretraining.masked_lm_pretrainer import MaskedLMPretrainer
from electra_tf.serving.dynamic_batcher import DynamicBatcher
from electra_tf.serving.served_model import ServedModel
from electra_tf.serving.serving_config import ServingConfig
from electra_tf.serving.serving_metrics import ServingMetrics

# Config dataclasses (ElectraConfig, PretrainingConfig, ...) document their fields with comments.
PUBLIC_CLASSES = [getattr(electra_tf, name) for name in electra_tf.__all__
                  if inspect.isclass(getattr(electra_tf, name))
                  and not dataclasses.is_dataclass(getattr(electra_tf, name))] + [
    ElectraTokenizer, ElectraPacker, ElectraPretrainer, MaskedLMPretrainer, WarmupLinearDecay,
    LayerwiseDecayAdamW, DynamicBatcher, ServedModel, ServingConfig, ServingMetrics,
]

# Names other libraries use for the same things; we use the TF-Hub/Model Garden ones.
ALIASES = {
    "vocabulary_size": "vocab_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "intermediate_dim": "intermediate_size",
    "hidden_dim": "hidden_size",
    "embedding_dim": "embedding_size",
    "max_position_embeddings": "max_sequence_length",
    "hidden_dropout_prob": "dropout_rate",
    "dropout": "dropout_rate",
    "layer_norm_eps": "layer_norm_epsilon",
    "input_ids": "input_word_ids",
    "attention_mask": "input_mask",
    "token_type_ids": "input_type_ids",
}


def init_parameters(cls):
    return [name for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in ("self", "kwargs") and p.kind is not p.VAR_POSITIONAL]


def documented_arguments(cls):
    doc = inspect.getdoc(cls) or ""
    if "Args:" not in doc:
        return set()
    section = doc.split("Args:", 1)[1]
    section = re.split(r"\n\S", section, maxsplit=1)[0]  # up to the next unindented heading
    return set(re.findall(r"^\s{4}(\w+)(?:,\s*\w+)*:", section, flags=re.M)) | {
        name for line in re.findall(r"^\s{4}([\w, ]+):", section, flags=re.M)
        for name in re.split(r",\s*", line)
    }


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_every_constructor_argument_is_documented(cls):
    missing = set(init_parameters(cls)) - documented_arguments(cls)
    assert not missing, f"{cls.__name__} documents no {sorted(missing)} under Args:"


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_no_aliases_in_public_signatures(cls):
    used = set(init_parameters(cls)) & set(ALIASES)
    assert not used, {name: ALIASES[name] for name in used}


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_docstring_has_an_example(cls):
    assert ">>>" in (inspect.getdoc(cls) or ""), f"{cls.__name__} has no runnable example"
