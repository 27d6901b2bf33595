"""The fine-tuning job behind `electra-tf finetune`: labelled text files in, classifier out.

    config = FinetuningConfig(encoder="checkpoints/electra-small-discriminator",
                              train="train.tsv", dev="dev.tsv", output_dir="runs/sst2")
    summary = run_finetuning(config)

The encoder comes from a Hugging Face directory (ElectraModel,
ElectraForPreTraining, BertModel, ... : `ElectraEncoder.from_huggingface`) or
an electra_tf one written by `save_pretrained` (an encoder, or a
discriminator whose encoder is taken). Its vocab.txt is used when the
directory has one. Training: `ElectraClassifier` + `create_finetuning_optimizer`
(AdamW, layer-wise decay, 10% warmup, linear decay).

Writes, under `output_dir`:
    model/            electra_tf format (`ElectraClassifier.from_pretrained`) + vocab.txt
                      and task.json, which `evaluate_classifier`/`predict_classifier` read
                      (earlier versions wrote classifier/, still read)
    model_hf/         with head="huggingface": `ElectraForSequenceClassification`
    logs/             TensorBoard: loss, accuracy and learning rate every `log_every` steps
    history.csv, learning_curves.png   the same per-step metrics, as a table and a picture
    results.json      the config, per-epoch training metrics, dev metrics

`evaluate_classifier(model_dir, file)` and `predict_classifier(model_dir,
inputs)` are `electra-tf evaluate|predict classify`; `model_dir` may be the
run's `output_dir`. The pieces every fine-tuning job shares live in
finetuning_options.py (settings) and finetuning_job.py (encoder loading,
logging, summaries); they are importable from here too.
"""

import dataclasses
import logging
import os
import time
import warnings

import numpy as np
import tf_keras as keras

from electra_tf.data.classification_dataset import (
    make_classification_dataset,
    read_classification_file,
)
from electra_tf.data.prediction_inputs import read_prediction_inputs
from electra_tf.optimization.layerwise_decay_adamw import create_finetuning_optimizer
from electra_tf.tasks.classification_metrics import compute_metrics
from electra_tf.tasks.electra_classifier import HEADS, PROBLEM_TYPES, ElectraClassifier
# The shared kit, importable from here as before it moved to finetuning_job.py.
from electra_tf.tasks.finetuning_job import (  # noqa: F401
    HUGGINGFACE_DIRNAME,
    finetuning_callbacks,
    format_summary,
    in_global_dtype_policy,
    load_encoder,
    load_encoder_and_tokenizer,
    training_history,
    write_learning_curves,
)
from electra_tf.tasks.finetuning_options import FinetuningDataOptions
from electra_tf.tasks.task_model_io import (  # noqa: F401 - VOCAB_NAME: an old import path
    MODEL_DIRNAME,
    VOCAB_NAME,
    load_task_model,
    resolve_max_seq_length,
    save_task_model,
)
from electra_tf.tasks.training_options import with_training_options
from electra_tf.utils.config_fields import option
from electra_tf.utils.json_files import write_json, write_json_lines

logger = logging.getLogger(__name__)


@dataclasses.dataclass(kw_only=True)
class FinetuningConfig(FinetuningDataOptions):
    """What `run_finetuning` does: encoder, labelled files, task, training and outputs.

    The encoder, files, packed length, optimizer and logging settings are the
    shared `FinetuningDataOptions`; these are the classifier's own.

    >>> config = FinetuningConfig(encoder="checkpoints/electra-small", train="train.tsv",
    ...                           label_names=["negative", "positive"], epochs=2)
    >>> config.head, config.problem_type, config.max_seq_length
    ('electra', 'single_label', 128)
    >>> recipe = FinetuningConfig(encoder="checkpoints/electra-small", train="train.tsv")
    >>> recipe.learning_rate, recipe.layer_decay, recipe.epochs, recipe.batch_size  # the recipe
    (0.0002, 0.9, 3, 32)
    >>> FinetuningConfig(encoder="checkpoints/electra-small")
    Traceback (most recent call last):
    ...
    ValueError: FinetuningConfig needs `train`; received train=None.
    """

    train: str = option(None, "training file: .csv/.tsv (with a header) or .jsonl")
    text_column: str = option("text", "the text column")
    text_b_column: str = option(None, "second text column, for sentence pairs")
    label_column: str = option("label", "the label column")
    problem_type: str = option("single_label", "what the labels are", choices=PROBLEM_TYPES)
    num_classes: int = option(None, "number of classes (default: from --label-names, else the "
                              "largest training label + 1)")
    label_names: list = option(None, "comma-separated class names in id order, e.g. "
                               "negative,positive")
    head: str = option("electra", "electra: ELECTRA's head; huggingface: transformers' "
                       "(also written as ElectraForSequenceClassification to OUTPUT_DIR/model_hf)",
                       choices=HEADS)
    dropout_rate: float = option(0.1, "dropout before the classification layer")
    # The classification recipe, one for the CLI, the README, examples/finetune_sentiment.py and
    # benchmarks/finetune_sentiment.py (tests/test_recipes.py holds them together): 2e-4 with
    # layer decay 0.9 fine-tuned the pretrained MiniLM (6 x 384) to the README's 0.8511 on the
    # packaged movie reviews; an earlier run at 1e-4 / 0.8 (the shared default, ELECTRA-Base's),
    # 64 pieces and 2 epochs, reached 0.8333 (its results file was not kept).
    # `finetune glue` keeps the paper's per-size rates.
    learning_rate: float = option(2e-4, "peak learning rate (measured on movie reviews with "
                                  "MiniLM 6 x 384; ELECTRA's GLUE: 3e-4 Small, 1e-4 Base)")
    layer_decay: float = option(0.9, "layer-wise learning-rate decay")


