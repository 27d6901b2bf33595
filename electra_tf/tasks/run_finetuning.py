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
    classifier/       electra_tf format (`ElectraClassifier.from_pretrained`) + vocab.txt
                      and task.json, which `evaluate_classifier`/`predict_classifier` read
    classifier_hf/    with head="huggingface": `ElectraForSequenceClassification`
    logs/             TensorBoard: loss, accuracy and learning rate every `log_every` steps
    history.csv, learning_curves.png   the same per-step metrics, as a table and a picture
    results.json      the config, per-epoch training metrics, dev metrics

`evaluate_classifier(model_dir, file)` and `predict_classifier(model_dir,
inputs)` are `electra-tf evaluate|predict classify`.
"""

import dataclasses
import json
import logging
import os
import time

import numpy as np
import tf_keras as keras

from electra_tf.data.classification_dataset import (
    make_classification_dataset,
    read_classification_file,
)
from electra_tf.data.prediction_inputs import read_prediction_inputs
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.models.model_io import WEIGHTS_NAME, load_pretrained
from electra_tf.optimization.layerwise_decay_adamw import create_finetuning_optimizer
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.classification_metrics import compute_metrics
from electra_tf.tasks.electra_classifier import ElectraClassifier
from electra_tf.tasks.task_model_io import load_task_model, resolve_max_seq_length, save_task_model
from electra_tf.tasks.training_options import TrainingOptions, with_training_options
from electra_tf.utils.callbacks import TrainingLogger
from electra_tf.utils.plots import plot_learning_curves

logger = logging.getLogger(__name__)

VOCAB_NAME = "vocab.txt"


@dataclasses.dataclass
class FinetuningConfig(TrainingOptions):
    """What `run_finetuning` does: encoder, labelled files, task, training and outputs.

    >>> config = FinetuningConfig(encoder="checkpoints/electra-small", train="train.tsv",
    ...                           label_names=["negative", "positive"], epochs=2)
    >>> config.head, config.problem_type, config.max_seq_length, config.layer_decay
    ('electra', 'single_label', 128, 0.8)
    >>> FinetuningConfig(encoder="checkpoints/electra-small")
    Traceback (most recent call last):
    ...
    ValueError: FinetuningConfig needs `train`; received train=None.
    """

    encoder: str = None  # a Hugging Face or electra_tf model directory
    train: str = None  # CSV/TSV (with a header) or JSONL file
    dev: str = None  # evaluated after training; None: no evaluation
    output_dir: str = "finetune_output"
    text_column: str = "text"
    text_b_column: str = None  # set for sentence pairs
    label_column: str = "label"
    problem_type: str = "single_label"  # | multi_label | regression
    num_classes: int = None  # None: from label_names, else the largest train label + 1
    label_names: list = None
    head: str = "electra"  # | huggingface (also written as ElectraForSequenceClassification)
    vocab_path: str = None  # None: the encoder directory's vocab.txt, else the packaged one
    lower_case: bool = True
    max_seq_length: int = 128
    batch_size: int = 32
    epochs: int = 3
    learning_rate: float = 1e-4  # ELECTRA: 3e-4 Small, 1e-4 Base, 5e-5 Large
    layer_decay: float = 0.8  # ELECTRA: 0.8 Small/Base, 0.9 Large
    weight_decay: float = 0.01  # AdamW's decoupled decay; ELECTRA's GLUE recipe uses 0
    warmup_proportion: float = 0.1  # of the training steps, as in ELECTRA
    dropout_rate: float = 0.1
    errors: str = "raise"  # bad rows: "raise" or "skip" (and count)
    seed: int = 0
    log_every: int = 10  # steps between TensorBoard/CSV rows
    progress: bool = True  # Keras progress bar (else one line per epoch)

    def __post_init__(self):
        super().__post_init__()  # strategy, mixed_precision, gradient_accumulation_steps
        for name in ("encoder", "train"):
            if not getattr(self, name):
                raise ValueError(f"FinetuningConfig needs `{name}`; received {name}=None.")
        for name in ("max_seq_length", "batch_size", "epochs", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1; received {getattr(self, name)}.")


def load_encoder(path):
    """An `ElectraEncoder` from an electra_tf directory (encoder or discriminator) or a HF one.

    >>> import tempfile, electra_tf
    >>> path = tempfile.mkdtemp() + "/discriminator"
    >>> electra_tf.ElectraDiscriminator.from_preset("tiny").save_pretrained(path)
    >>> encoder = load_encoder(path)
    >>> type(encoder).__name__, encoder.num_layers
    ('ElectraEncoder', 2)
    """
    if os.path.isfile(os.path.join(path, WEIGHTS_NAME)):
        model = load_pretrained(path)
        encoder = model if isinstance(model, ElectraEncoder) else getattr(model, "encoder", None)
        if not isinstance(encoder, ElectraEncoder):
            raise ValueError(
                f"{path!r} holds a {type(model).__name__}; expected an ElectraEncoder or a "
                "model with an `encoder` (ElectraDiscriminator)."
            )
        return in_global_dtype_policy(encoder)
    return ElectraEncoder.from_huggingface(path)


def in_global_dtype_policy(encoder):
    """`encoder`, rebuilt with its weights in Keras' global dtype policy if its own differs.

    A saved config names the policy it was trained in; a fine-tuning job computes in
    its own (`TrainingOptions.mixed_precision`), so an encoder saved in float32 runs
    in bfloat16 under mixed_bfloat16 (and one saved in mixed_float16 in float32 without).
    """
    policy = keras.mixed_precision.global_policy().name
    if encoder.dtype_policy.name == policy:
        return encoder
    # embedding_layer None: built anew in `policy` (its saved config names the old one).
    rebuilt = ElectraEncoder.from_config(
        {**encoder.get_config(), "dtype": policy, "embedding_layer": None})
    rebuilt.set_weights(encoder.get_weights())
    return rebuilt


def load_encoder_and_tokenizer(encoder_path, vocab_path=None, lower_case=True):
    """The encoder of `encoder_path` and a tokenizer whose vocabulary fits it.

    `vocab_path` None: the encoder directory's vocab.txt if it has one, else
    the packaged uncased BERT vocabulary.
    """
    encoder = load_encoder(encoder_path)
    if vocab_path is None and os.path.isfile(os.path.join(encoder_path, VOCAB_NAME)):
        vocab_path = os.path.join(encoder_path, VOCAB_NAME)
    tokenizer = ElectraTokenizer(vocab_path, lower_case=lower_case)
    if tokenizer.vocab_size != encoder.vocab_size:
        raise ValueError(
            f"The vocabulary has {tokenizer.vocab_size} tokens but the encoder "
            f"{encoder.vocab_size}; pass the encoder's vocab.txt as vocab_path."
        )
    return encoder, tokenizer


def finetuning_callbacks(output_dir, log_every):
    """Per-step TensorBoard logs (output_dir/logs) and output_dir/history.csv."""
    return [TrainingLogger(os.path.join(output_dir, "logs"),
                           os.path.join(output_dir, "history.csv"), log_every=log_every)]


def write_learning_curves(output_dir):
    """output_dir/history.csv → output_dir/learning_curves.png (None when nothing was logged)."""
    csv_path = os.path.join(output_dir, "history.csv")
    if not os.path.isfile(csv_path):
        return None
    return plot_learning_curves(csv_path, os.path.join(output_dir, "learning_curves.png"))


def write_json_atomically(value, path):
    """Writes `value` as JSON to `path` via a temporary file and a rename."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    os.replace(temporary, path)


