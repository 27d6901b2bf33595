"""The pretraining job behind `electra-tf pretrain`: corpus in, pretrained discriminator out.

    config = PretrainingConfig(corpus="corpus/*.txt.gz", preset="small", steps=10_000,
                               output_dir="runs/small")
    history = run_pretraining(config)

Writes, under `output_dir`:
    checkpoints/          every `checkpoint_every` steps; a restarted run resumes here
    logs/                 TensorBoard (losses, RTD metrics, learning rate)
    discriminator/        electra_tf format (`ElectraDiscriminator.from_pretrained`)
    discriminator_hf/     Hugging Face format (`ElectraForPreTraining`)
    generator/, generator_hf/
    masked_lm/, masked_lm_hf/  replace_mlm, all_tokens_mlm: the full-size model (no discriminator)
    cloze_generator/      electric: the two-tower cloze generator's Keras weights (no generator/)
    history.json, learning_curves.png

Nothing is written until the corpus has been checked: pre-tokenized shards of
another sequence length or vocabulary, empty, truncated or of another layout
stop the run with a ValueError naming the shard (`validate_tfrecord_shards`).

`seed` fixes the initial weights, dropout, data order, masks and generator
samples: the same config on the same CPU machine and TensorFlow version gives
bit-identical checkpoints. `deterministic=True` also asks TensorFlow for
deterministic kernels (GPUs); XLA (`jit_compile`) draws other random numbers
than graph mode from the same seed.
"""

import contextlib
import dataclasses
import logging
import os

import tensorflow as tf
import tf_keras as keras
from tensorflow.python.framework import config as tf_config  # op determinism on/off (public: on only)

from electra_tf.data.corpus_files import is_tfrecord_corpus
from electra_tf.data.corpus_stats import CorpusStats
from electra_tf.data.pretraining_dataset import read_tfrecords, text_examples_dataset
from electra_tf.data.tfrecord_shards import validate_tfrecord_shards
from electra_tf.models.presets import ElectraConfig, get_preset, scaled_generator_config
from electra_tf.optimization.adamw import create_optimizer
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.pretraining.continued_pretraining import build_initialized_pretrainer, read_init_sources
from electra_tf.pretraining.data_position import DataPosition, log_batch_fingerprints, saved_data_position
from electra_tf.pretraining.electra_pretrainer import ElectraPretrainer
from electra_tf.models.electra_cloze_generator import ElectraClozeGenerator
from electra_tf.pretraining.electric_pretrainer import ElectricPretrainer
from electra_tf.pretraining.masked_lm_pretrainer import MaskedLMPretrainer
from electra_tf.pretraining.replaced_mlm_pretrainer import REPLACED_MLM_OBJECTIVES, ReplacedMLMPretrainer
from electra_tf.utils.strategies import build_strategy, is_chief
from electra_tf.utils.callbacks import ProgressBar, TrainingLogger
from electra_tf.utils.mixed_precision import global_dtype_policy, mixed_precision_dtype
from electra_tf.utils.tensorflow_threads import check_batch_parts, set_tensorflow_threads
from electra_tf.utils.plots import plot_learning_curves
from electra_tf.utils.json_files import write_json

logger = logging.getLogger(__name__)


# What each objective trains (google-research/electra's flags; the ELECTRA paper's §3.2 for the
# three ablations its code does not ship). Every one masks 15% of the tokens the same way.
OBJECTIVES = {
    "electra": "replaced token detection on every token (electra_objective)",
    "electric": "Electric: an energy-based cloze model trained by NCE against a two-tower cloze "
                "generator (electric_objective)",
    "electra_15": "ELECTRA 15%: replaced token detection on the masked tokens only",
    "replace_mlm": "Replace MLM: masked tokens replaced by generator samples, MLM loss on them",
    "all_tokens_mlm": "All-Tokens MLM: as Replace MLM, predicting every token, with a copy mechanism",
    "mlm": "BERT's masked LM (neither objective)",
}


