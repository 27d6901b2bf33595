"""The question-answering job behind `electra-tf finetune|evaluate|predict qa`.

    summary = run_qa(QAConfig(encoder="checkpoints/electra-small-discriminator",
                              train="train-v1.1.json", dev="dev-v1.1.json",
                              output_dir="runs/squad"))
    metrics = evaluate_qa("runs/squad/model", "dev-v1.1.json")["metrics"]
    answers = predict_qa("runs/squad/model", [{"question": ..., "context": ...}])

Training follows google-research/electra's SQuAD recipe: windows of 384
word pieces, stride 128, questions up to 64; AdamW with layer-wise
learning-rate decay (0.8), 10% warmup and linear decay, 2 epochs.
`train`/`dev` are official SQuAD JSON files, or "tfds:squad/v1.1" /
"tfds:squad/v2.0" for tensorflow-datasets (split "train" / "validation").
SQuAD 2.0 (is_impossible questions) is detected from the training data.

Writes, under `output_dir`:
    model/                 `ElectraQuestionAnswering.from_pretrained`, + vocab.txt and
                           task.json ({"task": "qa"}, window and post-processing settings;
                           the format of `electra_tf.tasks.task_model_io`), so
                           `evaluate_qa`/`predict_qa` need nothing else
    model_hf/              head="huggingface": `ElectraForQuestionAnswering` (transformers)
    logs/                  TensorBoard: loss and learning rate per step
    history.csv, learning_curves.png    the same, as a table and a picture
    predictions.json       dev answers {id: text}, the official scripts' input
    results.json           the config, training history, dev EM/F1
"""

import dataclasses
import json
import math
import os
import time
import warnings

import tf_keras as keras

from electra_tf.data.squad_dataset import (
    DEFAULT_DOC_STRIDE,
    DEFAULT_MAX_QUERY_LENGTH,
    DEFAULT_MAX_SEQ_LENGTH,
    SquadExample,
    check_example,
    create_squad_features,
    load_squad_tfds,
    make_squad_dataset,
    read_squad_file,
)
from electra_tf.optimization.layerwise_decay_adamw import create_finetuning_optimizer
from electra_tf.tasks.electra_question_answering import (
    DEFAULT_BEAM_SIZE,
    DEPRECATED_HEADS,
    HEADS,
    ElectraQuestionAnswering,
)
from electra_tf.tasks.finetuning_job import (  # noqa: F401 - format_summary: run_qa's, as before
    HUGGINGFACE_DIRNAME,
    finetuning_callbacks,
    format_summary,
    load_encoder_and_tokenizer,
    tokenizer_for,
    training_history,
    write_learning_curves,
)
from electra_tf.tasks.finetuning_options import FinetuningDataOptions
from electra_tf.tasks.squad_metrics import squad_evaluate
from electra_tf.tasks.squad_postprocessing import (
    DEFAULT_MAX_ANSWER_LENGTH,
    DEFAULT_N_BEST_SIZE,
    postprocess_predictions,
)
from electra_tf.tasks.task_model_io import (
    MODEL_DIRNAME,
    load_task_model,
    resolve_max_seq_length,
    resolve_model_dir,
    save_task_model,
)
from electra_tf.tasks.training_options import with_training_options
from electra_tf.utils.config_fields import option
from electra_tf.utils.json_files import write_json, write_json_lines

TFDS_PREFIX = "tfds:"


