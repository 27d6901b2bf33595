"""One call behind `electra-tf convert`: read a checkpoint in one format, write another.

    convert("huggingface", "electra_tf", "hf_dir", "out_dir")
    convert("google", "huggingface", "electra_small/electra_small", "hf_out",
            model_kind="discriminator", config="small")
"""

import logging

from electra_tf.conversion.google_checkpoint import load_google_checkpoint
from electra_tf.conversion.huggingface import (
    _detect_kind,
    load_huggingface,
    read_config,
    read_state_dict,
    save_huggingface,
)
from electra_tf.models.model_io import load_pretrained, save_pretrained

logger = logging.getLogger(__name__)

SOURCES = ("huggingface", "google", "electra_tf")
TARGETS = ("electra_tf", "huggingface")
MODEL_KINDS = ("encoder", "discriminator", "generator")


def detect_huggingface_kind(path):
    """"discriminator", "generator" or "encoder", from the heads a checkpoint holds."""
    _, family, _ = read_config(path)
    return _detect_kind(read_state_dict(path), family)


def convert(source, target, src, dst, model_kind=None, config=None, overwrite=False):
    """Converts the checkpoint at `src` and writes it to `dst` (atomically).

    Args:
        source: "huggingface", "google" or "electra_tf".
        target: "electra_tf" or "huggingface".
        model_kind: "encoder", "discriminator" or "generator"; detected for
            Hugging Face and electra_tf sources, required for Google checkpoints
            (default "discriminator").
        config: for Google checkpoints, a preset name or config dict.
        overwrite: replace an existing `dst`.

    Returns:
        The converted model.
    """
    if source not in SOURCES:
        raise ValueError(f"Unknown source format {source!r}; expected one of {SOURCES}.")
    if target not in TARGETS:
        raise ValueError(f"Unknown target format {target!r}; expected one of {TARGETS}.")
    if model_kind is not None and model_kind not in MODEL_KINDS:
        raise ValueError(f"Unknown model kind {model_kind!r}; expected one of {MODEL_KINDS}.")
    if source == "huggingface":
        model = load_huggingface(src, model_kind or detect_huggingface_kind(src))
    elif source == "google":
        if config is None:
            raise ValueError(
                "Converting a Google checkpoint needs its sizes: pass a preset name "
                "('small', 'base', 'large') or a config (--config)."
            )
        model = load_google_checkpoint(src, config, model_kind or "discriminator")
    else:
        model = load_pretrained(src)
    if target == "electra_tf":
        save_pretrained(model, dst, overwrite=overwrite)
    else:
        save_huggingface(model, dst, overwrite=overwrite)
    logger.info("Wrote %s (%s) to %s", type(model).__name__, target, dst)
    return model