@dataclasses.dataclass
class PretrainingConfig:
    """What `run_pretraining` does: corpus, model sizes, objective, optimization, outputs.

    Short runs keep 10% warmup; `model_configs` gives the two models' sizes:

    >>> config = PretrainingConfig(corpus="corpus/*.txt.gz", preset="small", steps=200)
    >>> config.warmup_steps
    20
    >>> discriminator, generator = config.model_configs(vocab_size=30522)
    >>> discriminator.hidden_size, discriminator.num_layers, generator.hidden_size
    (256, 12, 64)
    >>> PretrainingConfig(corpus="corpus/*.txt.gz", objective="gan")
    Traceback (most recent call last):
    ...
    ValueError: `objective` must be one of electra, electric, electra_15, replace_mlm,
    all_tokens_mlm, mlm; received 'gan'.
    """

    corpus: str = None  # glob of text files (or of `electra-tf prepare` shards: *.tfrecord)
    output_dir: str = "electra_output"
    preset: str = "small"
    generator_width: float = 0.25  # fraction of the discriminator's width; None: the preset's
    vocab_path: str = None  # None: the packaged uncased BERT vocabulary
    lower_case: bool = True
    # electra | electric | electra_15 | replace_mlm | all_tokens_mlm | mlm (see OBJECTIVES)
    objective: str = "electra"
    untied_embeddings: bool = False  # the generator gets its own token embeddings (a generator study)
    max_seq_length: int = 128
    batch_size: int = 128  # global, over all replicas
    steps: int = 1_000_000
    learning_rate: float = 5e-4  # ELECTRA-Small; 2e-4 Base, 2e-4 Large
    warmup_steps: int = 10_000
    weight_decay: float = 0.01
    mask_rate: float = 0.15
    discriminator_weight: float = 50.0
    temperature: float = 1.0
    disallow_correct: bool = False
    strategy: str = "auto"  # auto | default | mirrored | multiworker | tpu
    mixed_precision: str = None  # None (float32) | "float16" | "bfloat16"; True/False: deprecated
    jit_compile: bool = False  # XLA: same seed, other random draws than graph mode
    deterministic: bool = False  # deterministic kernels (tf.config.experimental.enable_op_determinism)
    # A small CPU machine: each step's batch in N parts (the whole batch's loss and gradients)
    # with one thread per op and N inter-op threads (README, "Batch parts and threads").
    batch_parts: int = 1
    intra_op_threads: int = 0  # TensorFlow's pools, set before its first op; 0: all cores
    inter_op_threads: int = 0
    checkpoint_every: int = 1000
    log_every: int = 10
    shuffle_buffer: int = 10_000
    seed: int = 0  # initial weights, dropout, data order, masks and samples
    progress: bool = True
    # Debugging: append a line "step fingerprint" per step to this file (the batch it trained on).
    batch_log: str = None
    model_overrides: dict = dataclasses.field(default_factory=dict)  # e.g. {"num_layers": 2}
    # Continued pretraining (see continued_pretraining): an electra_tf run, Hugging Face or TF1
    # checkpoint; its sizes replace the preset's. A checkpoint in output_dir resumes instead.
    init_from: str = None
    init_generator_from: str = None  # None: init_from's generator if it has one, else fresh

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"`objective` must be one of {', '.join(OBJECTIVES)}; "
                             f"received {self.objective!r}.")
        for name in ("steps", "batch_size", "max_seq_length", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1; received {getattr(self, name)}.")
        if self.warmup_steps > self.steps:
            self.warmup_steps = self.steps // 10  # short runs: keep 10% warmup
        self.mixed_precision = mixed_precision_dtype(self.mixed_precision)
        check_batch_parts(self.batch_parts)

    def model_configs(self, vocab_size):
        """(discriminator ElectraConfig, generator ElectraConfig) for this run."""
        overrides = {**self.model_overrides, "vocab_size": vocab_size}
        overrides.setdefault("max_sequence_length", max(self.max_seq_length, 
                                                        get_preset(self.preset, "discriminator").max_sequence_length))
        discriminator = ElectraConfig.from_dict({**get_preset(self.preset, "discriminator").to_dict(), **overrides})
        if self.objective == "mlm":
            return discriminator, discriminator  # the MLM model has the discriminator's size
        if self.generator_width is None:
            generator = ElectraConfig.from_dict({**get_preset(self.preset, "generator").to_dict(), **overrides})
        else:
            generator = scaled_generator_config(discriminator, self.generator_width)
        return discriminator, generator


def build_pretrainer(config, vocab_size, special_token_ids, mask_token_id, model_configs=None):
    """The pretrainer of `config.objective`: its networks built and (unless untied) tied.

    electra, electra_15: `ElectraPretrainer`; electric: `ElectricPretrainer`;
    replace_mlm, all_tokens_mlm: `ReplacedMLMPretrainer`; mlm: `MaskedLMPretrainer`.
    """
    # model_configs: (discriminator, generator) sizes read from a checkpoint (init_from).
    discriminator_config, generator_config = model_configs or config.model_configs(vocab_size)
    common = dict(mask_rate=config.mask_rate, mask_token_id=mask_token_id,
                  special_token_ids=special_token_ids, seed=config.seed,
                  batch_parts=config.batch_parts)
    if config.objective == "mlm":
        generator = generator_config.build("generator")
        return MaskedLMPretrainer(generator, **common)
    kept = discriminator_config.build(
        "generator" if config.objective in REPLACED_MLM_OBJECTIVES else "discriminator")
    # Tied: the generator's token embeddings are the kept model's (the paper's default).
    tied = None if config.untied_embeddings else kept.encoder.embedding_layer
    if config.objective in REPLACED_MLM_OBJECTIVES:
        generator = generator_config.build("generator", embedding_layer=tied)
        return ReplacedMLMPretrainer(generator, kept, objective=config.objective,
                                     temperature=config.temperature, **common)
    if config.objective == "electric":
        left_to_right = generator_config.build_encoder(tied, name="generator_left_to_right")
        right_to_left = generator_config.build_encoder(
            left_to_right.embedding_layer, name="generator_right_to_left")  # one table for both towers
        return ElectricPretrainer(
            ElectraClozeGenerator(left_to_right, right_to_left, name="cloze_generator"), kept,
            discriminator_weight=config.discriminator_weight, temperature=config.temperature,
            disallow_correct=config.disallow_correct, **common)
    discriminator = kept
    generator = generator_config.build(
        "generator", embedding_layer=tied
    )
    return ElectraPretrainer(
        generator,
        discriminator,
        mask_rate=config.mask_rate,
        discriminator_weight=config.discriminator_weight,
        temperature=config.temperature,
        disallow_correct=config.disallow_correct,
        mask_token_id=mask_token_id,
        special_token_ids=special_token_ids,
        seed=config.seed,
        objective=config.objective,
        batch_parts=config.batch_parts,
    )


def build_dataset(config, tokenizer, stats=None, skip_examples=0):
    """Packed, shuffled, repeated, batched (unmasked) examples; masking happens in the step.

    Pre-tokenized shards are scanned first (`validate_tfrecord_shards`): a shard
    this run cannot train on raises a ValueError here, not in a training step.

    `skip_examples`: examples of the stream already trained on (a resumed run,
    `saved_data_position`); they are read and dropped before batching.
    """
    if config.corpus is None:
        raise ValueError("No corpus given: pass a glob of text files (--corpus 'data/*.txt.gz').")
    # Shards from `electra-tf prepare` end in .tfrecord; "tfrecord" in the glob also marks unsuffixed ones.
    if "tfrecord" in os.path.basename(str(config.corpus)) or is_tfrecord_corpus(config.corpus):
        validate_tfrecord_shards(config.corpus, max_seq_length=config.max_seq_length,
                                 vocab_size=tokenizer.vocab_size,
                                 cls_token_id=tokenizer.cls_token_id)
        examples = read_tfrecords(config.corpus, config.max_seq_length, seed=config.seed)
    else:
        examples = text_examples_dataset(
            config.corpus,
            tokenizer.tokenize,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
            max_seq_length=config.max_seq_length,
            seed=config.seed,
            stats=stats,
        )
    if config.shuffle_buffer:
        examples = examples.shuffle(config.shuffle_buffer, seed=config.seed)
    examples = examples.repeat().skip(skip_examples)  # the stream is deterministic: skip = resume
    # drop_remainder: one static batch shape, so XLA compiles once.
    batches = examples.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    # Every worker reads the whole stream and trains on its share of each global batch: a step
    # is one global batch on every strategy, so `skip_examples` means the same on each worker.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batches.with_options(options)


def run_pretraining(config, callbacks=None):
    """Pretrains from `config.corpus`; returns the Keras `History`.

    `callbacks` are extra Keras callbacks (e.g. a time limit) added to ours.

    Restarting with the same `output_dir` resumes from the last checkpoint
    (step, optimizer state, learning-rate schedule and position in the input
    stream, `data_position`): kill it any time; it trains on the same batches.

    Sets TensorFlow's, NumPy's and Python's global seeds to `config.seed`
    (`keras.utils.set_random_seed`) before building the models. A bad corpus
    raises ValueError before `output_dir` is created or anything written.
    `intra_op_threads` / `inter_op_threads` other than 0 size TensorFlow's
    pools first: in a process that has already run an op with other sizes,
    that is a ValueError naming both (`electra_tf.set_tensorflow_threads`).

    >>> import tempfile
    >>> output_dir = tempfile.mkdtemp() + "/run"
    >>> run_pretraining(PretrainingConfig(corpus=None, output_dir=output_dir, steps=10))
    Traceback (most recent call last):
    ...
    ValueError: No corpus given: pass a glob of text files (--corpus 'data/*.txt.gz').
    >>> os.path.exists(output_dir)
    False
    """
    # The pools' sizes first: TensorFlow fixes them when it runs its first op.
    set_tensorflow_threads(config.intra_op_threads, config.inter_op_threads)
    # The models are built under mixed_<dtype> when asked (the fine-tuning jobs' helper;
    # without it the caller's policy stays); the caller's global policy is put back afterwards
    # so later models in the process are unaffected. Op determinism (`deterministic`) is
    # process-wide too, and put back the same way.
    previous_determinism = tf_config.is_op_determinism_enabled()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    try:
        with (global_dtype_policy(config.mixed_precision) if config.mixed_precision
              else contextlib.nullcontext()):
            return _run_pretraining(config, callbacks)
    finally:
        if not previous_determinism:
            tf_config.disable_op_determinism()


def _run_pretraining(config, callbacks):
    strategy = build_strategy(config.strategy)
    # Initial weights and dropout draw from TensorFlow's global seed, and tf.data
    # shuffles combine it with their own: set it first, so that a run depends on
    # its config only, not on what ran before it in the process.
    keras.utils.set_random_seed(config.seed)
    tokenizer = ElectraTokenizer(vocab_path=config.vocab_path, lower_case=config.lower_case)
    special_token_ids = (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id,
                         tokenizer.sep_token_id, tokenizer.mask_token_id)
    stats = CorpusStats()
    trained_examples = _examples_to_skip(os.path.join(config.output_dir, "checkpoints"))
    dataset = build_dataset(config, tokenizer, stats, trained_examples)  # checks the corpus: raises before any write
    init_sources = read_init_sources(config, tokenizer.vocab_size)  # init_from: read and checked before any write
    os.makedirs(config.output_dir, exist_ok=True)

    with strategy.scope():
        pretrainer = build_initialized_pretrainer(config, tokenizer, init_sources) if init_sources \
            else build_pretrainer(config, tokenizer.vocab_size, special_token_ids,
                                  tokenizer.mask_token_id)
        pretrainer.compile(
            optimizer=create_optimizer(
                config.learning_rate, config.steps, config.warmup_steps, config.weight_decay
            ),
            jit_compile=config.jit_compile,
        )

    if config.batch_log:
        log_batch_fingerprints(pretrainer, config.batch_log)
    # Counts the examples trained on; before BackupAndRestore, so each checkpoint has its step's.
    job_callbacks = [DataPosition(config.batch_size, start=trained_examples)]
    if is_chief(strategy):  # one process logs; every worker checkpoints
        # Before BackupAndRestore too: a step's row is written before its checkpoint, so a
        # kill between the two costs a row that the resumed run writes again, never a gap.
        job_callbacks.append(
            TrainingLogger(
                os.path.join(config.output_dir, "logs"),
                os.path.join(config.output_dir, "history.csv"),
                log_every=config.log_every,
            )
        )
    # Saves model, optimizer and step every `checkpoint_every` steps and
    # restores them when the same command runs again.
    job_callbacks.append(keras.callbacks.BackupAndRestore(
        os.path.join(config.output_dir, "checkpoints"),
        save_freq=config.checkpoint_every,
        delete_checkpoint=False,
    ))
    if is_chief(strategy):
        # After BackupAndRestore: the bar starts at the step it restored.
        if config.progress:
            job_callbacks.append(ProgressBar(config.steps, log_every=config.log_every))
    history = pretrainer.fit(
        dataset, epochs=1, steps_per_epoch=config.steps, callbacks=job_callbacks + list(callbacks or []),
        verbose=0,
    )
    skipped = stats.empty_files + stats.unreadable_files + stats.invalid_utf8_lines
    if skipped:
        logger.warning("Corpus: skipped %d files/lines (%s)", skipped, stats)
    if is_chief(strategy):
        save_outputs(pretrainer, config, history)
    return history


def _examples_to_skip(checkpoint_dir):
    """The examples a resumed run skips: those its checkpoint trained on (0 for a new run)."""
    trained_examples = saved_data_position(checkpoint_dir)
    if trained_examples is None:
        logger.warning(
            "The checkpoint in %s has no data position (it was written by an older electra_tf): "
            "the run resumes its step, weights and optimizer, but its input stream starts over "
            "from the first example. Checkpoints written from now on carry the position.",
            checkpoint_dir)
        return 0
    if trained_examples:
        logger.info("Resuming after %d examples: reading past them (not training on them) first.",
                    trained_examples)
    return trained_examples


def save_outputs(pretrainer, config, history):
    """Final models in both formats, the history and a learning-curve picture (atomic writes)."""
    out = config.output_dir
    models = {"generator": pretrainer.generator}
    if config.objective in ("electra", "electra_15", "electric"):
        # Electric's discriminator outputs energies: `score_texts` reads them.
        models["discriminator"] = pretrainer.discriminator
    if config.objective in REPLACED_MLM_OBJECTIVES:
        models["masked_lm"] = pretrainer.model  # the full-size model; "generator" is the small one
    if config.objective == "electric":
        # The two-tower cloze generator has no Hugging Face counterpart: Keras weights only.
        del models["generator"]
        os.makedirs(os.path.join(out, "cloze_generator"), exist_ok=True)
        pretrainer.generator.save_weights(os.path.join(out, "cloze_generator", "model.weights.h5"))
    for name, model in models.items():
        model.save_pretrained(os.path.join(out, name), overwrite=True)
        model.save_huggingface(os.path.join(out, f"{name}_hf"), overwrite=True)
    steps = {key: [float(v) for v in values] for key, values in history.history.items()}
    write_json(os.path.join(out, "history.json"),
               {"config": dataclasses.asdict(config), "history": steps})
    csv_path = os.path.join(out, "history.csv")
    if os.path.exists(csv_path):
        plot_learning_curves(csv_path, os.path.join(out, "learning_curves.png"))
