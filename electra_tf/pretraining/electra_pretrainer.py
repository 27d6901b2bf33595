"""ElectraPretrainer: replaced token detection, trained with `model.fit`.

    mask 15% → generator MLM logits at the masked positions → sample replacements
    (a draw from the softmax, no gradient) → RTD labels → discriminator → mlm_loss + 50·rtd_loss
"""

import tensorflow as tf
import tf_keras as keras

from electra_tf.models.electra_discriminator import ElectraDiscriminator
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.models.electra_generator import ElectraGenerator
from electra_tf.preprocessing import masking
from electra_tf.preprocessing.example_seeds import example_seeds
from electra_tf.pretraining.losses import loss_of_parts, masked_lm_loss, replaced_token_detection_loss
from electra_tf.pretraining.sampling import replaced_token_labels, sample_from_softmax
from electra_tf.utils.tensorflow_threads import batch_slices, check_batch_parts

RTD_OBJECTIVES = ("electra", "electra_15")  # RTD on every token / on the masked ones only
# BERT's uncased vocabulary, which every released ELECTRA uses.
DEFAULT_MASK_TOKEN_ID = 103
DEFAULT_SPECIAL_TOKEN_IDS = (0, 100, 101, 102, 103)  # [PAD] [UNK] [CLS] [SEP] [MASK]


def reset_metric_variables(metrics):
    """Zeroes metric state inside a step, so each training step logs its own values."""
    for metric in metrics:
        for variable in metric.variables:
            variable.assign(tf.zeros_like(variable))


# What masking in tf.data (`batch_and_mask`) adds to a batch. The pretrainers
# mask inside their step, so a batch that carries these was masked already:
# masked again, its first round's [MASK] tokens would be labelled "original".
PREMASKED_KEYS = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")


def unpack_inputs(data):
    """A batch's input dict: `fit` on a dataset passes it as is, `train_on_batch` as `(x,)`.

    Refuses a batch that was masked already (one masking route: the step's).
    """
    inputs, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    if isinstance(inputs, dict):
        premasked = [key for key in PREMASKED_KEYS if key in inputs]
        if premasked:
            raise ValueError(
                f"The pretraining batch was masked already: it carries {premasked}. The "
                "pretrainers mask inside their step (a fresh draw every step), so masking in "
                "tf.data too would mask twice. Feed unmasked batches {'input_word_ids', "
                "'input_mask', 'input_type_ids'}: `text_examples_dataset(...).batch(B)` or "
                "`read_tfrecords(...)`, not `make_pretraining_dataset` / `batch_and_mask`."
            )
    return inputs


