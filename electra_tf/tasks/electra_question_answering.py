"""ElectraQuestionAnswering: extractive QA (SQuAD 1.1/2.0) as start/end logits over word pieces."""

import warnings

import tensorflow as tf
import tf_keras as keras

from electra_tf.layers.build_utils import build_in_scope
from electra_tf.layers.transformer_layer import gelu
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.models.electra_encoder import encoder_argument
from electra_tf.models.model_io import PretrainedModelMixin
from electra_tf.tasks.gradient_accumulation_mixin import GradientAccumulationMixin
from electra_tf.utils.checks import is_integer

HEADS = ("huggingface", "electra")
# Head names of earlier versions → today's: "simple" was the transformers-compatible head,
# now "huggingface" as in `ElectraClassifier`.
DEPRECATED_HEADS = {"simple": "huggingface"}
# google-research/electra's finetune/qa settings: learning rate for `compile(optimizer="auto")`
# (the paper's Large rate, the safe one), beam of start positions, width of the end/answerable
# hidden layers, weight of the answerability loss.
DEFAULT_LEARNING_RATE = 5e-5
DEFAULT_BEAM_SIZE = 20
DEFAULT_HEAD_HIDDEN_SIZE = 512
IMPOSSIBLE_LOSS_WEIGHT = 0.5
# The original code masks with logits + 1000 * (mask - 1): exp(-1000) is 0 in float32, so a
# masked position gets no probability, while the logits stay finite (no inf - inf = nan).
MASK_PENALTY = 1000.0


def answer_mask(input_mask, input_type_ids):
    """Where an answer may start or end: the context (segment 1) and [CLS] (no answer).

    Args:
        input_mask, input_type_ids: int tensors (batch, seq), question first
            (`[CLS] question [SEP] context [SEP]`).

    Returns:
        float32 (batch, seq), 1 where allowed. The context's closing [SEP]
        is segment 1 too and stays allowed, as in the original code.
    """
    mask = tf.cast(input_mask, tf.float32) * tf.cast(input_type_ids, tf.float32)  # (B, T)
    return tf.maximum(mask, tf.one_hot(0, tf.shape(mask)[1], dtype=tf.float32)[tf.newaxis])


