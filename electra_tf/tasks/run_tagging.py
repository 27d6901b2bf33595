"""The tagging jobs behind `electra-tf finetune|evaluate|predict tag`.

    summary = run_tagging(TaggingConfig(encoder="checkpoints/electra-small",
                                        train="train.conll", dev="dev.conll",
                                        output_dir="runs/ner"))
    metrics = evaluate_tagger("runs/ner/model", "test.conll")
    predictions = predict_tags("runs/ner/model", "sentences.txt", "tags.jsonl")

Fine-tuning: CoNLL files (`read_conll_file`) → `ElectraTokenClassifier` with
ELECTRA's optimizer (AdamW, layer-wise decay, 10% warmup, linear decay).
Writes, under `output_dir`:
    model/                the model + vocab.txt + task.json (`load_task_model`; earlier
                          versions wrote tagger/, still read)
    model_hf/             `ElectraForTokenClassification`, tag names in id2label
    logs/                 TensorBoard: loss, accuracy, learning rate per step
    history.csv, learning_curves.png, results.json
Evaluation is entity-level F1 with seqeval's semantics (`tagging_metrics`),
on words: a word's tag is the arg-max at its first word piece; words
truncated away are tagged "O" and counted.
"""

import dataclasses
import os
import time

import numpy as np
import tf_keras as keras

from electra_tf.data.conll_dataset import (
    first_piece_positions,
    make_tagging_dataset,
    read_conll_file,
)
from electra_tf.data.prediction_inputs import read_prediction_inputs, split_words
from electra_tf.optimization.layerwise_decay_adamw import create_finetuning_optimizer
from electra_tf.tasks.electra_token_classifier import ElectraTokenClassifier
from electra_tf.tasks.finetuning_job import (
    HUGGINGFACE_DIRNAME,
    finetuning_callbacks,
    format_summary,
    load_encoder_and_tokenizer,
    training_history,
    write_learning_curves,
)
from electra_tf.tasks.finetuning_options import FinetuningDataOptions
from electra_tf.tasks.tagging_metrics import OUTSIDE, get_entities, tagging_metrics
from electra_tf.tasks.task_model_io import (
    MODEL_DIRNAME,
    load_task_model,
    resolve_max_seq_length,
    save_task_model,
)
from electra_tf.tasks.training_options import with_training_options
from electra_tf.utils.config_fields import option
from electra_tf.utils.json_files import write_json, write_json_lines


@dataclasses.dataclass(kw_only=True)
class TaggingConfig(FinetuningDataOptions):
    """What `run_tagging` does: encoder, CoNLL files, tag column, training and outputs.

    The encoder, files, optimizer and logging settings are the shared
    `FinetuningDataOptions`. A tag column given as text on the command line
    becomes a column index:

    >>> TaggingConfig(encoder="checkpoints/electra-small", train="train.conll",
    ...               label_column="-1").label_column
    -1
    >>> TaggingConfig(train="train.conll")
    Traceback (most recent call last):
    ...
    ValueError: TaggingConfig needs `encoder`; received encoder=None.
    """

    train: str = option(None, "training file in CoNLL format")
    dev: str = option(None, "evaluation file, same format (entity F1 after training)")
    output_dir: str = option("tagging_output", "output directory")  # each job its own folder
    label_column: object = option(-1, "tag column: an index (-1: the last, NER in CoNLL-2003) "
                                  "or ner, chunk, pos")
    dropout_rate: float = option(0.1, "dropout before the tagging layer")

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.label_column, str) and self.label_column.lstrip("-").isdigit():
            self.label_column = int(self.label_column)  # from the command line


def _word_tags(logits, positions, label_names):
    """(T, num_classes) logits of one sentence → one tag per word ("O" when truncated)."""
    best = logits.argmax(-1)  # (T,)
    return [label_names[best[p]] if p >= 0 else OUTSIDE for p in positions]