def write_json_lines_atomically(rows, path):
    """Writes one JSON object per line to `path` via a temporary file and a rename."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(temporary, path)


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
        "config": dataclasses.asdict(config),
        "num_classes": num_classes,
        "train_examples": len(train_examples["text"]),
        "train_skipped": train_skipped,
        "train_seconds": round(time.perf_counter() - start, 1),
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
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
        classifier, os.path.join(config.output_dir, "classifier"), "classify", tokenizer,
        config.max_seq_length, label_names, overwrite=True,
        extra={"text_column": config.text_column, "text_b_column": config.text_b_column,
               "label_column": config.label_column},
    )
    if config.head == "huggingface":
        classifier.save_huggingface(os.path.join(config.output_dir, "classifier_hf"),
                                    overwrite=True, label_names=label_names)
    write_learning_curves(config.output_dir)
    write_json_atomically(summary, os.path.join(config.output_dir, "results.json"))
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
        write_json_lines_atomically(predictions, output_path)
    return predictions


def format_summary(summary):
    """A few lines for the terminal: data, time, and dev metrics.

    >>> print(format_summary({
    ...     "train_examples": 6920, "train_seconds": 412.3, "train_skipped": {"empty_text": 2},
    ...     "history": {"loss": [0.52, 0.31]}, "dev": {"accuracy": 0.8807},
    ...     "config": {"output_dir": "runs/sst2"}}))
    trained on 6920 examples in 412s (skipped: 2)
    final training loss 0.3100
    dev accuracy: 0.8807
    wrote runs/sst2/classifier (+ logs, learning_curves.png, results.json)
    """
    lines = [
        f"trained on {summary['train_examples']} examples in {summary['train_seconds']:.0f}s "
        f"(skipped: {sum(summary['train_skipped'].values())})",
        f"final training loss {summary['history']['loss'][-1]:.4f}",
    ]
    for name, value in summary.get("dev", {}).items():
        lines.append(f"dev {name}: {value:.4f}")
    lines.append(f"wrote {summary['config']['output_dir']}/classifier (+ logs, "
                 "learning_curves.png, results.json)")
    return "\n".join(lines)
