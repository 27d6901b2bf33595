"""One call behind `electra-tf convert`: read a checkpoint in one format, write another.

    convert("huggingface", "electra_tf", "hf_dir", "out_dir")
    convert("google", "huggingface", "electra_small/electra_small", "hf_out",
            model_kind="discriminator", config="small")
    convert("electra_tf", "keras_hub", "runs/small/discriminator", "keras_hub_preset")
    convert("keras_hub", "electra_tf", "keras_hub_preset", "encoder")  # + vocab.txt
"""

import logging
import os
import shutil

from electra_tf.conversion.google_checkpoint import load_google_checkpoint
from electra_tf.conversion.huggingface import (
    _detect_kind,
    load_huggingface,
    read_config,
    read_state_dict,
    save_huggingface,
)
from electra_tf.conversion.keras_hub import keras_hub_vocabulary, load_keras_hub, save_keras_hub
from electra_tf.models.model_io import load_pretrained, save_pretrained
from electra_tf.utils.atomic_directory import atomic_directory

logger = logging.getLogger(__name__)

SOURCES = ("huggingface", "google", "electra_tf", "keras_hub")
TARGETS = ("electra_tf", "huggingface", "keras_hub")
VOCAB_NAME = "vocab.txt"  # what fine-tuning looks for next to an encoder
MODEL_KINDS = ("encoder", "discriminator", "generator")


def detect_huggingface_kind(path):
    """"discriminator", "generator" or "encoder", from the heads a checkpoint holds."""
    _, family, _ = read_config(path)
    return _detect_kind(read_state_dict(path), family)


def _source_vocabulary(source, src, vocab_path, lower_case):
    """(vocabulary file or None, lower_case) that go with the model read from `src`.

    Given values win; else a keras-hub preset's tokenizer, else `src/vocab.txt`
    when there is one; `lower_case` defaults to True outside keras-hub presets.
    """
    if source == "keras_hub":
        preset_vocab, preset_lower_case = keras_hub_vocabulary(src)
        return (vocab_path or preset_vocab,
                preset_lower_case if lower_case is None else lower_case)
    if vocab_path is None and os.path.isfile(os.path.join(src, VOCAB_NAME)):
        vocab_path = os.path.join(src, VOCAB_NAME)
    return vocab_path, True if lower_case is None else lower_case


def convert(source, target, src, dst, model_kind=None, config=None, overwrite=False,
            vocab_path=None, lower_case=None):
    """Converts the checkpoint at `src` and writes it to `dst` (atomically).

    Args:
        source: "huggingface", "google", "electra_tf" or "keras_hub".
        target: "electra_tf", "huggingface" or "keras_hub".
        model_kind: "encoder", "discriminator" or "generator"; detected for
            Hugging Face and electra_tf sources, required for Google checkpoints
            (default "discriminator"); keras-hub presets hold encoders only.
        config: for Google checkpoints, a preset name or config dict.
        overwrite: replace an existing `dst`.
        vocab_path, lower_case: the tokenizer written into a keras-hub preset;
            by default a keras-hub source's own, else `src/vocab.txt` or the
            packaged uncased vocabulary. From a keras-hub preset, its vocabulary
            is also copied to `dst/vocab.txt`.

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
    elif source == "keras_hub":
        model = load_keras_hub(src, model_kind or "encoder")
    else:
        model = load_pretrained(src)
    if target == "keras_hub":
        vocab_path, lower_case = _source_vocabulary(source, src, vocab_path, lower_case)
        save_keras_hub(model, dst, vocab_path=vocab_path, lower_case=lower_case,
                       overwrite=overwrite)
    elif source == "keras_hub":
        # The preset's vocabulary goes along, where fine-tuning looks for it.
        save = save_pretrained if target == "electra_tf" else save_huggingface
        with atomic_directory(dst, overwrite=overwrite) as tmp:
            save(model, tmp, overwrite=True)
            shutil.copyfile(_source_vocabulary(source, src, vocab_path, lower_case)[0],
                            os.path.join(tmp, VOCAB_NAME))
    elif target == "electra_tf":
        save_pretrained(model, dst, overwrite=overwrite)
    else:
        save_huggingface(model, dst, overwrite=overwrite)
    logger.info("Wrote %s (%s) to %s", type(model).__name__, target, dst)
    return model