def tag_sentences(model, tokenizer, words, label_names, max_seq_length, batch_size=32):
    """Tags sentences of words: `(tags, probabilities, truncated word count)`.

    Args:
        model: an `ElectraTokenClassifier`.
        tokenizer: its `ElectraTokenizer`.
        words: a list of sentences, each a list of words.
        label_names: tag names in id order.
        max_seq_length: the packed length.
        batch_size: sentences per batch.

    Returns:
        `tags` (a tag per word), `probabilities` (the chosen tag's softmax
        probability per word; None for words truncated away, tagged "O") and
        the number of such truncated words.
    """
    data = make_tagging_dataset({"words": words}, tokenizer, max_seq_length, batch_size)
    logits = model.predict(data.map(lambda features, labels: features), verbose=0)  # (N, T, L)
    positions = first_piece_positions(tokenizer, words, max_seq_length)
    tags, probabilities = [], []
    for sentence_logits, sentence_positions in zip(logits, positions):
        tags.append(_word_tags(sentence_logits, sentence_positions, label_names))
        shifted = np.exp(sentence_logits - sentence_logits.max(-1, keepdims=True))
        softmax = shifted / shifted.sum(-1, keepdims=True)  # (T, L)
        probabilities.append([float(softmax[p].max()) if p >= 0 else None
                              for p in sentence_positions])
    truncated = sum(p < 0 for sentence in positions for p in sentence)
    return tags, probabilities, truncated


def _evaluate(model, tokenizer, examples, label_names, max_seq_length, batch_size):
    predicted, _, truncated = tag_sentences(
        model, tokenizer, examples["words"], label_names, max_seq_length, batch_size)
    metrics = tagging_metrics(examples["tags"], predicted)
    metrics["truncated_words"] = int(truncated)
    metrics["sentences"] = len(examples["words"])
    return metrics


@with_training_options
def run_tagging(config):
    """Fine-tunes a tagger as `config` says; returns the summary written to results.json.

    The encoder is read first, so a wrong directory fails before any training:

    >>> import tempfile
    >>> missing = tempfile.mkdtemp() + "/no_encoder"
    >>> run_tagging(TaggingConfig(encoder=missing, train="train.conll"))
    Traceback (most recent call last):
    ...
    ValueError: Expected a Hugging Face checkpoint directory or a Hub model id such as
    'google/electra-small-discriminator'; '.../no_encoder' is not one.
    """
    encoder, tokenizer = load_encoder_and_tokenizer(
        config.encoder, config.vocab_path, config.lower_case)
    train_examples, train_skipped = read_conll_file(
        config.train, label_column=config.label_column, errors=config.errors)
    label_names = train_examples["label_names"]
    if len(label_names) < 2:
        raise ValueError(
            f"{config.train} has only the tag(s) {label_names}; a tagger needs at least 2. Is "
            f"label_column={config.label_column!r} the tag column?"
        )
    train = make_tagging_dataset(train_examples, tokenizer, config.max_seq_length,
                                 config.examples_per_update, shuffle=True, seed=config.seed)
    keras.utils.set_random_seed(config.seed)
    tagger = ElectraTokenClassifier(encoder, num_classes=len(label_names),
                                    dropout_rate=config.dropout_rate)
    steps = int(np.ceil(len(train_examples["words"]) / config.examples_per_update)) * config.epochs
    tagger.compile(optimizer=create_finetuning_optimizer(
        config.learning_rate, steps, num_layers=encoder.num_layers,
        layer_decay=config.layer_decay, warmup_proportion=config.warmup_proportion,
        weight_decay=config.weight_decay),
        gradient_accumulation_steps=config.gradient_accumulation_steps)
    os.makedirs(config.output_dir, exist_ok=True)
    start = time.perf_counter()
    history = tagger.fit(
        train, epochs=config.epochs, verbose=1 if config.progress else 2,
        callbacks=finetuning_callbacks(config.output_dir, min(config.log_every, steps)),
    )
    summary = {
        "task": "tag",
        "config": dataclasses.asdict(config),
        "label_names": label_names,
        "train_examples": len(train_examples["words"]),
        "train_sentences": len(train_examples["words"]),  # the key of earlier versions
        "train_skipped": train_skipped,
        "train_seconds": round(time.perf_counter() - start, 1),
        "history": training_history(history),
        "outputs": [MODEL_DIRNAME, HUGGINGFACE_DIRNAME, "logs", "learning_curves.png",
                    "results.json"],
    }
    if config.dev:
        dev_examples, summary["dev_skipped"] = read_conll_file(
            config.dev, label_column=config.label_column, label_names=label_names,
            errors=config.errors)
        summary["dev"] = _evaluate(tagger, tokenizer, dev_examples, label_names,
                                   config.max_seq_length, config.batch_size)

    save_task_model(tagger, os.path.join(config.output_dir, MODEL_DIRNAME), "tag", tokenizer,
                    config.max_seq_length, label_names, overwrite=True)
    tagger.save_huggingface(os.path.join(config.output_dir, HUGGINGFACE_DIRNAME),
                            label_names=label_names, overwrite=True)
    write_learning_curves(config.output_dir)
    write_json(os.path.join(config.output_dir, "results.json"), summary)
    return summary


