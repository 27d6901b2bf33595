"""ElectricPretrainer: an energy-based cloze model trained by noise-contrastive estimation.

    15% of positions → samples of a two-tower cloze generator q (no gradient)
    → energy model E(x)_t on every token → NCE: was each token drawn from q?
    → cloze_loss + 50·nce_loss

Electric (Clark, Luong, Le and Manning, EMNLP 2020, "Pre-Training Transformers
as Energy-Based Cloze Models"); google-research/electra's `electric_objective`.
The trained energy model scores a token in context without masking it:
`score_texts` turns that into pseudo-log-likelihoods for re-ranking.
"""

import tensorflow as tf
import tf_keras as keras

from electra_tf.models.electra_cloze_generator import ElectraClozeGenerator
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.models.electra_generator import gather_positions
from electra_tf.preprocessing import masking
from electra_tf.pretraining.electra_pretrainer import (
    DEFAULT_MASK_TOKEN_ID,
    DEFAULT_SPECIAL_TOKEN_IDS,
    SHARED_EMBEDDINGS,
    ElectraPretrainer,
)
from electra_tf.preprocessing.example_seeds import example_seeds
from electra_tf.pretraining.losses import electric_loss, loss_of_parts, masked_lm_loss
from electra_tf.pretraining.sampling import sample_from_softmax


def candidate_weights(input_word_ids, input_mask, special_token_ids):
    """(batch, seq) 1.0 for real tokens that are not special: where the cloze loss counts.

    Example:
    >>> candidate_weights(tf.constant([[101, 7, 102, 0]]), tf.constant([[1, 1, 1, 0]]),
    ...                   (0, 101, 102)).numpy().tolist()
    [[0.0, 1.0, 0.0, 0.0]]
    """
    special = tf.reduce_any(
        tf.equal(input_word_ids[:, :, None], tf.constant(special_token_ids, tf.int32)), axis=-1
    )  # (B, T)
    return tf.cast(input_mask, tf.float32) * tf.cast(~special, tf.float32)


def token_log_probs(logits, token_ids):
    """log softmax(logits)[token] at every position: (B, T, V), (B, T) → (B, T).

    Example:
    >>> round(float(token_log_probs(tf.zeros((1, 1, 4)), tf.constant([[3]]))[0, 0]), 4)
    -1.3863
    """
    return -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=token_ids, logits=logits)

def _serialize_cloze_generator(generator, discriminator):
    """A cloze generator's config, each tower's embedding layer a reference when shared."""
    config = keras.layers.serialize(generator)
    shared = discriminator.encoder.embedding_layer
    for tower in ("left_to_right", "right_to_left"):
        embeddings = getattr(generator, tower).embedding_layer
        if embeddings is shared:
            config["config"][tower]["config"]["embedding_layer"] = SHARED_EMBEDDINGS
        elif tower == "right_to_left" and embeddings is generator.left_to_right.embedding_layer:
            config["config"][tower]["config"]["embedding_layer"] = "left_to_right"
    return config