class PretrainingSteps:
    """`train_step`/`test_step` shared by the pretrainers, and their `batch_parts`.

    A subclass defines `compute_pretraining_outputs(inputs, step, training)`
    (a dict with "loss" and a (total, count) pair per term of `loss_weights`),
    `loss_weights` (term -> weight: the loss is the sum of weight * total /
    count), `update_metrics(outputs)` and `results()`.

    `batch_parts=N` runs each training step's forward and backward passes on
    N contiguous parts of the batch under one tape, and divides each loss
    term's summed totals by its summed counts: the step's loss and gradients
    are the whole batch's (masks and samples are per example, so the parts
    draw what the whole batch would; dropout draws its own). The parts share
    no op: with one thread per op and N inter-op threads
    (`electra_tf.set_tensorflow_threads(1, N)`, before TensorFlow's first op)
    each core runs whole ops of its own part, which on a small CPU machine is
    faster than every op split over all cores (README, "Batch parts and threads").
    """

    def __init__(self, batch_parts=1, **kwargs):
        super().__init__(**kwargs)
        self.batch_parts = check_batch_parts(batch_parts)

    def train_step(self, data):
        # Each step logs its own values (a pretraining run is one long epoch).
        reset_metric_variables(self.metrics)
        inputs = unpack_inputs(data)
        with tf.GradientTape() as tape:
            parts = [self.compute_pretraining_outputs(part, self.optimizer.iterations, training=True)
                     for part in batch_slices(inputs, self.batch_parts)]
            loss = loss_of_parts(parts, self.loss_weights)  # one part: its own "loss"
        # minimize() applies loss scaling under mixed_float16 (LossScaleOptimizer).
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        for outputs in parts:  # streaming metrics: the parts' updates are the whole batch's
            self.update_metrics(outputs)
        return self.results()

    def test_step(self, data):
        # Step 0: every evaluation masks the same tokens, so runs compare.
        self.update_metrics(self.compute_pretraining_outputs(unpack_inputs(data), 0, training=False))
        return self.results()

    def results(self):
        """The metrics' values, and "loss": the `loss_weights` sum of the "<term>_loss" ones."""
        results = {metric.name: metric.result() for metric in self.metrics}
        results["loss"] = sum(weight * results[f"{term}_loss"]
                              for term, weight in self.loss_weights.items())
        return results


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraPretrainer(PretrainingSteps, keras.Model):
    """Trains a generator and a discriminator jointly by replaced token detection.

    Called with unmasked batches `{"input_word_ids", "input_mask",
    "input_type_ids"}`; masking is dynamic, inside the step, as in the
    original. Sampling is not back-propagated: ELECTRA is not a GAN.

    Args:
        generator: an `ElectraGenerator`, usually 1/4–1/2 the discriminator's width.
        discriminator: an `ElectraDiscriminator` (the model to keep).
        mask_rate: fraction of tokens masked (0.15; the paper uses 0.25 for Large).
        discriminator_weight: λ in mlm_loss + λ·rtd_loss (50.0 in the paper:
            the per-token RTD loss is much smaller than the MLM loss).
        temperature: generator sampling temperature (1.0).
        disallow_correct: never sample the original token at a masked position.
        mask_token_id: id of [MASK].
        special_token_ids: ids never chosen for masking ([PAD], [UNK], [CLS], [SEP], [MASK]).
        seed: the run's seed. Masks and samples are stateless functions of
            (seed, step, example), so they do not depend on how a batch is
            split across replicas, and a resumed run repeats them.
        objective: "electra" (the RTD loss on every token) or "electra_15"
            (the paper's ELECTRA 15% ablation, Table 5: the same model with
            the RTD loss on the masked positions only).
        batch_parts: run each training step on this many parts of the batch,
            for one thread per op on a small CPU machine (see `PretrainingSteps`);
            the loss and gradients are the whole batch's.

    Example:
    >>> discriminator = ElectraDiscriminator.from_preset("tiny")
    >>> generator = ElectraGenerator.from_preset(
    ...     "tiny", embedding_layer=discriminator.encoder.embedding_layer)
    >>> pretrainer = ElectraPretrainer(generator, discriminator)
    >>> pretrainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> ids = tf.constant([[101, 2023, 2003, 1037, 3231, 102, 0, 0]] * 4)
    >>> data = tf.data.Dataset.from_tensors({"input_word_ids": ids,
    ...     "input_mask": tf.cast(ids > 0, tf.int32), "input_type_ids": tf.zeros_like(ids)})
    >>> history = pretrainer.fit(data, epochs=1, verbose=0)
    >>> sorted(history.history)[:3]
    ['loss', 'mlm_accuracy', 'mlm_loss']
    """

    generator_class = ElectraGenerator  # what `generator` must be (Electric: a cloze generator)

    def __init__(
        self,
        generator,
        discriminator,
        mask_rate=0.15,
        discriminator_weight=50.0,
        temperature=1.0,
        disallow_correct=False,
        mask_token_id=DEFAULT_MASK_TOKEN_ID,
        special_token_ids=DEFAULT_SPECIAL_TOKEN_IDS,
        seed=0,
        objective="electra",
        batch_parts=1,
        **kwargs,
    ):
        super().__init__(batch_parts=batch_parts, **kwargs)
        if objective not in RTD_OBJECTIVES:
            raise ValueError(f"`objective` must be one of {RTD_OBJECTIVES}; received {objective!r}.")
        self.objective = objective
        # Every value a step returns is already global (metric results are synchronized
        # across replicas): report replica 0's. Keras' "auto" sums them over replicas
        # (outside TPUs), which multiplied the logged `loss` by the number of replicas.
        self.distribute_reduction_method = "first"
        if isinstance(discriminator, dict):  # from get_config(): rebuild, then re-tie
            discriminator = keras.layers.deserialize(discriminator)
        if isinstance(generator, dict):
            generator = self.deserialize_generator(generator, discriminator)
        if not isinstance(generator, self.generator_class):
            raise ValueError(f"`generator` must be an {self.generator_class.__name__}; "
                             f"received {type(generator).__name__}.")
        if not isinstance(discriminator, ElectraDiscriminator):
            raise ValueError(
                f"`discriminator` must be an ElectraDiscriminator; received {type(discriminator).__name__}."
            )
        if generator.encoder.vocab_size != discriminator.encoder.vocab_size:
            raise ValueError(
                "Generator and discriminator must share a vocabulary; received vocab_size "
                f"{generator.encoder.vocab_size} and {discriminator.encoder.vocab_size}."
            )
        if not 0.0 < mask_rate < 1.0:
            raise ValueError(f"`mask_rate` must be in (0, 1); received {mask_rate}.")
        self.generator = generator
        self.discriminator = discriminator
        self.mask_rate = mask_rate
        self.discriminator_weight = discriminator_weight
        self.temperature = temperature
        self.disallow_correct = disallow_correct
        self.mask_token_id = mask_token_id
        self.special_token_ids = tuple(int(i) for i in special_token_ids)
        self.seed = int(seed)

        # === Metrics (token-weighted, exact across replicas) ===
        self.mlm_loss_metric = keras.metrics.Mean("mlm_loss")
        self.rtd_loss_metric = keras.metrics.Mean("rtd_loss")
        self.mlm_accuracy = keras.metrics.Mean("mlm_accuracy")
        self.sampled_token_accuracy = keras.metrics.Mean("sampled_token_accuracy")
        self.rtd_accuracy = keras.metrics.Mean("rtd_accuracy")
        self.rtd_precision = keras.metrics.Precision(name="rtd_precision")
        self.rtd_recall = keras.metrics.Recall(name="rtd_recall")
        self.rtd_auc = keras.metrics.AUC(name="rtd_auc")
        # Both networks create their weights in __init__, so the pretrainer has all of
        # its variables now: mark it built, or HDF5 load_weights, save_pretrained and
        # BackupAndRestore (which builds the optimizer only for a built model) refuse it.
        self.build()

    @property
    def tied_embeddings(self):
        return self.generator.encoder.embedding_layer is self.discriminator.encoder.embedding_layer

    @property
    def encoder(self):
        """The encoder that fine-tuning starts from (the discriminator's)."""
        return self.discriminator.encoder

    @staticmethod
    def serialize_generator(generator, discriminator):
        return _serialize_generator(generator, discriminator)

    @staticmethod
    def deserialize_generator(config, discriminator):
        return _deserialize_generator(config, discriminator)

    @property
    def metrics(self):
        return [
            self.mlm_loss_metric,
            self.rtd_loss_metric,
            self.mlm_accuracy,
            self.sampled_token_accuracy,
            self.rtd_accuracy,
            self.rtd_precision,
            self.rtd_recall,
            self.rtd_auc,
        ]

    @property
    def loss_weights(self):
        return {"mlm": 1.0, "rtd": self.discriminator_weight}

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=None):
        """The discriminator's outputs on (uncorrupted) inputs."""
        return self.discriminator(inputs, training=training)

    def compute_pretraining_outputs(self, inputs, step, training=None):
        """One ELECTRA forward pass: the paper's Figure 1, top to bottom."""
        input_word_ids = tf.cast(inputs["input_word_ids"], tf.int32)  # (B, T)
        input_mask = tf.cast(inputs["input_mask"], tf.int32)  # (B, T)
        input_type_ids = tf.cast(inputs["input_type_ids"], tf.int32)  # (B, T)
        seeds = example_seeds(input_word_ids, self.seed, step)  # (B, 2)

        # 1. Mask ~15% of the tokens.
        masked = masking.mask_tokens(
            input_word_ids,
            input_mask,
            mask_token_id=self.mask_token_id,
            special_ids=self.special_token_ids,
            seed=seeds,
            mask_rate=self.mask_rate,
        )
        positions = masked["masked_lm_positions"]  # (B, P)

        # 2. Generator: MLM logits at the masked positions only.
        generator_logits = self.generator(
            {
                "input_word_ids": masked["input_word_ids"],
                "input_mask": input_mask,
                "input_type_ids": input_type_ids,
                "masked_lm_positions": positions,
            },
            training=training,
        )["logits"]  # (B, P, V)
        mlm_total, mlm_count = masked_lm_loss(
            generator_logits, masked["masked_lm_ids"], masked["masked_lm_weights"]
        )

        # 3. Sample replacements; no gradient flows back into the generator.
        sampled_ids = sample_from_softmax(
            tf.stop_gradient(generator_logits),
            temperature=self.temperature,
            disallow_ids=masked["masked_lm_ids"] if self.disallow_correct else None,
            seeds=seeds + tf.constant([2**40, 0], tf.int64),  # a stream apart from masking's
        )  # (B, P)

        # 4. Put them in place; a correct sample counts as original.
        corrupted_ids = masking.scatter_update(masked["input_word_ids"], sampled_ids, positions)
        rtd_labels = replaced_token_labels(input_word_ids, corrupted_ids, input_mask)  # (B, T)
        if self.objective == "electra_15":  # only the masked positions teach the discriminator
            rtd_weights = masking.positions_to_mask(positions, masked["masked_lm_weights"],
                                                    tf.shape(input_word_ids)[1])  # (B, T)
        else:
            rtd_weights = input_mask  # every real token

        # 5. Discriminator: is each token replaced?
        discriminator_logits = self.discriminator(
            {"input_word_ids": corrupted_ids, "input_mask": input_mask, "input_type_ids": input_type_ids},
            training=training,
        )["logits"]  # (B, T)
        rtd_total, rtd_count = replaced_token_detection_loss(discriminator_logits, rtd_labels, rtd_weights)

        # 6. mlm_loss + λ·rtd_loss (each normalised by the global token count).
        terms = {"mlm": (mlm_total, mlm_count), "rtd": (rtd_total, rtd_count)}
        return {
            "loss": loss_of_parts([terms], self.loss_weights),
            **terms,
            "masked": masked,
            "generator_logits": generator_logits,
            "sampled_ids": sampled_ids,
            "rtd_labels": rtd_labels,
            "discriminator_logits": discriminator_logits,
            "input_mask": input_mask,
            "rtd_weights": rtd_weights,
        }

    def update_metrics(self, outputs):
        mlm_total, mlm_count = outputs["mlm"]
        rtd_total, rtd_count = outputs["rtd"]
        self.mlm_loss_metric.update_state(mlm_total / tf.maximum(mlm_count, 1e-6), mlm_count)
        self.rtd_loss_metric.update_state(rtd_total / tf.maximum(rtd_count, 1e-6), rtd_count)

        masked = outputs["masked"]
        weights = masked["masked_lm_weights"]  # (B, P)
        predicted = tf.argmax(outputs["generator_logits"], axis=-1, output_type=tf.int32)
        self.mlm_accuracy.update_state(tf.cast(predicted == masked["masked_lm_ids"], tf.float32), weights)
        self.sampled_token_accuracy.update_state(
            tf.cast(outputs["sampled_ids"] == masked["masked_lm_ids"], tf.float32), weights
        )

        mask = tf.cast(outputs["rtd_weights"], tf.float32)  # (B, T): the tokens the RTD loss counts
        labels = outputs["rtd_labels"]
        probabilities = tf.sigmoid(outputs["discriminator_logits"])
        replaced = tf.cast(probabilities > 0.5, tf.int32)
        self.rtd_accuracy.update_state(tf.cast(replaced == labels, tf.float32), mask)
        self.rtd_precision.update_state(labels, probabilities, mask)
        self.rtd_recall.update_state(labels, probabilities, mask)
        self.rtd_auc.update_state(labels, probabilities, mask)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.name,
            "generator": self.serialize_generator(self.generator, self.discriminator),
            "discriminator": keras.layers.serialize(self.discriminator),
            "mask_rate": self.mask_rate,
            "discriminator_weight": self.discriminator_weight,
            "temperature": self.temperature,
            "disallow_correct": self.disallow_correct,
            "mask_token_id": self.mask_token_id,
            "special_token_ids": list(self.special_token_ids),
            "seed": self.seed,
            "objective": self.objective,
            "batch_parts": self.batch_parts,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


SHARED_EMBEDDINGS = "discriminator"  # marks a tied embedding layer in a saved config


def _serialize_generator(generator, discriminator):
    """A generator's config, its embedding layer replaced by a reference when tied."""
    config = keras.layers.serialize(generator)
    if generator.encoder.embedding_layer is discriminator.encoder.embedding_layer:
        config["config"]["encoder"]["config"]["embedding_layer"] = SHARED_EMBEDDINGS
    return config


def _deserialize_generator(config, discriminator):
    """Rebuilds a serialized generator, re-tying it to `discriminator`'s embeddings."""
    encoder_config = dict(config["config"]["encoder"]["config"])
    if encoder_config.get("embedding_layer") == SHARED_EMBEDDINGS:
        encoder_config["embedding_layer"] = discriminator.encoder.embedding_layer
    encoder = ElectraEncoder.from_config(encoder_config)
    head_config = {k: v for k, v in config["config"].items() if k != "encoder"}
    return ElectraGenerator(encoder=encoder, **head_config)
