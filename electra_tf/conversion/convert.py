"""One call behind `electra-tf convert`: read a checkpoint in one format, write another.

    convert("huggingface", "electra_tf", "hf_dir", "out_dir")
    convert("google", "huggingface", "electra_small/electra_small", "hf_out",
            model_kind="discriminator", config="small")
    convert("electra_tf", "keras_hub", "runs/small/discriminator", "keras_hub_preset")
    convert("keras_hub", "electra_tf", "keras_hub_preset", "encoder")  # + vocab.txt

Task checkpoints convert into the matching task model, head included: a
transformers `ElectraForSequenceClassification`, `ElectraForQuestionAnswering`
or `ElectraForTokenClassification` becomes an electra_tf task directory
(`save_task_model`: config, weights, vocab.txt, task.json with the label names
from `id2label`) that `evaluate`, `predict`, `export` and `serve` read, and an
electra_tf task directory becomes the matching transformers class with its
label names as `id2label`. A head is never dropped silently: where the target
format has no class for it (keras-hub presets hold encoders), conversion stops
with an error unless `model_kind="encoder"` asks for the encoder alone.
"""

import json
import logging
import os
import shutil

from electra_tf.checkpoint_formats.huggingface import detect_model_kind
from electra_tf.conversion.google_checkpoint import load_google_checkpoint
from electra_tf.conversion.huggingface import (
    load_huggingface,
    read_config,
    read_state_dict,
    save_huggingface,
)
from electra_tf.conversion.keras_hub import load_keras_hub, save_keras_hub
from electra_tf.models.model_io import load_pretrained, save_pretrained
from electra_tf.preprocessing.keras_hub_vocabulary import keras_hub_vocabulary
from electra_tf.tasks.task_models import task_of_class_name
from electra_tf.utils.atomic_directory import atomic_directory

logger = logging.getLogger(__name__)

SOURCES = ("huggingface", "google", "electra_tf", "keras_hub")
TARGETS = ("electra_tf", "huggingface", "keras_hub")
VOCAB_NAME = "vocab.txt"  # what fine-tuning looks for next to an encoder
MODEL_KINDS = ("encoder", "discriminator", "generator")
# transformers' task architectures, and the electra_tf task each converts to.
TASK_ARCHITECTURES = {
    "ElectraForSequenceClassification": "classify",
    "ElectraForQuestionAnswering": "qa",
    "ElectraForTokenClassification": "tag",
}
# task.json's max_seq_length for a converted checkpoint, which does not record
# one (transformers' run_glue / run_ner and run_qa defaults); flags override it.
TASK_SEQ_LENGTHS = {"classify": 128, "tag": 128, "qa": 384}
# State-dict prefixes of task heads: a checkpoint that holds one but whose
# config names no task architecture is refused rather than converted headless.
_TASK_HEAD_PREFIXES = ("classifier.", "qa_outputs.")


def _saved_class_name(path):
    """The class an electra_tf directory's config.json names, or None."""
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        return None
    with open(config_path) as f:
        try:
            return json.load(f).get("class_name")
        except (json.JSONDecodeError, AttributeError):
            return None


def detect_huggingface_kind(path):
    """"discriminator", "generator" or "encoder", from the heads a checkpoint holds."""
    read_config(path)  # checks that `path` is a checkpoint we read
    return detect_model_kind(read_state_dict(path))


def huggingface_task(path):
    """"classify", "qa" or "tag" for a transformers task checkpoint; None for the others.

    Read from config.json's `architectures`. A checkpoint with task-head
    weights but no task architecture is an error: which head it is, and so
    what converting it means, is not known.
    """
    _, _, raw = read_config(path)
    for architecture in raw.get("architectures") or []:
        if architecture in TASK_ARCHITECTURES:
            return TASK_ARCHITECTURES[architecture]
    heads = sorted({key.split(".")[0] for key in read_state_dict(path)
                    if key.startswith(_TASK_HEAD_PREFIXES)})
    if heads:
        raise ValueError(
            f"{path!r} holds task-head weights ({', '.join(heads)}) but its config.json names "
            f"no task architecture (architectures={raw.get('architectures')!r}); expected one "
            f"of {sorted(TASK_ARCHITECTURES)}. Add it to config.json to convert the task model, "
            "or pass model_kind='encoder' (--model encoder) to convert the encoder alone "
            "without its head."
        )
    return None


def _huggingface_lower_case(path):
    """tokenizer_config.json's do_lower_case, when the checkpoint has one; else None."""
    config_path = os.path.join(path, "tokenizer_config.json")
    if not os.path.isfile(config_path):
        return None
    with open(config_path) as f:
        try:
            value = json.load(f).get("do_lower_case")
        except (json.JSONDecodeError, AttributeError):
            return None
    return value if isinstance(value, bool) else None


