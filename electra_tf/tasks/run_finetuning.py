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
    classifier/       electra_tf format (`ElectraClassifier.from_pretrained`)
    classifier_hf/    with head="huggingface": `ElectraForSequenceClassification`
    results.json      the config, per-epoch training metrics, dev metrics
"""

import dataclasses
import json
import logging
import os
import time

import tf_keras as keras

from electra_tf.data.classification_dataset import (
    make_classification_dataset,
    read_classification_file,
)
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.models.model_io import WEIGHTS_NAME, load_pretrained
from electra_tf.optimization.layerwise_decay_adamw import create_finetuning_optimizer
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.classification_metrics import compute_metrics
from electra_tf.tasks.electra_classifier import ElectraClassifier

logger = logging.getLogger(__name__)

VOCAB_NAME = "vocab.txt"


@dataclasses.dataclass
class FinetuningConfig:
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
    dropout_rate: float = 0.1
    errors: str = "raise"  # bad rows: "raise" or "skip" (and count)
    seed: int = 0

    def __post_init__(self):
        for name in ("encoder", "train"):
            if not getattr(self, name):
                raise ValueError(f"FinetuningConfig needs `{name}`; received {name}=None.")
        for name in ("max_seq_length", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1; received {getattr(self, name)}.")


def load_encoder(path):
    """An `ElectraEncoder` from an electra_tf directory (encoder or discriminator) or a HF one."""
    if os.path.isfile(os.path.join(path, WEIGHTS_NAME)):
        model = load_pretrained(path)
        encoder = model if isinstance(model, ElectraEncoder) else getattr(model, "encoder", None)
        if not isinstance(encoder, ElectraEncoder):
            raise ValueError(
                f"{path!r} holds a {type(model).__name__}; expected an ElectraEncoder or a "
                "model with an `encoder` (ElectraDiscriminator)."
            )
        return encoder
    return ElectraEncoder.from_huggingface(path)


def run_finetuning(config):
    """Fine-tunes a classifier as `config` says; returns the summary written to results.json."""
    encoder = load_encoder(config.encoder)
    vocab_path = config.vocab_path
    if vocab_path is None and os.path.isfile(os.path.join(config.encoder, VOCAB_NAME)):
        vocab_path = os.path.join(config.encoder, VOCAB_NAME)
    tokenizer = ElectraTokenizer(vocab_path, lower_case=config.lower_case)
    if tokenizer.vocab_size != encoder.vocab_size:
        raise ValueError(
            f"The vocabulary has {tokenizer.vocab_size} tokens but the encoder "
            f"{encoder.vocab_size}; pass the encoder's vocab.txt as vocab_path."
        )
    read_options = dict(
        text_column=config.text_column,
        text_b_column=config.text_b_column,
        label_column=config.label_column,
        problem_type=config.problem_type,
        label_names=config.label_names,
        errors=config.errors,
    )
    train_examples, train_skipped = read_classification_file(
        config.train, num_classes=config.num_classes, **read_options
    )
    num_classes = train_examples.get("num_classes", config.num_classes or 1)
    train = make_classification_dataset(
        train_examples, tokenizer, config.max_seq_length, config.batch_size,
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
        )
    )
    start = time.perf_counter()
    history = classifier.fit(train, epochs=config.epochs, verbose=2)
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
        dev = make_classification_dataset(
            dev_examples, tokenizer, config.max_seq_length, config.batch_size
        )
        logits = classifier.predict(dev.map(lambda features, labels: features), verbose=0)
        labels = [labels for _, labels in dev.unbatch().as_numpy_iterator()]
        summary["dev"] = compute_metrics(labels, logits, config.problem_type)

    os.makedirs(config.output_dir, exist_ok=True)
    classifier.save_pretrained(os.path.join(config.output_dir, "classifier"), overwrite=True)
    if config.head == "huggingface":
        classifier.save_huggingface(os.path.join(config.output_dir, "classifier_hf"),
                                    overwrite=True)
    with open(os.path.join(config.output_dir, "results.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def format_summary(summary):
    """A few lines for the terminal: data, time, and dev metrics."""
    lines = [
        f"trained on {summary['train_examples']} examples in {summary['train_seconds']:.0f}s "
        f"(skipped: {sum(summary['train_skipped'].values())})",
        f"final training loss {summary['history']['loss'][-1]:.4f}",
    ]
    for name, value in summary.get("dev", {}).items():
        lines.append(f"dev {name}: {value:.4f}")
    lines.append(f"wrote {summary['config']['output_dir']}/classifier (+ results.json)")
    return "\n".join(lines)