@dataclasses.dataclass(kw_only=True)
class QAConfig(FinetuningDataOptions):
    """What `run_qa` does: encoder, SQuAD data, windows, training and post-processing.

    The encoder, files, optimizer and logging settings are the shared
    `FinetuningDataOptions`; the defaults are google-research/electra's SQuAD
    settings:

    >>> config = QAConfig(encoder="checkpoints/electra-small", train="train-v1.1.json")
    >>> config.max_seq_length, config.doc_stride, config.max_query_length, config.epochs
    (384, 128, 64, 2)
    >>> QAConfig(encoder="checkpoints/electra-small", train="train-v1.1.json", doc_stride=0)
    Traceback (most recent call last):
    ...
    ValueError: `doc_stride` must be >= 1; received 0.
    """

    train: str = option(None, "official SQuAD JSON file, or tfds:squad/v1.1 / tfds:squad/v2.0")
    dev: str = option(None, "evaluation data, same forms; EM/F1 go to results.json")
    output_dir: str = option("qa_output", "output directory")  # each job its own default folder
    # SQuAD's recipe: windows of 384 pieces (a context rarely fits in 128), 2 epochs, and a row
    # per step (an epoch of the sample is a handful of steps).
    max_seq_length: int = option(DEFAULT_MAX_SEQ_LENGTH, "word pieces per window")
    epochs: int = option(2, "passes over the training data (ELECTRA: 2 for SQuAD)")
    log_every: int = option(1, "steps between TensorBoard/CSV rows")
    head: str = option(
        "huggingface", "huggingface: dense start/end (transformers' ElectraForQuestionAnswering, "
        "also written to OUTPUT_DIR/model_hf); electra: the paper's head (beam over starts, "
        "answerability classifier)", choices=HEADS, deprecated_values=DEPRECATED_HEADS)
    doc_stride: int = option(DEFAULT_DOC_STRIDE, "word pieces between window starts")
    max_query_length: int = option(DEFAULT_MAX_QUERY_LENGTH, "word pieces kept of a question")
    beam_size: int = option(DEFAULT_BEAM_SIZE, "the electra head's start beam")
    n_best_size: int = option(DEFAULT_N_BEST_SIZE, "candidate spans per question")
    max_answer_length: int = option(DEFAULT_MAX_ANSWER_LENGTH, "word pieces of an answer, at most")
    null_score_threshold: float = option(0.0, "SQuAD 2.0: how far \"no answer\" must win")

    _POSITIVE = (*FinetuningDataOptions._POSITIVE, "doc_stride", "max_query_length", "beam_size",
                 "n_best_size", "max_answer_length")

    def __post_init__(self):
        if self.head in DEPRECATED_HEADS:
            warnings.warn(f"QAConfig(head={self.head!r}) is deprecated; use "
                          f"head={DEPRECATED_HEADS[self.head]!r}.", DeprecationWarning,
                          stacklevel=3)
            self.head = DEPRECATED_HEADS[self.head]
        super().__post_init__()


def read_squad(source, split="train", errors="raise"):
    """Examples from a SQuAD JSON file or "tfds:squad/v1.1"-style name; (examples, skipped).

    A tfds name may end in a slice of the split, as in "tfds:squad/v1.1[:2000]" (the first 2,000
    questions of `split`) or "tfds:squad/v1.1[:10%]".
    """
    if source.startswith(TFDS_PREFIX):
        name, bracket, slice_ = source[len(TFDS_PREFIX):].partition("[")
        return load_squad_tfds(name, split=split + bracket + slice_, errors=errors)
    return read_squad_file(source, errors=errors)


def predict_outputs(model, features, batch_size=32):
    """The model's outputs (numpy dict) on every window of `features`, in order."""
    dataset = make_squad_dataset(features, batch_size, labels=False)
    return model.predict(dataset, verbose=0)


def answer_questions(model, tokenizer, examples, settings, batch_size=32):
    """Windows → model → post-processing: {id: {"answer", "start_char", "score", ...}}."""
    features = create_squad_features(
        examples, tokenizer, max_seq_length=settings["max_seq_length"],
        doc_stride=settings["doc_stride"], max_query_length=settings["max_query_length"])
    outputs = predict_outputs(model, features, batch_size)
    return postprocess_predictions(
        features, outputs, n_best_size=settings["n_best_size"],
        max_answer_length=settings["max_answer_length"], version_2=settings["version_2"],
        null_score_threshold=settings["null_score_threshold"])


