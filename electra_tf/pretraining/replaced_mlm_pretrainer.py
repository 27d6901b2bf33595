"""ReplacedMLMPretrainer: the ELECTRA paper's Replace MLM and All-Tokens MLM ablations (§3.2, Table 5).

    mask 15% → generator MLM → sample replacements (no gradient) → put them in
    place of the masked tokens (no [MASK] left) → a full-size masked LM predicts
    the originals: at the masked positions (Replace MLM) or at every token, with
    a copy mechanism (All-Tokens MLM) → generator_mlm_loss + replaced_lm_loss

The two sit between BERT and ELECTRA: Replace MLM removes only the [MASK]
pretrain/fine-tune mismatch, All-Tokens MLM also learns from every token.
google-research/electra does not ship them; they follow the paper's text.
"""

import tensorflow as tf
import tf_keras as keras

from electra_tf.models.electra_generator import ElectraGenerator, gather_positions
from electra_tf.preprocessing import masking
from electra_tf.pretraining.electra_pretrainer import (
    DEFAULT_MASK_TOKEN_ID,
    DEFAULT_SPECIAL_TOKEN_IDS,
    PretrainingSteps,
    _deserialize_generator,
    _serialize_generator,
)
from electra_tf.preprocessing.example_seeds import example_seeds
from electra_tf.pretraining.losses import copy_mechanism_lm_loss, loss_of_parts, masked_lm_loss
from electra_tf.pretraining.sampling import sample_from_softmax

REPLACED_MLM_OBJECTIVES = ("replace_mlm", "all_tokens_mlm")


