"""What every fine-tuning job shares: encoder loading, logging, learning curves, summaries.

`run_finetuning` (classify), `run_qa`, `run_tagging` and `run_glue` build on
these; their settings are `FinetuningOptions` (finetuning_options.py), their
JSON files go through `electra_tf.utils.json_files.write_json`, and each writes
its task model to OUTPUT/model (`task_model_io.MODEL_DIRNAME`) and, where
transformers has a class for it, OUTPUT/model_hf (`HUGGINGFACE_DIRNAME`).

>>> print(format_summary({
...     "task": "classify", "train_examples": 6920, "train_seconds": 412.3,
...     "train_skipped": {"empty_text": 2}, "history": {"loss": [0.52, 0.31]},
...     "dev": {"accuracy": 0.8807}, "config": {"output_dir": "runs/sst2"},
...     "outputs": ["model", "logs", "learning_curves.png", "results.json"]}))
trained on 6920 examples in 412s (skipped: 2)
final training loss 0.3100
dev accuracy: 0.8807
wrote runs/sst2/model (+ logs, learning_curves.png, results.json)
"""

import os

import tf_keras as keras

from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.models.model_io import WEIGHTS_NAME, load_pretrained
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.task_model_io import MODEL_DIRNAME, VOCAB_NAME
from electra_tf.utils.callbacks import TrainingLogger
from electra_tf.utils.plots import plot_learning_curves

# The transformers copy of a task model (ElectraForSequenceClassification, ...), next to it.
HUGGINGFACE_DIRNAME = f"{MODEL_DIRNAME}_hf"
# What a summary's training count counts, by task.
_TRAINING_UNITS = {"classify": "examples", "qa": "questions", "tag": "sentences"}


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
    # from_config gives the nested embedding layer the encoder's (new) dtype too.
    rebuilt = ElectraEncoder.from_config({**encoder.get_config(), "dtype": policy})
    rebuilt.set_weights(encoder.get_weights())
    return rebuilt


def tokenizer_for(encoder, vocab_path=None, lower_case=True):
    """An `ElectraTokenizer` of `vocab_path` (None: the packaged one) that fits `encoder`.

    Raises:
        ValueError: the vocabulary's size is not the encoder's.
    """
    tokenizer = ElectraTokenizer(vocab_path, lower_case=lower_case)
    if tokenizer.vocab_size != encoder.vocab_size:
        raise ValueError(
            f"The vocabulary has {tokenizer.vocab_size} tokens but the encoder "
            f"{encoder.vocab_size}; pass the encoder's vocab.txt as vocab_path."
        )
    return tokenizer


def load_encoder_and_tokenizer(encoder_path, vocab_path=None, lower_case=True):
    """The encoder of `encoder_path` and a tokenizer whose vocabulary fits it.

    `vocab_path` None: the encoder directory's vocab.txt if it has one, else
    the packaged uncased BERT vocabulary.
    """
    encoder = load_encoder(encoder_path)
    if vocab_path is None and os.path.isfile(os.path.join(encoder_path, VOCAB_NAME)):
        vocab_path = os.path.join(encoder_path, VOCAB_NAME)
    return encoder, tokenizer_for(encoder, vocab_path, lower_case)


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


def training_history(history):
    """A Keras `History` as JSON-able lists of floats per metric."""
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def format_metrics(metrics, prefix=""):
    """One line per metric: floats to 4 places, per-type F1 (taggers) with its support.

    >>> print(format_metrics({"f1": 0.9, "sentences": 12,
    ...                       "per_type": {"PER": {"f1": 0.95, "support": 20}}}, prefix="dev "))
    dev f1: 0.9000
    dev f1[PER]: 0.9500 (support 20)
    """
    lines = []
    for name, value in metrics.items():
        if isinstance(value, float):
            lines.append(f"{prefix}{name}: {value:.4f}")
        elif name == "per_type":
            lines.extend(f"{prefix}f1[{type_}]: {scores['f1']:.4f} (support {scores['support']})"
                         for type_, scores in value.items())
    return "\n".join(lines)


def format_summary(summary):
    """A few lines for the terminal from any fine-tuning job's summary (results.json).

    Data and time, the final training loss, the dev metrics, and what was
    written. Every job's summary has "task", "config", "train_examples",
    "train_skipped", "train_seconds", "history" and "outputs"; "dev" when it
    was evaluated; QA's also "train_windows", a tagger's "label_names".
    """
    task = summary.get("task", "classify")
    windows = f" ({summary['train_windows']} windows)" if "train_windows" in summary else ""
    first = (f"trained on {summary['train_examples']} {_TRAINING_UNITS.get(task, 'examples')}"
             f"{windows} in {summary['train_seconds']:.0f}s "
             f"(skipped: {sum(summary['train_skipped'].values())})")
    if task == "tag" and summary.get("label_names"):
        first += f"; tags: {', '.join(summary['label_names'])}"
    lines = [first, f"final training loss {summary['history']['loss'][-1]:.4f}"]
    if summary.get("dev"):
        lines.append(format_metrics(summary["dev"], prefix="dev "))
    outputs = [name for name in summary.get("outputs", [MODEL_DIRNAME]) if name != MODEL_DIRNAME]
    lines.append(f"wrote {summary['config']['output_dir']}/{MODEL_DIRNAME}"
                 + (f" (+ {', '.join(outputs)})" if outputs else ""))
    return "\n".join(lines)
