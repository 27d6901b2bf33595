"""FinetuningOptions: the settings every fine-tuning job shares, each default stated once.

`FinetuningConfig` (classify), `QAConfig`, `TaggingConfig` and `GlueConfig`
extend these; a job whose recipe differs (SQuAD's 384-piece windows, GLUE's
per-size learning rates) overrides the field in its own config, with a
comment why. The command-line flags are derived from the fields
(`electra_tf.cli.config_arguments`), help texts included.

Names (tests/test_api_naming.py enforces them): `max_seq_length` is a job's
packed input length (the encoder's `max_sequence_length` is its position
table, the most it can take); `num_classes` counts a head's outputs.

>>> options = FinetuningDataOptions(encoder="checkpoints/electra-small", train="train.tsv")
>>> options.max_seq_length, options.batch_size, options.layer_decay, options.errors
(128, 32, 0.8, 'raise')
>>> FinetuningDataOptions(encoder="checkpoints/electra-small", train="t.tsv", batch_size=0)
Traceback (most recent call last):
...
ValueError: `batch_size` must be >= 1; received 0.
"""

import dataclasses

from electra_tf.tasks.training_options import TrainingOptions
from electra_tf.utils.config_fields import option

# What a job does with a bad example (an empty text, an unknown label, ...).
ERRORS = ("raise", "skip")


# kw_only: a job's own fields stay its positional ones, as before these were shared.
@dataclasses.dataclass(kw_only=True)
class FinetuningOptions(TrainingOptions):
    """Encoder, vocabulary, packed length, optimizer recipe and logging of a fine-tuning job.

    The optimizer is ELECTRA's (`create_finetuning_optimizer`): AdamW with
    layer-wise learning-rate decay, `warmup_proportion` of the steps of linear
    warmup, then linear decay to 0.

    Args:
        encoder: a Hugging Face or electra_tf model directory.
        output_dir: where the job writes model/, logs and results.json.
        vocab_path: None: the encoder directory's vocab.txt, else the packaged one.
        lower_case: lower-case and strip accents (an uncased vocabulary).
        max_seq_length: word pieces per packed input.
        batch_size: examples per micro-batch.
        epochs: passes over the training data.
        learning_rate: the peak learning rate.
        layer_decay: layer-wise learning-rate decay.
        weight_decay: AdamW's decoupled weight decay.
        warmup_proportion: the fraction of steps of linear warmup.
        log_every: steps between TensorBoard/CSV rows.
        progress: Keras' progress bar (else one line per epoch).

    >>> FinetuningOptions(output_dir="runs/sst2")
    Traceback (most recent call last):
    ...
    ValueError: FinetuningOptions needs `encoder`; received encoder=None.
    """

    encoder: str = option(None, "Hugging Face (config.json + weights) or electra_tf model "
                          "directory")
    output_dir: str = option("finetune_output", "output directory")
    vocab_path: str = option(None, "vocabulary file (default: the encoder's vocab.txt, else "
                             "BERT uncased)", flag="--vocab")
    lower_case: bool = option(True, "lower-case and strip accents: an uncased vocabulary")
    max_seq_length: int = option(128, "word pieces per packed input")
    batch_size: int = option(32, "examples per micro-batch")
    epochs: int = option(3, "passes over the training data")
    learning_rate: float = option(1e-4, "peak learning rate (ELECTRA: 3e-4 Small, 1e-4 Base, "
                                  "5e-5 Large)")
    layer_decay: float = option(0.8, "layer-wise learning-rate decay (ELECTRA: 0.8 Small/Base, "
                                "0.9 Large)")
    weight_decay: float = option(0.01, "AdamW's decoupled weight decay")
    warmup_proportion: float = option(0.1, "fraction of the steps of linear warmup, as in "
                                      "ELECTRA")
    log_every: int = option(10, "steps between TensorBoard/CSV rows")
    progress: bool = option(True, "Keras' progress bar (else one line per epoch)")

    # Integer fields that must be >= 1 when set (a subclass's None means "the recipe's").
    _POSITIVE = ("max_seq_length", "batch_size", "epochs", "log_every")

    def __post_init__(self):
        super().__post_init__()  # strategy, mixed_precision, gradient_accumulation_steps
        for name in self._required():
            if not getattr(self, name):
                raise ValueError(f"{type(self).__name__} needs `{name}`; received {name}=None.")
        for name in self._POSITIVE:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be >= 1; received {value}.")

    def _required(self):
        return ("encoder",)


@dataclasses.dataclass(kw_only=True)
class FinetuningDataOptions(FinetuningOptions):
    """`FinetuningOptions` of a job that reads its own training and dev files.

    Args:
        train: the training file (each job's format).
        dev: evaluated after training; None: no evaluation.
        errors: bad examples: "raise" (stop at the first) or "skip" (and count).
        seed: data order, initial head weights and dropout.
    """

    train: str = option(None, "training file")
    dev: str = option(None, "evaluation file, same format")
    errors: str = option("raise", "skip and count bad examples instead of stopping at the first",
                         flag="--skip-bad-examples", const="skip", aliases=("--skip-bad-rows",))
    seed: int = option(0, "seed of the data order, the head's initial weights and dropout")

    def __post_init__(self):
        if self.errors not in ERRORS:
            raise ValueError(f"`errors` must be one of {list(ERRORS)}; received "
                             f"errors={self.errors!r}.")
        super().__post_init__()

    def _required(self):
        return ("encoder", "train")