@with_training_options
def run_finetuning(config, train_examples=None):
    """Fine-tunes a classifier as `config` says; returns the summary written to results.json.

    `train_examples`: in-memory training examples (`{"text", ["text_b"], "label"}` plus
    "num_classes" for classification, as `read_classification_file` or
    `read_tfds_classification` return them) used instead of reading `config.train`, which
    then only names their source in results.json (e.g. "tfds:glue/cola:train").

    The encoder is read first, so a wrong directory fails before any training:

    >>> import tempfile
    >>> missing = tempfile.mkdtemp() + "/no_encoder"
    >>> run_finetuning(FinetuningConfig(encoder=missing, train="train.tsv"))
    Traceback (most recent call last):
    ...
    ValueError: Expected a Hugging Face checkpoint directory or a Hub model id such as
    'google/electra-small-discriminator'; '.../no_encoder' is not one.
    """
    encoder, tokenizer = load_encoder_and_tokenizer(
        config.encoder, config.vocab_path, config.lower_case)
    read_options = dict(
        text_column=config.text_column,
        text_b_column=config.text_b_column,
        label_column=config.label_column,
        problem_type=config.problem_type,
        label_names=config.label_names,
        errors=config.errors,
    )
    if train_examples is None:
        train_examples, train_skipped = read_classification_file(
            config.train, num_classes=config.num_classes, **read_options
        )
    else:
        train_skipped = {}
    num_classes = train_examples.get("num_classes", config.num_classes or 1)
    train = make_classification_dataset(
        train_examples, tokenizer, config.max_seq_length, config.examples_per_update,
        shuffle=True, seed=config.seed,
    )
    keras.utils.set_random_seed(config.seed)
    classifier = ElectraClassifier(
        encoder,
        num_classes=num_classes,
        head=config.head,
        problem_type=config.problem_type,
        dropout_rate=config.dropout_rate,
    )
    steps = int(train.cardinality()) * config.epochs
    classifier.compile(
        optimizer=create_finetuning_optimizer(
            config.learning_rate, steps, num_layers=encoder.num_layers,
            layer_decay=config.layer_decay,
            warmup_proportion=config.warmup_proportion,
            weight_decay=config.weight_decay,
        ),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
    )
    os.makedirs(config.output_dir, exist_ok=True)
    start = time.perf_counter()
    history = classifier.fit(
        train, epochs=config.epochs, verbose=1 if config.progress else 2,
        callbacks=finetuning_callbacks(config.output_dir, min(config.log_every, steps)),
    )
    summary = {
        "task": "classify",
        "config": dataclasses.asdict(config),
        "num_classes": num_classes,
        "train_examples": len(train_examples["text"]),
        "train_skipped": train_skipped,
        "train_seconds": round(time.perf_counter() - start, 1),
        "history": training_history(history),
        "outputs": [MODEL_DIRNAME, "logs", "learning_curves.png", "results.json"],
    }
    if config.dev:
        dev_examples, summary["dev_skipped"] = read_classification_file(
            config.dev, num_classes=num_classes if config.problem_type != "regression" else None,
            **read_options,
        )
        summary["dev"] = _classification_metrics(
            classifier, tokenizer, dev_examples, config.max_seq_length, config.batch_size,
            config.problem_type)

    label_names = config.label_names
    if label_names is None and config.problem_type != "regression":
        label_names = [str(i) for i in range(num_classes)]
    save_task_model(
        classifier, os.path.join(config.output_dir, MODEL_DIRNAME), "classify", tokenizer,
        config.max_seq_length, label_names, overwrite=True,
        extra={"text_column": config.text_column, "text_b_column": config.text_b_column,
               "label_column": config.label_column},
    )
    if config.head == "huggingface":
        classifier.save_huggingface(os.path.join(config.output_dir, HUGGINGFACE_DIRNAME),
                                    overwrite=True, label_names=label_names)
        summary["outputs"].insert(1, HUGGINGFACE_DIRNAME)
    write_learning_curves(config.output_dir)
    write_json(os.path.join(config.output_dir, "results.json"), summary)
    return summary