def evaluate_tagger(model_dir, data_path, label_column=-1, batch_size=32, errors="raise",
                    max_seq_length=None):
    """Entity-level P/R/F1 (seqeval semantics) and word accuracy of a tagger on a CoNLL file.

    Tags outside the model's label names are bad sentences (`errors`).
    Returns the metrics, with "per_type", "sentences", "truncated_words"
    and "skipped".
    """
    model, tokenizer, task = load_task_model(model_dir, "tag")
    max_seq_length = resolve_max_seq_length(task, max_seq_length, model)
    examples, skipped = read_conll_file(data_path, label_column=label_column,
                                        label_names=task["label_names"], errors=errors)
    metrics = _evaluate(model, tokenizer, examples, task["label_names"],
                        max_seq_length, batch_size)
    metrics["skipped"] = skipped
    return metrics


def predict_tags(model_dir, input_path, output_path=None, batch_size=32, max_seq_length=None):
    """Tags each text of `input_path` (plain text lines, or JSON lines with "text" or "tokens").

    Plain text is split into words with `split_words`. Returns (and, with
    `output_path`, writes as JSON lines) one dict per input:
    `{"tokens", "tags", "probabilities", "entities": [{"type", "start", "end", "text"}]}`
    (start/end are word indices, end inclusive).
    """
    model, tokenizer, task = load_task_model(model_dir, "tag")
    max_seq_length = resolve_max_seq_length(task, max_seq_length, model)
    inputs = read_prediction_inputs(input_path, allow_pairs=False, allow_tokens=True)
    words = [item.get("tokens") or split_words(item["text"]) for item in inputs]
    empty = [number for number, sentence in enumerate(words) if not sentence]
    if empty:
        raise ValueError(f"{input_path}: input(s) {empty} have no words to tag.")
    tags, probabilities, _ = tag_sentences(model, tokenizer, words, task["label_names"],
                                           max_seq_length, batch_size)
    predictions = []
    for sentence, sentence_tags, sentence_probabilities in zip(words, tags, probabilities):
        entities = [{"type": type_, "start": start, "end": end,
                     "text": " ".join(sentence[start:end + 1])}
                    for type_, start, end in get_entities(sentence_tags)]
        predictions.append({"tokens": sentence, "tags": sentence_tags,
                            "probabilities": sentence_probabilities, "entities": entities})
    if output_path:
        write_json_lines(output_path, predictions)
    return predictions


# The summary formatter every fine-tuning job shares, under the name it had here.
format_tagging_summary = format_summary


def format_tagging_metrics(metrics, prefix=""):
    """Entity F1/precision/recall, word accuracy, and F1 per entity type.

    >>> print(format_tagging_metrics({
    ...     "f1": 0.9, "precision": 0.92, "recall": 0.881, "accuracy": 0.975,
    ...     "per_type": {"PER": {"f1": 0.95, "support": 20}, "LOC": {"f1": 0.8, "support": 5}}},
    ...     prefix="dev "))
    dev f1: 0.9000
    dev precision: 0.9200
    dev recall: 0.8810
    dev accuracy: 0.9750
    dev f1[PER]: 0.9500 (support 20)
    dev f1[LOC]: 0.8000 (support 5)
    """
    lines = [f"{prefix}{name}: {metrics[name]:.4f}"
             for name in ("f1", "precision", "recall", "accuracy")]
    for type_, scores in metrics["per_type"].items():
        lines.append(f"{prefix}f1[{type_}]: {scores['f1']:.4f} (support {scores['support']})")
    return "\n".join(lines)