@with_training_options
def run_qa(config):
    """Fine-tunes an `ElectraQuestionAnswering` as `config` says; returns results.json's summary.

    The encoder is read first, so a wrong directory fails before any training:

    >>> import tempfile
    >>> missing = tempfile.mkdtemp() + "/no_encoder"
    >>> run_qa(QAConfig(encoder=missing, train="train-v1.1.json"))
    Traceback (most recent call last):
    ...
    ValueError: Expected a Hugging Face checkpoint directory or a Hub model id such as
    'google/electra-small-discriminator'; '.../no_encoder' is not one.
    """
    encoder, tokenizer = load_encoder_and_tokenizer(
        config.encoder, config.vocab_path, config.lower_case)
    if config.max_seq_length > encoder.max_sequence_length:
        raise ValueError(
            f"max_seq_length={config.max_seq_length} exceeds the encoder's "
            f"max_sequence_length={encoder.max_sequence_length}; lower --max-seq-length.")

    train_examples, train_skipped = read_squad(config.train, "train", config.errors)
    version_2 = any(example.is_impossible for example in train_examples)
    window = dict(max_seq_length=config.max_seq_length, doc_stride=config.doc_stride,
                  max_query_length=config.max_query_length)
    features = create_squad_features(train_examples, tokenizer, training=True,
                                     errors=config.errors, progress=config.progress, **window)
    if len(features.example_index) == 0:
        raise ValueError(f"No usable training questions in {config.train!r} "
                         f"(skipped: {features.skipped or train_skipped}).")
    train = make_squad_dataset(features, config.examples_per_update, shuffle=True, seed=config.seed)

    keras.utils.set_random_seed(config.seed)
    model = ElectraQuestionAnswering(encoder, head=config.head, beam_size=config.beam_size)
    steps = int(train.cardinality()) * config.epochs
    model.compile(optimizer=create_finetuning_optimizer(
        config.learning_rate, steps, num_layers=encoder.num_layers,
        layer_decay=config.layer_decay, warmup_proportion=config.warmup_proportion,
        weight_decay=config.weight_decay),
        gradient_accumulation_steps=config.gradient_accumulation_steps)
    os.makedirs(config.output_dir, exist_ok=True)
    start = time.perf_counter()
    history = model.fit(train, epochs=config.epochs,
                        callbacks=finetuning_callbacks(config.output_dir, config.log_every),
                        verbose=1 if config.progress else 2)
    settings = {
        "max_seq_length": config.max_seq_length,
        "doc_stride": config.doc_stride,
        "max_query_length": config.max_query_length,
        "lower_case": config.lower_case,
        "n_best_size": config.n_best_size,
        "max_answer_length": config.max_answer_length,
        "null_score_threshold": config.null_score_threshold,
        "version_2": version_2,
    }
    summary = {
        "task": "qa",
        "config": dataclasses.asdict(config),
        "version_2": version_2,
        "train_examples": len(features.examples),
        "train_windows": len(features.example_index),
        "train_skipped": {**train_skipped, **features.skipped},
        "train_seconds": round(time.perf_counter() - start, 1),
        "history": training_history(history),
        "outputs": [MODEL_DIRNAME, "logs", "learning_curves.png", "results.json"],
    }
    if config.dev:
        dev_examples, summary["dev_skipped"] = read_squad(config.dev, "validation", config.errors)
        results = answer_questions(model, tokenizer, dev_examples, settings, config.batch_size)
        predictions = {key: value["answer"] for key, value in results.items()}
        dev_version_2 = version_2 or any(example.is_impossible for example in dev_examples)
        summary["dev"] = squad_evaluate(dev_examples, predictions, version_2=dev_version_2)
        write_json(os.path.join(config.output_dir, "predictions.json"), predictions)
        summary["outputs"].insert(-1, "predictions.json")

    save_task_model(model, os.path.join(config.output_dir, MODEL_DIRNAME), "qa", tokenizer,
                    settings["max_seq_length"], label_names=None, extra=settings, overwrite=True)
    if config.head == "huggingface":
        model.save_huggingface(os.path.join(config.output_dir, HUGGINGFACE_DIRNAME),
                               overwrite=True)
        summary["outputs"].insert(1, HUGGINGFACE_DIRNAME)
    write_learning_curves(config.output_dir)
    write_json(os.path.join(config.output_dir, "results.json"), summary)
    return summary


def load_qa_model(path):
    """(model, tokenizer, settings) from a directory written by `run_qa` (its model/, or the run's
    output directory)."""
    path = resolve_model_dir(path)
    model, _, settings = load_task_model(path, "qa")
    if not isinstance(model, ElectraQuestionAnswering):
        raise ValueError(f"{path!r} holds a {type(model).__name__}; expected an "
                         "ElectraQuestionAnswering.")
    tokenizer = tokenizer_for(model.encoder, os.path.join(path, settings["vocab"]),
                              settings["lower_case"])
    return model, tokenizer, settings