@keras.utils.register_keras_serializable(package="electra_tf")
class ReplacedMLMPretrainer(PretrainingSteps, keras.Model):
    """Trains a small generator and a full-size masked LM on the generator's replacements.

    Called with unmasked batches like `ElectraPretrainer`. Logs `mlm_loss` and
    `mlm_accuracy` (the generator's, at the masked positions) and
    `replaced_lm_loss` and `replaced_lm_accuracy` (the full-size model's: its
    loss, and its argmax accuracy at the masked positions).

    Args:
        generator: an `ElectraGenerator`, usually 1/4 of the model's width
            (its embeddings usually tied to the model's).
        model: an `ElectraGenerator` of full size: the model to keep.
        objective: "replace_mlm" (the loss at the masked positions) or
            "all_tokens_mlm" (the loss at every real token, with p(x) =
            D·[x = input token] + (1 - D)·softmax, D = sigmoid(dense(h))).
        mask_rate: fraction of tokens replaced (0.15).
        temperature: generator sampling temperature.
        mask_token_id: id of [MASK] (the generator's input at masked positions).
        special_token_ids: ids never masked.
        seed: the run's seed (masks and samples are stateless functions of it).
        batch_parts: each training step on this many parts of the batch, its loss
            and gradients the whole batch's (see `PretrainingSteps`).

    Example:
    >>> model = ElectraGenerator.from_preset("tiny")
    >>> generator = ElectraGenerator.from_preset("tiny", embedding_layer=model.encoder.embedding_layer)
    >>> pretrainer = ReplacedMLMPretrainer(generator, model, objective="all_tokens_mlm")
    >>> pretrainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> ids = tf.constant([[101, 2023, 2003, 1037, 3231, 102, 0, 0]] * 4)
    >>> data = tf.data.Dataset.from_tensors({"input_word_ids": ids,
    ...     "input_mask": tf.cast(ids > 0, tf.int32), "input_type_ids": tf.zeros_like(ids)})
    >>> sorted(pretrainer.fit(data, epochs=1, verbose=0).history)
    ['loss', 'mlm_accuracy', 'mlm_loss', 'replaced_lm_accuracy', 'replaced_lm_loss']
    """

    def __init__(
        self,
        generator,
        model,
        objective="replace_mlm",
        mask_rate=0.15,
        temperature=1.0,
        mask_token_id=DEFAULT_MASK_TOKEN_ID,
        special_token_ids=DEFAULT_SPECIAL_TOKEN_IDS,
        seed=0,
        batch_parts=1,
        **kwargs,
    ):
        super().__init__(batch_parts=batch_parts, **kwargs)
        self.distribute_reduction_method = "first"  # results are global (see ElectraPretrainer)
        if isinstance(model, dict):
            model = keras.layers.deserialize(model)
        if isinstance(generator, dict) and isinstance(model, ElectraGenerator):
            generator = _deserialize_generator(generator, model)
        for name, value in (("generator", generator), ("model", model)):
            if not isinstance(value, ElectraGenerator):
                raise ValueError(f"`{name}` must be an ElectraGenerator; received {type(value).__name__}.")
        if objective not in REPLACED_MLM_OBJECTIVES:
            raise ValueError(f"`objective` must be one of {REPLACED_MLM_OBJECTIVES}; received {objective!r}.")
        if not 0.0 < mask_rate < 1.0:
            raise ValueError(f"`mask_rate` must be in (0, 1); received {mask_rate}.")
        self.generator = generator
        self.model = model
        self.objective = objective
        self.mask_rate = mask_rate
        self.temperature = temperature
        self.mask_token_id = mask_token_id
        self.special_token_ids = tuple(int(i) for i in special_token_ids)
        self.seed = int(seed)
        # The copy probability D of All-Tokens MLM: one sigmoid unit per token.
        self.copy_head = None
        if objective == "all_tokens_mlm":
            self.copy_head = keras.layers.Dense(
                1, kernel_initializer=keras.initializers.TruncatedNormal(
                    stddev=model.encoder.initializer_range),
                name="copy_head", dtype=self.dtype_policy)
            self.copy_head.build((None, None, model.encoder.hidden_size))
        self.mlm_loss_metric = keras.metrics.Mean("mlm_loss")
        self.mlm_accuracy = keras.metrics.Mean("mlm_accuracy")
        self.replaced_lm_loss_metric = keras.metrics.Mean("replaced_lm_loss")
        self.replaced_lm_accuracy = keras.metrics.Mean("replaced_lm_accuracy")
        self.build()  # every weight exists already (see ElectraPretrainer)

    @property
    def metrics(self):
        return [self.mlm_loss_metric, self.mlm_accuracy, self.replaced_lm_loss_metric,
                self.replaced_lm_accuracy]

    @property
    def encoder(self):
        """The encoder that fine-tuning starts from (the full-size model's)."""
        return self.model.encoder

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def compute_pretraining_outputs(self, inputs, step, training=None):
        input_word_ids = tf.cast(inputs["input_word_ids"], tf.int32)  # (B, T)
        input_mask = tf.cast(inputs["input_mask"], tf.int32)  # (B, T)
        input_type_ids = tf.cast(inputs["input_type_ids"], tf.int32)  # (B, T)
        seeds = example_seeds(input_word_ids, self.seed, step)  # (B, 2)

        # 1. Mask ~15% of the tokens; 2. the generator's MLM at the masked positions.
        masked = masking.mask_tokens(
            input_word_ids, input_mask, mask_token_id=self.mask_token_id,
            special_ids=self.special_token_ids, seed=seeds, mask_rate=self.mask_rate,
        )
        positions = masked["masked_lm_positions"]  # (B, P)
        generator_logits = self.generator(
            {"input_word_ids": masked["input_word_ids"], "input_mask": input_mask,
             "input_type_ids": input_type_ids, "masked_lm_positions": positions},
            training=training,
        )["logits"]  # (B, P, V)
        mlm_total, mlm_count = masked_lm_loss(generator_logits, masked["masked_lm_ids"],
                                              masked["masked_lm_weights"])

        # 3. Samples take the place of every masked token (no [MASK] in the model's input).
        sampled_ids = sample_from_softmax(
            tf.stop_gradient(generator_logits), temperature=self.temperature,
            seeds=seeds + tf.constant([2**40, 0], tf.int64),
        )  # (B, P)
        corrupted_ids = masking.scatter_update(input_word_ids, sampled_ids, positions)  # (B, T)
        corrupted = {"input_word_ids": corrupted_ids, "input_mask": input_mask,
                     "input_type_ids": input_type_ids}

        # 4. The full-size model predicts the original tokens.
        if self.objective == "replace_mlm":
            outputs = self.model({**corrupted, "masked_lm_positions": positions}, training=training)
            logits = outputs["logits"]  # (B, P, V)
            lm_total, lm_count = masked_lm_loss(logits, masked["masked_lm_ids"],
                                                masked["masked_lm_weights"])
        else:  # all_tokens_mlm: every token, copying the input token with probability D
            outputs = self.model(corrupted, training=training)
            copy_logits = tf.squeeze(self.copy_head(outputs["sequence_output"]), -1)  # (B, T)
            lm_total, lm_count = copy_mechanism_lm_loss(
                outputs["logits"], copy_logits, corrupted_ids, input_word_ids, input_mask)
            logits = gather_positions(outputs["logits"], positions)  # (B, P, V), for the accuracy
        terms = {"mlm": (mlm_total, mlm_count), "replaced_lm": (lm_total, lm_count)}
        return {
            "loss": loss_of_parts([terms], self.loss_weights),
            **terms,
            "masked": masked,
            "generator_logits": generator_logits,
            "model_logits": logits,
            "sampled_ids": sampled_ids,
            "corrupted_ids": corrupted_ids,
        }

    @property
    def loss_weights(self):
        return {"mlm": 1.0, "replaced_lm": 1.0}

    def update_metrics(self, outputs):
        masked = outputs["masked"]
        weights = masked["masked_lm_weights"]  # (B, P)
        for (total, count), loss, accuracy, logits in (
            (outputs["mlm"], self.mlm_loss_metric, self.mlm_accuracy, outputs["generator_logits"]),
            (outputs["replaced_lm"], self.replaced_lm_loss_metric, self.replaced_lm_accuracy,
             outputs["model_logits"]),
        ):
            loss.update_state(total / tf.maximum(count, 1e-6), count)
            predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)  # (B, P)
            accuracy.update_state(tf.cast(predicted == masked["masked_lm_ids"], tf.float32), weights)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.name,
            "generator": _serialize_generator(self.generator, self.model),
            "model": keras.layers.serialize(self.model),
            "objective": self.objective,
            "mask_rate": self.mask_rate,
            "temperature": self.temperature,
            "mask_token_id": self.mask_token_id,
            "special_token_ids": list(self.special_token_ids),
            "seed": self.seed,
            "batch_parts": self.batch_parts,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