def span_loss(logits, positions):
    """Mean cross-entropy of (batch, seq) float32 logits against int positions (batch,)."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=positions, logits=logits)
    )


def question_answering_loss(outputs, start_positions, end_positions, is_impossible=None):
    """(start loss + end loss) / 2, plus 0.5 · answerability loss when the head has one.

    Args:
        outputs: the model's dict; "start_logits" and "end_logits" (batch, seq)
            (the "electra" head's end logits given the gold start, i.e. called
            with `start_positions`), and "impossible_logits" (batch,) if present.
        start_positions, end_positions: int (batch,), gold token indices (0,
            [CLS], where the answer is not in the window).
        is_impossible: int/float (batch,), 1 where the window holds no
            answer; needed when `outputs` has "impossible_logits".

    Returns:
        float32 scalar.
    """
    start_positions = tf.cast(start_positions, tf.int32)
    end_positions = tf.cast(end_positions, tf.int32)
    loss = (span_loss(outputs["start_logits"], start_positions)
            + span_loss(outputs["end_logits"], end_positions)) / 2.0
    if "impossible_logits" in outputs:
        if is_impossible is None:
            raise ValueError(
                "The 'electra' head's loss needs `is_impossible` labels (batch,); received None."
            )
        impossible_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.cast(is_impossible, tf.float32), logits=outputs["impossible_logits"]))
        loss += IMPOSSIBLE_LOSS_WEIGHT * impossible_loss
    return loss


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraQuestionAnswering(GradientAccumulationMixin, PretrainedModelMixin, keras.Model):
    """An encoder plus a span-extraction head: start and end logits per word piece.

    Inputs are packed `[CLS] question [SEP] context [SEP]` (type ids 0, then 1);
    `electra_tf.data.squad_dataset.create_squad_features` makes them, with
    the windows and character offsets that post-processing needs.

    Two heads:
        - "huggingface" (BERT's SQuAD head, transformers' `ElectraForQuestionAnswering`;
          "simple" in earlier versions, still accepted with a DeprecationWarning):
          one dense(2) named "qa_outputs" on `sequence_output` gives start and
          end logits. Returns {"start_logits", "end_logits"}, (batch, seq).
        - "electra" (google-research/electra `finetune/qa/qa_tasks.py`): start
          logits masked to the context and [CLS]; end logits from
          dense(head_hidden_size, GELU) over [start representation; token],
          where the start is the gold one in training (call with
          `start_positions`) and each of the `beam_size` best starts at
          inference; an answerability classifier on [[CLS]; start-probability-
          weighted token] trained on `is_impossible`. Returns {"start_logits"
          (batch, seq), "start_top_index" (batch, beam), "end_logits"
          (batch, beam, seq): the end logits for each of those starts,
          "impossible_logits" (batch,)}; with `start_positions`, "end_logits"
          is (batch, seq) and there is no "start_top_index".

    Logits are float32, also under mixed precision. `fit` trains on
    `(features, {"start_positions", "end_positions", "is_impossible"})` with
    `question_answering_loss`; `compile()` picks `LayerwiseDecayAdamW` (5e-5).
    Turn logits into answers with `electra_tf.tasks.squad_postprocessing`
    (`best_spans` in the graph, `postprocess_predictions` for SQuAD).

    Args:
        encoder: an `ElectraEncoder`, e.g. `ElectraEncoder.from_huggingface(path)`.
        head: "huggingface" or "electra", see above.
        beam_size: "electra" head: how many top start positions get end
            logits at inference (20 in the original).
        head_hidden_size: "electra" head: width of its two hidden layers (512).

    Example:
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=2,
    ...                          num_heads=2, intermediate_size=16)
    >>> inputs = {"input_word_ids": tf.constant([[2, 5, 3, 7, 8, 3]]),
    ...           "input_mask": tf.constant([[1, 1, 1, 1, 1, 1]]),
    ...           "input_type_ids": tf.constant([[0, 0, 0, 1, 1, 1]])}
    >>> ElectraQuestionAnswering(encoder)(inputs)["end_logits"].shape
    TensorShape([1, 6])
    >>> outputs = ElectraQuestionAnswering(encoder, head="electra", beam_size=2)(inputs)
    >>> outputs["start_top_index"].shape, outputs["end_logits"].shape
    (TensorShape([1, 2]), TensorShape([1, 2, 6]))
    """

    def __init__(
        self,
        encoder,
        head="huggingface",
        beam_size=DEFAULT_BEAM_SIZE,
        head_hidden_size=DEFAULT_HEAD_HIDDEN_SIZE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        encoder = encoder_argument(encoder)
        if head in DEPRECATED_HEADS:
            warnings.warn(f"ElectraQuestionAnswering(head={head!r}) is deprecated; use "
                          f"head={DEPRECATED_HEADS[head]!r}.", DeprecationWarning, stacklevel=2)
            head = DEPRECATED_HEADS[head]
        if head not in HEADS:
            raise ValueError(f"`head` must be one of {list(HEADS)}; received head={head!r}.")
        for name, value in (("beam_size", beam_size), ("head_hidden_size", head_hidden_size)):
            if not is_integer(value) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; received {name}={value!r}.")
        self.encoder = encoder
        self.head = head
        self.beam_size = beam_size
        self.head_hidden_size = head_hidden_size
        self.loss_tracker = keras.metrics.Mean(name="loss")

        def dense(units, name):  # a fresh initializer per weight: reused ones repeat values
            return keras.layers.Dense(
                units,
                kernel_initializer=keras.initializers.TruncatedNormal(
                    stddev=encoder.initializer_range),
                name=name,
                dtype=self.dtype_policy,
            )

        # === Layers ===
        if head == "huggingface":
            self.qa_outputs = dense(2, "qa_outputs")
        else:
            self.start_dense = dense(1, "start_logits")
            self.end_hidden = dense(head_hidden_size, "end_hidden")
            self.end_dense = dense(1, "end_logits")
            self.answerable_hidden = dense(head_hidden_size, "answerable_hidden")
            self.impossible_dense = dense(1, "impossible_logits")
        self.build()

    def build(self, input_shape=None):
        hidden = self.encoder.hidden_size
        with tf.name_scope(self.name):
            if self.head == "huggingface":
                build_in_scope(self.qa_outputs, (None, None, hidden))
            else:
                build_in_scope(self.start_dense, (None, None, hidden))
                build_in_scope(self.end_hidden, (None, None, 2 * hidden))
                build_in_scope(self.end_dense, (None, None, self.head_hidden_size))
                build_in_scope(self.answerable_hidden, (None, 2 * hidden))
                build_in_scope(self.impossible_dense, (None, self.head_hidden_size))
        self.built = True

    def call(self, inputs, training=None, start_positions=None, remove_padding=False):
        """Logits; `start_positions` (batch,) conditions the "electra" head's end on gold starts.

        `remove_padding=True` (what the exported task model runs) runs the
        encoder's dense layers on real tokens only, see `ElectraEncoder.call`:
        the same logits wherever the input mask is 1.
        """
        sequence = self.encoder(inputs, training=training, remove_padding=remove_padding)
        sequence = sequence["sequence_output"]  # (B, T, H)
        if self.head == "huggingface":
            logits = tf.cast(self.qa_outputs(sequence), tf.float32)  # (B, T, 2)
            return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}

        allowed = answer_mask(inputs["input_mask"], inputs["input_type_ids"])  # (B, T)
        penalty = MASK_PENALTY * (allowed - 1.0)
        start_logits = tf.cast(self.start_dense(sequence)[..., 0], tf.float32) + penalty
        outputs = {"start_logits": start_logits}
        if start_positions is not None:  # training: the end given the gold start
            start = tf.gather(sequence, tf.cast(start_positions, tf.int32), batch_dims=1)  # (B, H)
            end_logits = self._end_logits(start[:, tf.newaxis], sequence)[:, 0]  # (B, T)
            outputs["end_logits"] = end_logits + penalty
        else:  # inference: the end given each of the best starts
            beam = tf.minimum(self.beam_size, tf.shape(sequence)[1])
            _, top_index = tf.math.top_k(start_logits, k=beam)  # (B, K)
            start = tf.gather(sequence, top_index, batch_dims=1)  # (B, K, H)
            outputs["start_top_index"] = top_index
            outputs["end_logits"] = self._end_logits(start, sequence) + penalty[:, tf.newaxis]

        # Answerability from [CLS] and the expected start representation under the start softmax.
        start_probs = tf.cast(tf.nn.softmax(start_logits), sequence.dtype)  # (B, T)
        expected_start = tf.einsum("bt,bth->bh", start_probs, sequence)  # (B, H)
        features = tf.concat([sequence[:, 0], expected_start], axis=-1)  # (B, 2H)
        hidden = gelu(self.answerable_hidden(features))  # (B, head_hidden_size)
        outputs["impossible_logits"] = tf.cast(self.impossible_dense(hidden)[:, 0], tf.float32)
        return outputs

    def _end_logits(self, start, sequence):
        """start (B, K, H), sequence (B, T, H) → end logits (B, K, T), float32."""
        k, t = tf.shape(start)[1], tf.shape(sequence)[1]
        pairs = tf.concat([
            tf.broadcast_to(start[:, :, tf.newaxis], [tf.shape(start)[0], k, t, start.shape[-1]]),
            tf.broadcast_to(sequence[:, tf.newaxis], [tf.shape(start)[0], k, t, start.shape[-1]]),
        ], axis=-1)  # (B, K, T, 2H): [start; token]
        hidden = gelu(self.end_hidden(pairs))  # (B, K, T, head_hidden_size)
        return tf.cast(self.end_dense(hidden)[..., 0], tf.float32)  # (B, K, T)

    # === Training ===
    def compile(self, optimizer="auto", **kwargs):
        """`keras.Model.compile` with the loss built in; optimizer "auto" is
        `LayerwiseDecayAdamW(5e-5)` (pass `create_finetuning_optimizer(...)` for
        warmup and linear decay). A `loss` argument is refused: the loss is
        `question_answering_loss`."""
        if "loss" in kwargs:
            raise ValueError(
                "ElectraQuestionAnswering computes its own loss (question_answering_loss); "
                f"received loss={kwargs['loss']!r}. Call compile() without `loss`."
            )
        if isinstance(optimizer, str) and optimizer == "auto":
            from electra_tf.optimization.layerwise_decay_adamw import LayerwiseDecayAdamW

            optimizer = LayerwiseDecayAdamW(
                DEFAULT_LEARNING_RATE, num_layers=self.encoder.num_layers
            )
        super().compile(optimizer=optimizer, **kwargs)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def _loss(self, x, y, training):
        _check_labels(y)
        gold_start = y["start_positions"] if self.head == "electra" else None
        outputs = self(x, training=training, start_positions=gold_start)
        loss = question_answering_loss(
            outputs, y["start_positions"], y["end_positions"], y.get("is_impossible"))
        return loss + tf.add_n(self.losses) if self.losses else loss

    def training_loss(self, data):
        """`question_answering_loss` of a (micro-)batch, for `GradientAccumulationMixin.train_step`."""
        x, y = data[0], data[1]
        loss = self._loss(x, y, training=True)
        self.loss_tracker.update_state(loss)
        # Replicas' gradients are summed: divide as Keras' compiled losses do, so that
        # a replicated step makes the update of one device on the whole batch.
        return loss / tf.distribute.get_strategy().num_replicas_in_sync

    def test_step(self, data):
        x, y = data[0], data[1]
        self.loss_tracker.update_state(self._loss(x, y, training=False))
        return {"loss": self.loss_tracker.result()}

    # === Config and checkpoints ===
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.name,
            "encoder": keras.layers.serialize(self.encoder),
            "head": self.head,
            "beam_size": self.beam_size,
            "head_hidden_size": self.head_hidden_size,
        }

    @classmethod
    def from_config(cls, config):
        # Models saved by earlier versions name the transformers head "simple": read them quietly.
        head = config.get("head")
        config = {**config, "head": DEPRECATED_HEADS.get(head, head)}
        return super().from_config(config)

    @classmethod
    def from_huggingface(cls, path):
        """Loads a local `ElectraForQuestionAnswering` checkpoint (as head="huggingface")."""
        from electra_tf.checkpoint_formats import (
            huggingface_question_answering as checkpoint_format,
        )

        checkpoint, arguments = checkpoint_format.read_question_answering_checkpoint(path)
        model = cls(ElectraEncoder.from_huggingface(path), **arguments)
        checkpoint_format.assign_question_answering_head(model, checkpoint)
        return model

    def save_huggingface(self, path, overwrite=False):
        """Writes an `ElectraForQuestionAnswering` directory; only head="huggingface" has one."""
        from electra_tf.checkpoint_formats.huggingface_question_answering import (
            save_huggingface_question_answering,
        )

        save_huggingface_question_answering(self, path, overwrite=overwrite)


def _check_labels(y):
    if not isinstance(y, dict) or not {"start_positions", "end_positions"} <= set(y):
        received = sorted(y) if isinstance(y, dict) else type(y).__name__
        raise ValueError(
            "ElectraQuestionAnswering trains on labels {'start_positions', 'end_positions', "
            f"'is_impossible'}} (token indices, (batch,)); received {received}. "
            "electra_tf.data.squad_dataset.make_squad_dataset makes them."
        )