def evaluate_qa(model_dir, data, errors="raise", batch_size=32, output=None, max_seq_length=None):
    """EM/F1 of a `run_qa` model on a SQuAD file (or "tfds:..." name).

    Returns {"metrics": {...}, "skipped": {...}, "predictions": {id: text}};
    also written to `output` (a JSON file) when given.
    """
    model, tokenizer, settings = load_qa_model(model_dir)
    settings = _with_max_seq_length(settings, max_seq_length, model)
    examples, skipped = read_squad(data, "validation", errors)
    version_2 = settings["version_2"] or any(example.is_impossible for example in examples)
    results = answer_questions(model, tokenizer, examples, {**settings, "version_2": version_2},
                               batch_size)
    predictions = {key: value["answer"] for key, value in results.items()}
    report = {"metrics": squad_evaluate(examples, predictions, version_2=version_2),
              "skipped": skipped, "predictions": predictions}
    if output:
        write_json(output, report)
    return report


def _with_max_seq_length(settings, max_seq_length, model):
    """The model's window settings with `max_seq_length` in place of the trained one.

    A window shorter than the trained question budget gets a question budget
    of half of it (and a stride that fits), so questions and contexts share it.
    """
    length = resolve_max_seq_length(settings, max_seq_length, model)
    settings = {**settings, "max_seq_length": length}
    if length < settings["max_query_length"] + 8:
        settings["max_query_length"] = max(1, (length - 3) // 2)
    settings["doc_stride"] = max(1, min(settings["doc_stride"],
                                        length - settings["max_query_length"] - 3))
    return settings


def predict_qa(model_dir, records, batch_size=32, max_seq_length=None):
    """Answers for [{"question", "context", "id"?}]: [{"answer", "start_char", "score"}, ...].

    A record without a question or context raises a ValueError naming it.
    """
    model, tokenizer, settings = load_qa_model(model_dir)
    settings = _with_max_seq_length(settings, max_seq_length, model)
    examples = []
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict) or not {"question", "context"} <= set(record):
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise ValueError(f"Record {number}: expected an object with 'question' and "
                             f"'context'; received {keys}.")
        example = SquadExample(id=str(number), question=str(record["question"]),
                               context=str(record["context"]))
        problem = check_example(example)
        if problem is not None:
            raise ValueError(f"Record {number}: {problem[1]}; expected non-empty text.")
        examples.append(example)
    results = answer_questions(model, tokenizer, examples, settings, batch_size)
    answers = []
    for record, example in zip(records, examples):
        result = results[example.id]
        score = result["score"] if math.isfinite(result["score"]) else None  # no span at all
        answer = {"answer": result["answer"], "start_char": result["start_char"], "score": score}
        answers.append({"id": record["id"], **answer} if "id" in record else answer)
    return answers


def read_jsonl(path):
    """The records of a JSON-lines file; a bad line raises a ValueError with its number.

    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/questions.jsonl"
    >>> write_json_lines(path, [{"question": "Who wrote it?", "context": "Ann wrote it."}])
    >>> read_jsonl(path)
    [{'question': 'Who wrote it?', 'context': 'Ann wrote it.'}]
    >>> with open(path, "a") as f:
    ...     _ = f.write("{not json}")
    >>> read_jsonl(path)
    Traceback (most recent call last):
    ...
    ValueError: .../questions.jsonl:2 is not JSON (...); expected one object per line,
    e.g. {"question": ..., "context": ...}.
    """
    if not os.path.isfile(path):
        raise ValueError(f"Input file not found: {path!r}; expected a JSON-lines file.")
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number} is not JSON ({error}); expected one object "
                                 'per line, e.g. {"question": ..., "context": ...}.') from None
    return records


def write_jsonl(path, records):
    """Deprecated: `electra_tf.utils.json_files.write_json_lines(path, records)`."""
    warnings.warn("run_qa.write_jsonl is deprecated; use "
                  "electra_tf.utils.json_files.write_json_lines.", DeprecationWarning, stacklevel=2)
    write_json_lines(path, records)