def _deserialize_cloze_generator(config, discriminator):
    """Rebuilds a serialized cloze generator with its embedding layers shared as they were."""
    towers = {}
    for tower in ("left_to_right", "right_to_left"):
        encoder_config = dict(config["config"][tower]["config"])
        if encoder_config.get("embedding_layer") == SHARED_EMBEDDINGS:
            encoder_config["embedding_layer"] = discriminator.encoder.embedding_layer
        elif encoder_config.get("embedding_layer") == "left_to_right":
            encoder_config["embedding_layer"] = towers["left_to_right"].embedding_layer
        towers[tower] = ElectraEncoder.from_config(encoder_config)
    head_config = {k: v for k, v in config["config"].items() if k not in towers}
    return ElectraClozeGenerator(**towers, **head_config)


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectricPretrainer(ElectraPretrainer):
    """Trains Electric: a cloze generator (the noise q) and an energy model, jointly, with `fit`.

    Called with unmasked batches like `ElectraPretrainer`, and logs the same
    metrics: `mlm_*` are the cloze generator's (loss over every non-special
    token, accuracy at the sampled positions), `rtd_*` the noise-detection
    classifier's, whose logit is E + log q + log(k/(1-k)) (`electric_loss`).
    Unlike ELECTRA every sampled position counts as noise, even when the draw
    equals the original token, as in the original.

    Args:
        generator: an `ElectraClozeGenerator` (two towers, usually 1/4 width).
        discriminator: an `ElectraDiscriminator` whose `logits` are the energies
            E(x)_t (the model to keep; its `encoder` is fine-tuned as ELECTRA's).
        mask_rate: k, the fraction of positions replaced by noise samples (0.15).
        discriminator_weight: λ in cloze_loss + λ·nce_loss (50.0, the original's).
        temperature: generator sampling temperature.
        disallow_correct: never sample the original token.
        mask_token_id: id of [MASK] (never chosen as a position).
        special_token_ids: ids never chosen, nor counted in the cloze loss.
        seed: the run's seed (positions and samples are stateless functions of it).
        batch_parts: each training step on this many parts of the batch, its loss
            and gradients the whole batch's (see `PretrainingSteps`).

    Example:
    >>> from electra_tf.models.electra_discriminator import ElectraDiscriminator
    >>> from electra_tf.models.presets import build_from_preset
    >>> discriminator = ElectraDiscriminator.from_preset("tiny")
    >>> tied = discriminator.encoder.embedding_layer
    >>> generator = ElectraClozeGenerator(build_from_preset("tiny", "encoder", embedding_layer=tied),
    ...                                   build_from_preset("tiny", "encoder", embedding_layer=tied))
    >>> pretrainer = ElectricPretrainer(generator, discriminator)
    >>> pretrainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> ids = tf.constant([[101, 2023, 2003, 1037, 3231, 102, 0, 0]] * 4)
    >>> data = tf.data.Dataset.from_tensors({"input_word_ids": ids,
    ...     "input_mask": tf.cast(ids > 0, tf.int32), "input_type_ids": tf.zeros_like(ids)})
    >>> history = pretrainer.fit(data, epochs=1, verbose=0)
    >>> "rtd_loss" in history.history
    True
    """

    generator_class = ElectraClozeGenerator

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
        batch_parts=1,
        **kwargs,
    ):
        kwargs.pop("objective", None)  # from get_config(): Electric has one objective
        super().__init__(
            generator, discriminator, mask_rate=mask_rate, discriminator_weight=discriminator_weight,
            temperature=temperature, disallow_correct=disallow_correct, mask_token_id=mask_token_id,
            special_token_ids=special_token_ids, seed=seed, batch_parts=batch_parts, **kwargs,
        )
        self.objective = "electric"

    @property
    def tied_embeddings(self):
        return self.generator.left_to_right.embedding_layer is self.discriminator.encoder.embedding_layer

    def compute_pretraining_outputs(self, inputs, step, training=None):
        """One Electric forward pass (the paper's §3), top to bottom."""
        input_word_ids = tf.cast(inputs["input_word_ids"], tf.int32)  # (B, T)
        input_mask = tf.cast(inputs["input_mask"], tf.int32)  # (B, T)
        input_type_ids = tf.cast(inputs["input_type_ids"], tf.int32)  # (B, T)
        seeds = example_seeds(input_word_ids, self.seed, step)  # (B, 2)
        unmasked = {"input_word_ids": input_word_ids, "input_mask": input_mask,
                    "input_type_ids": input_type_ids}

        # 1. Choose ~15% of the positions for noise (the cloze model needs no [MASK]).
        masked = masking.mask_tokens(
            input_word_ids, input_mask, mask_token_id=self.mask_token_id,
            special_ids=self.special_token_ids, seed=seeds, mask_rate=self.mask_rate,
        )
        positions = masked["masked_lm_positions"]  # (B, P)

        # 2. Cloze generator: q(· | x without x_t) at every position; its loss on every candidate.
        cloze_logits = self.generator(unmasked, training=training)["logits"]  # (B, T, V)
        mlm_total, mlm_count = masked_lm_loss(
            cloze_logits, input_word_ids,
            candidate_weights(input_word_ids, input_mask, self.special_token_ids))
        generator_logits = gather_positions(cloze_logits, positions)  # (B, P, V)

        # 3. Noise samples at the chosen positions; no gradient flows into the generator.
        sampled_ids = sample_from_softmax(
            tf.stop_gradient(generator_logits), temperature=self.temperature,
            disallow_ids=masked["masked_lm_ids"] if self.disallow_correct else None,
            seeds=seeds + tf.constant([2**40, 0], tf.int64),
        )  # (B, P)
        corrupted_ids = masking.scatter_update(input_word_ids, sampled_ids, positions)  # (B, T)
        # Every sampled position is noise, even where the draw equals the data.
        noise_labels = tf.cast(masking.positions_to_mask(
            positions, masked["masked_lm_weights"], tf.shape(input_word_ids)[1]), tf.int32) * input_mask

        # 4. Energies of the tokens in place, and the noise's log-probability of each.
        energies = self.discriminator(
            {"input_word_ids": corrupted_ids, "input_mask": input_mask, "input_type_ids": input_type_ids},
            training=training,
        )["logits"]  # (B, T)
        noise_log_probs = token_log_probs(cloze_logits, corrupted_ids)  # (B, T)

        # 5. cloze_loss + λ·nce_loss.
        nce_total, nce_count = electric_loss(energies, noise_log_probs, noise_labels, input_mask,
                                             self.mask_rate)
        terms = {"mlm": (mlm_total, mlm_count), "rtd": (nce_total, nce_count)}
        nce_logits = (energies + tf.stop_gradient(noise_log_probs)
                      + tf.math.log(self.mask_rate / (1.0 - self.mask_rate)))  # (B, T), for metrics
        return {
            "loss": loss_of_parts([terms], self.loss_weights),
            **terms,
            "masked": masked,
            "generator_logits": generator_logits,
            "sampled_ids": sampled_ids,
            "rtd_labels": noise_labels,
            "discriminator_logits": nce_logits,
            "energies": energies,
            "input_mask": input_mask,
            "rtd_weights": input_mask,
        }

    def get_config(self):
        config = super().get_config()
        del config["objective"]
        return config

    @staticmethod
    def serialize_generator(generator, discriminator):
        return _serialize_cloze_generator(generator, discriminator)

    @staticmethod
    def deserialize_generator(config, discriminator):
        return _deserialize_cloze_generator(config, discriminator)