def _classification_metrics(classifier, tokenizer, examples, max_seq_length, batch_size,
                            problem_type):
    data = make_classification_dataset(examples, tokenizer, max_seq_length, batch_size)
    logits = classifier.predict(data.map(lambda features, labels: features), verbose=0)
    labels = [labels for _, labels in data.unbatch().as_numpy_iterator()]
    return compute_metrics(labels, logits, problem_type)


def evaluate_classifier(model_dir, data_path, text_column=None, text_b_column=None,
                        label_column=None, batch_size=32, errors="raise", max_seq_length=None):
    """Metrics of a fine-tuned classifier (a `finetune classify` output) on a labelled file.

    Columns default to the ones the model was fine-tuned with (task.json's
    "text_column", "text_b_column", "label_column"; else text, label); labels are
    class names or ids as in training; `max_seq_length` None is the one it was
    fine-tuned at (task.json's). Returns the metrics of
    `classification_metrics.compute_metrics` plus "examples" and "skipped".
    """
    classifier, tokenizer, task = load_task_model(model_dir, "classify")
    problem_type = classifier.problem_type
    label_names = task["label_names"]
    examples, skipped = read_classification_file(
        data_path,
        text_column=text_column or task.get("text_column") or "text",
        text_b_column=text_b_column or task.get("text_b_column"),
        label_column=label_column or task.get("label_column") or "label",
        problem_type=problem_type,
        num_classes=None if problem_type == "regression" else classifier.num_classes,
        label_names=label_names if label_names and problem_type != "regression" else None,
        errors=errors,
    )
    max_seq_length = resolve_max_seq_length(task, max_seq_length, classifier)
    metrics = _classification_metrics(classifier, tokenizer, examples, max_seq_length,
                                      batch_size, problem_type)
    metrics["examples"] = len(examples["text"])
    metrics["skipped"] = skipped
    return metrics


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    shifted = np.exp(x - x.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def predict_classifier(model_dir, input_path, output_path=None, batch_size=32,
                       max_seq_length=None):
    """Classifies each text of `input_path` (plain text lines, or JSON lines with "text"
    and, for a pair model (task.json has a "text_b_column"), "text_b").

    Returns (and, with `output_path`, writes as JSON lines) one dict per
    input: single-label `{"text", "label", "probabilities": {name: p}}`,
    multi-label `{"text", "labels": [names with p > 0.5], "probabilities"}`,
    regression `{"text", "score"}` (or "scores" for several targets).
    `max_seq_length` None is the one it was fine-tuned at (task.json's).
    """
    classifier, tokenizer, task = load_task_model(model_dir, "classify")
    max_seq_length = resolve_max_seq_length(task, max_seq_length, classifier)
    pair = bool(task.get("text_b_column"))
    inputs = read_prediction_inputs(input_path, allow_pairs=pair)
    missing = [number for number, item in enumerate(inputs) if pair and "text_b" not in item]
    if missing:
        raise ValueError(
            f"{input_path}: the model classifies sentence pairs, and input(s) {missing[:5]} "
            "have no \"text_b\"; write JSON lines {\"text\": ..., \"text_b\": ...}."
        )
    examples = {"text": [item["text"] for item in inputs], "label": [0] * len(inputs)}
    if pair:
        examples["text_b"] = [item["text_b"] for item in inputs]
    data = make_classification_dataset(examples, tokenizer, max_seq_length, batch_size)
    logits = classifier.predict(data.map(lambda features, labels: features), verbose=0)
    problem_type, names = classifier.problem_type, task["label_names"]
    predictions = []
    for item, row in zip(inputs, logits):
        prediction = dict(item)
        if problem_type == "single_label":
            probabilities = _softmax(row)
            prediction["label"] = names[int(row.argmax())]
            prediction["probabilities"] = dict(zip(names, map(float, probabilities)))
        elif problem_type == "multi_label":
            probabilities = _sigmoid(row)
            prediction["labels"] = [n for n, p in zip(names, probabilities) if p > 0.5]
            prediction["probabilities"] = dict(zip(names, map(float, probabilities)))
        elif len(row) == 1:
            prediction["score"] = float(row[0])
        else:
            prediction["scores"] = [float(v) for v in row]
        predictions.append(prediction)
    if output_path:
        write_json_lines(output_path, predictions)
    return predictions


def write_json_atomically(value, path):
    """Deprecated: `electra_tf.utils.json_files.write_json(path, value)` (path first)."""
    warnings.warn("write_json_atomically(value, path) is deprecated; use "
                  "electra_tf.utils.json_files.write_json(path, value).", DeprecationWarning,
                  stacklevel=2)
    write_json(path, value)


def write_json_lines_atomically(rows, path):
    """Deprecated: `electra_tf.utils.json_files.write_json_lines(path, rows)` (path first)."""
    warnings.warn("write_json_lines_atomically(rows, path) is deprecated; use "
                  "electra_tf.utils.json_files.write_json_lines(path, rows).", DeprecationWarning,
                  stacklevel=2)
    write_json_lines(path, rows)
