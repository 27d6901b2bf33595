"""MaskedLMPretrainer: BERT-style masked-LM pretraining, ELECTRA's baseline.

Same data, same masking, same model shapes as `ElectraPretrainer`; the
loss is the MLM cross-entropy at the masked positions only (15% of tokens
teach the model, against 100% for replaced token detection).
"""

import tensorflow as tf
import tf_keras as keras

from electra_tf.models.electra_generator import ElectraGenerator
from electra_tf.preprocessing import masking
from electra_tf.pretraining.electra_pretrainer import (
    DEFAULT_MASK_TOKEN_ID,
    DEFAULT_SPECIAL_TOKEN_IDS,
    PretrainingSteps,
)
from electra_tf.preprocessing.example_seeds import example_seeds
from electra_tf.pretraining.losses import loss_of_parts, masked_lm_loss


@keras.utils.register_keras_serializable(package="electra_tf")
class MaskedLMPretrainer(PretrainingSteps, keras.Model):
    """Trains a masked language model (an `ElectraGenerator` of full size) with `fit`.

    Its `generator.encoder` is then fine-tuned exactly like an ELECTRA
    discriminator's encoder, which makes equal-compute comparisons fair.

    Args:
        generator: an `ElectraGenerator`, usually of the discriminator's size.
        mask_rate: fraction of tokens masked (0.15).
        mask_token_id: id of [MASK].
        special_token_ids: ids never masked.
        seed: the run's seed (masks are stateless functions of seed, step, example).
        batch_parts: each training step on this many parts of the batch, its loss
            and gradients the whole batch's (see `PretrainingSteps`).

    Example:
    >>> model = MaskedLMPretrainer(ElectraGenerator.from_preset("tiny"))
    >>> model.compile(optimizer="adam")
    """

    def __init__(
        self,
        generator,
        mask_rate=0.15,
        mask_token_id=DEFAULT_MASK_TOKEN_ID,
        special_token_ids=DEFAULT_SPECIAL_TOKEN_IDS,
        seed=0,
        batch_parts=1,
        **kwargs,
    ):
        super().__init__(batch_parts=batch_parts, **kwargs)
        self.distribute_reduction_method = "first"  # results are global (see ElectraPretrainer)
        if isinstance(generator, dict):
            generator = keras.layers.deserialize(generator)
        if not isinstance(generator, ElectraGenerator):
            raise ValueError(f"`generator` must be an ElectraGenerator; received {type(generator).__name__}.")
        self.generator = generator
        self.mask_rate = mask_rate
        self.mask_token_id = mask_token_id
        self.special_token_ids = tuple(int(i) for i in special_token_ids)
        self.seed = int(seed)
        self.mlm_loss_metric = keras.metrics.Mean("mlm_loss")
        self.mlm_accuracy = keras.metrics.Mean("mlm_accuracy")
        self.build()  # the generator holds every weight already (see ElectraPretrainer)

    @property
    def metrics(self):
        return [self.mlm_loss_metric, self.mlm_accuracy]

    @property
    def encoder(self):
        """The encoder that fine-tuning starts from (the masked LM's)."""
        return self.generator.encoder

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=None):
        return self.generator(inputs, training=training)

    def compute_pretraining_outputs(self, inputs, step, training=None):
        input_word_ids = tf.cast(inputs["input_word_ids"], tf.int32)  # (B, T)
        input_mask = tf.cast(inputs["input_mask"], tf.int32)
        masked = masking.mask_tokens(
            input_word_ids,
            input_mask,
            mask_token_id=self.mask_token_id,
            special_ids=self.special_token_ids,
            seed=example_seeds(input_word_ids, self.seed, step),
            mask_rate=self.mask_rate,
        )
        logits = self.generator(
            {
                "input_word_ids": masked["input_word_ids"],
                "input_mask": input_mask,
                "input_type_ids": inputs["input_type_ids"],
                "masked_lm_positions": masked["masked_lm_positions"],
            },
            training=training,
        )["logits"]  # (B, P, V)
        total, count = masked_lm_loss(logits, masked["masked_lm_ids"], masked["masked_lm_weights"])
        terms = {"mlm": (total, count)}
        return {"loss": loss_of_parts([terms], self.loss_weights), **terms, "masked": masked,
                "logits": logits}

    @property
    def loss_weights(self):
        return {"mlm": 1.0}

    def update_metrics(self, outputs):
        total, count = outputs["mlm"]
        self.mlm_loss_metric.update_state(total / tf.maximum(count, 1e-6), count)
        masked = outputs["masked"]
        predicted = tf.argmax(outputs["logits"], axis=-1, output_type=tf.int32)
        self.mlm_accuracy.update_state(
            tf.cast(predicted == masked["masked_lm_ids"], tf.float32), masked["masked_lm_weights"]
        )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.name,
            "generator": keras.layers.serialize(self.generator),
            "mask_rate": self.mask_rate,
            "mask_token_id": self.mask_token_id,
            "special_token_ids": list(self.special_token_ids),
            "seed": self.seed,
            "batch_parts": self.batch_parts,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