def _convert_task_model(task, source, target, src, dst, overwrite, vocab_path, lower_case):
    """A task model from `src` (transformers or electra_tf) written as `target`, head included."""
    from electra_tf.conversion import (
        huggingface_classifier,
        huggingface_question_answering,
        huggingface_token_classifier,
    )
    from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    from electra_tf.tasks.task_model_io import read_task_info, save_task_model

    if target == "keras_hub":
        raise ValueError(
            f"{src!r} is a {task!r} task model, and keras-hub presets hold encoders only, so "
            "its head would be lost. Pass model_kind='encoder' (--model encoder) to convert "
            "the encoder alone, or convert --to electra_tf or huggingface to keep the head."
        )
    if source == "huggingface":
        if target != "electra_tf":
            raise ValueError(f"Converting a Hugging Face checkpoint --to {target!r}: expected "
                             "--to electra_tf or keras_hub.")
        loaders = {"classify": huggingface_classifier.load_huggingface_classifier,
                   "qa": huggingface_question_answering.load_huggingface_question_answering,
                   "tag": huggingface_token_classifier.load_huggingface_token_classifier}
        model = loaders[task](src)
        label_names = None if task == "qa" else huggingface_token_classifier.read_label_names(src)
        if task == "classify" and model.problem_type == "regression":
            label_names = None
        vocab_path, _ = _source_vocabulary(source, src, vocab_path, lower_case)
        if lower_case is None:
            lower_case = _huggingface_lower_case(src)
        tokenizer = ElectraTokenizer(vocab_path, lower_case=True if lower_case is None
                                     else lower_case)
        if tokenizer.vocab_size != model.encoder.vocab_size:
            raise ValueError(
                f"The vocabulary ({vocab_path or 'the packaged uncased BERT one'}) has "
                f"{tokenizer.vocab_size} tokens but {src!r}'s encoder {model.encoder.vocab_size}; "
                "put the checkpoint's vocab.txt next to its config.json or pass vocab_path "
                "(--vocab)."
            )
        extra = {"converted_from": os.path.abspath(src)}
        if task == "qa":  # the answer-window settings `electra-tf finetune qa` records
            import dataclasses

            from electra_tf.tasks.run_qa import QAConfig

            defaults = {field.name: field.default for field in dataclasses.fields(QAConfig)}
            extra.update({name: defaults[name] for name in (
                "doc_stride", "max_query_length", "n_best_size", "max_answer_length",
                "null_score_threshold")}, version_2=False)
        save_task_model(model, dst, task, tokenizer, TASK_SEQ_LENGTHS[task], label_names,
                        extra=extra, overwrite=overwrite)
        return model
    # electra_tf task directory -> transformers, or a copy of the directory.
    model = load_pretrained(src)
    info = read_task_info(src) or {}
    if target == "electra_tf":
        with atomic_directory(dst, overwrite=overwrite) as tmp:
            shutil.copytree(src, tmp, dirs_exist_ok=True)
        return model
    label_names = info.get("label_names")
    if task == "classify":
        huggingface_classifier.save_huggingface_classifier(model, dst, overwrite=overwrite,
                                                           label_names=label_names)
    elif task == "tag":
        huggingface_token_classifier.save_huggingface_token_classifier(
            model, dst, label_names=label_names, overwrite=overwrite)
    else:
        huggingface_question_answering.save_huggingface_question_answering(
            model, dst, overwrite=overwrite)
    return model


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

    >>> import tempfile, electra_tf
    >>> import numpy as np
    >>> base = tempfile.mkdtemp()
    >>> electra_tf.ElectraDiscriminator.from_preset("tiny").save_pretrained(base + "/tiny")
    >>> model = convert("electra_tf", "huggingface", base + "/tiny", base + "/tiny_hf")
    >>> sorted(os.listdir(base + "/tiny_hf"))
    ['config.json', 'model.safetensors']
    >>> with open(base + "/tiny_hf/config.json") as f:
    ...     json.load(f)["architectures"]
    ['ElectraForPreTraining']
    >>> back = convert("huggingface", "electra_tf", base + "/tiny_hf", base + "/back")
    >>> type(back).__name__, sorted(os.listdir(base + "/back"))
    ('ElectraDiscriminator', ['config.json', 'model.weights.h5'])
    >>> all(np.array_equal(a, b) for a, b in zip(model.get_weights(), back.get_weights()))
    True
    >>> convert("onnx", "electra_tf", base + "/tiny", base + "/out")
    Traceback (most recent call last):
    ...
    ValueError: Unknown source format 'onnx'; expected one of ('huggingface', 'google',
    'electra_tf', 'keras_hub').
    """
    if source not in SOURCES:
        raise ValueError(f"Unknown source format {source!r}; expected one of {SOURCES}.")
    if target not in TARGETS:
        raise ValueError(f"Unknown target format {target!r}; expected one of {TARGETS}.")
    if model_kind is not None and model_kind not in MODEL_KINDS:
        raise ValueError(f"Unknown model kind {model_kind!r}; expected one of {MODEL_KINDS}.")
    task = None
    if model_kind is None and source == "huggingface":
        task = huggingface_task(src)
    elif model_kind is None and source == "electra_tf":
        task = task_of_class_name(_saved_class_name(src))
    if task is not None:
        model = _convert_task_model(task, source, target, src, dst, overwrite, vocab_path,
                                    lower_case)
        logger.info("Wrote %s (%s, task %s) to %s", type(model).__name__, target, task, dst)
        return model
    if model_kind == "encoder" and source == "huggingface":
        _, _, raw = read_config(src)
        dropped = [name for name in raw.get("architectures") or [] if name in TASK_ARCHITECTURES]
        if dropped:
            logger.warning("Converting the encoder of %s only, as asked: its %s head is not "
                           "converted.", src, dropped[0])
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
