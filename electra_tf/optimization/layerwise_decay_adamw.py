"""LayerwiseDecayAdamW: AdamW whose learning rate shrinks layer by layer towards the embeddings.

ELECTRA's fine-tuning recipe (Clark et al. 2020, appendix A): the task head
learns at the full rate, the top transformer layer at `layer_decay` times it,
the one below at `layer_decay²`, ..., the embeddings at
`layer_decay^(num_layers + 1)`. Layers near the input, which hold the most
general features, move least.

Variables are assigned to layers by name, the names our encoder gives them:

    .../embeddings/..., .../embeddings_project/...     the embeddings
    .../transformer_layer_{i}/...                       encoder layer i (0 = lowest)
    anything else (the task head)                       multiplier 1

google-research/electra's `_get_layer_lrs` gives encoder layer i (0-based)
the depth i + 1 and the head the depth num_layers + 2, so the top layer
gets `layer_decay²` and every encoder weight one factor of `layer_decay`
more than the description above; `original_top_layer_decay=True`
reproduces those numbers.
"""

import re

import tensorflow as tf
import tf_keras as keras

from electra_tf.optimization.adamw import NO_DECAY_NAME_PARTS
from electra_tf.optimization.fused_adamw import FusedAdamW
from electra_tf.optimization.warmup_linear_decay import WarmupLinearDecay
from electra_tf.utils.checks import is_integer

_EMBEDDINGS_REGEX = re.compile(r"(^|/)embeddings(_project)?/")
_LAYER_REGEX = re.compile(r"(^|/)transformer_layer_(\d+)/")
# ELECTRA fine-tunes with 10% of the steps as warmup (appendix A, Table 7).
DEFAULT_WARMUP_PROPORTION = 0.1


def layer_depth(variable_name):
    """0 for embeddings, i + 1 for `transformer_layer_i`, None for the head.

    >>> [layer_depth(n) for n in ("enc/embeddings/word_embeddings:0",
    ...                           "enc/transformer_layer_3/qkv/kernel:0", "logits/bias:0")]
    [0, 4, None]
    """
    if _EMBEDDINGS_REGEX.search(variable_name):
        return 0
    match = _LAYER_REGEX.search(variable_name)
    return int(match.group(2)) + 1 if match else None


def layer_multiplier(variable_name, num_layers, layer_decay, original_top_layer_decay=False):
    """The factor on the learning rate of the variable called `variable_name`.

    Head 1; encoder layer i (0-based) `layer_decay^(num_layers - i)`;
    embeddings `layer_decay^(num_layers + 1)`. With `original_top_layer_decay`
    every encoder exponent is one larger (google-research/electra's numbers).

    >>> layer_multiplier("enc/transformer_layer_1/output/bias:0", num_layers=2, layer_decay=0.5)
    0.5
    >>> layer_multiplier("enc/transformer_layer_1/output/bias:0", 2, 0.5, original_top_layer_decay=True)
    0.25
    """
    depth = layer_depth(variable_name)
    if depth is None:
        return 1.0
    if depth > num_layers:
        raise ValueError(
            f"Variable {variable_name!r} belongs to transformer layer {depth - 1}, but the "
            f"optimizer was told num_layers={num_layers}. Pass the encoder's num_layers."
        )
    # Depths run 0 (embeddings) .. num_layers (top layer); the head is num_layers + 1.
    exponent = num_layers + 1 - depth + (1 if original_top_layer_decay else 0)
    return float(layer_decay**exponent)


@keras.utils.register_keras_serializable(package="electra_tf")
class LayerwiseDecayAdamW(FusedAdamW):
    """AdamW with a per-layer learning-rate multiplier, for fine-tuning ELECTRA/BERT.

    Every variable's step, weight decay included (as in the original code),
    uses `learning_rate * layer_multiplier(variable.name, ...)`; see the
    module docstring for the mapping. Weight decay skips LayerNorm weights
    and biases. Works in any `compile()`, with `fit`, distribution strategies
    and mixed precision (`LossScaleOptimizer` wraps it like any optimizer).
    `create_finetuning_optimizer` adds ELECTRA's schedule (10% warmup, then
    linear decay).

    Args:
        learning_rate: the head's rate: a float or a `LearningRateSchedule`.
        num_layers: the encoder's number of transformer layers. None infers
            it from the variables at build time (the highest
            `transformer_layer_{i}` + 1), which is wrong when the top layers
            are frozen, so pass it when you can.
        layer_decay: factor per layer, from the head down (0.8 in ELECTRA;
            1.0 switches the decay off).
        original_top_layer_decay: reproduce google-research/electra's
            exponents, one larger for every encoder weight (top layer
            `layer_decay²`).
        weight_decay: decoupled weight decay (0.01 for ELECTRA/BERT).
        epsilon: Adam's ε (1e-6 as in BERT/ELECTRA, not Keras' 1e-7).
        global_clipnorm: clip gradients to this global norm (1.0); None: no clipping.
        **kwargs: other `keras.optimizers.AdamW` arguments (`beta_1`, `beta_2`,
            `name`, `jit_compile`, ...).

    Example:
    >>> import electra_tf
    >>> encoder = electra_tf.ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=2,
    ...                                     num_heads=2, intermediate_size=16)
    >>> optimizer = LayerwiseDecayAdamW(1e-3, num_layers=2, layer_decay=0.5)
    >>> optimizer.build(encoder.trainable_variables)
    >>> [optimizer.learning_rate_multiplier(v) for v in encoder.trainable_variables[::10]]
    [0.125, 0.25, 0.5]
    """

    def __init__(
        self,
        learning_rate,
        num_layers=None,
        layer_decay=0.8,
        original_top_layer_decay=False,
        weight_decay=0.01,
        epsilon=1e-6,
        global_clipnorm=1.0,
        **kwargs,
    ):
        kwargs.setdefault("name", "LayerwiseDecayAdamW")
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            epsilon=epsilon,
            global_clipnorm=global_clipnorm,
            **kwargs,
        )
        if num_layers is not None and (not is_integer(num_layers) or num_layers < 1):
            raise ValueError(
                f"`num_layers` must be a positive integer (the encoder's num_layers) or None "
                f"to infer it; received num_layers={num_layers!r}."
            )
        if not 0.0 < layer_decay <= 1.0:
            raise ValueError(
                f"`layer_decay` must be in (0, 1] (0.8 in ELECTRA, 1.0 for none); received "
                f"layer_decay={layer_decay!r}."
            )
        self.num_layers = num_layers
        self.layer_decay = layer_decay
        self.original_top_layer_decay = original_top_layer_decay
        self.exclude_from_weight_decay(var_names=list(NO_DECAY_NAME_PARTS))
        self._multipliers = {}  # variable key → float; filled in build()

    def build(self, var_list):
        if getattr(self, "_built", False):
            return
        super().build(var_list)
        if self.num_layers is None:
            depths = [layer_depth(variable.name) for variable in var_list]
            self.num_layers = max([d for d in depths if d] or [1])
        for variable in var_list:
            self._multipliers[self._var_key(variable)] = layer_multiplier(
                variable.name, self.num_layers, self.layer_decay, self.original_top_layer_decay
            )

    def learning_rate_multiplier(self, variable):
        """The factor on the learning rate of `variable` (after `build`)."""
        key = self._var_key(variable)
        if key not in self._multipliers:
            raise ValueError(
                f"{variable.name} is not one of the variables this optimizer was built for."
            )
        return self._multipliers[key]

    def _clip_gradients(self, grads):
        # Keras clips before it sums the duplicate rows of a sparse gradient (a token seen
        # twice in a batch), so the global norm would count their parts apart. Summed first,
        # the norm is the gradient's own, sparse or dense (as gradient accumulation makes it).
        return super()._clip_gradients(self._deduplicate_sparse_grad(grads))

    def _apply_weight_decay(self, variables):
        # Weight decay is applied in `update_step`, with the layer's own rate.
        return

    def update_step(self, gradient, variable):
        multiplier = self._multipliers[self._var_key(variable)]
        # Adam's step is linear in the learning rate and blind to the
        # gradient's scale, so the rate itself must be scaled, not the gradient.
        lr = tf.cast(self.learning_rate, variable.dtype) * multiplier
        if self._use_weight_decay(variable):
            # Decoupled decay before the Adam step, as keras' AdamW orders them.
            variable.assign_sub(variable * tf.cast(self.weight_decay, variable.dtype) * lr)
        return self.adam_step(gradient, variable, lr)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "layer_decay": self.layer_decay,
                "original_top_layer_decay": self.original_top_layer_decay,
            }
        )
        return config


def create_finetuning_optimizer(
    learning_rate,
    num_train_steps,
    num_layers=None,
    layer_decay=0.8,
    warmup_proportion=DEFAULT_WARMUP_PROPORTION,
    weight_decay=0.01,
    original_top_layer_decay=False,
):
    """ELECTRA's fine-tuning optimizer: `LayerwiseDecayAdamW` on warmup + linear decay.

    The rate climbs linearly to `learning_rate` over the first
    `warmup_proportion` of `num_train_steps`, then falls linearly to 0.

    >>> optimizer = create_finetuning_optimizer(1e-4, num_train_steps=1000, num_layers=12)
    >>> schedule = optimizer.get_config()["learning_rate"]["config"]
    >>> schedule["warmup_steps"], schedule["decay_steps"], optimizer.layer_decay
    (100, 1000, 0.8)
    """
    if not 0.0 <= warmup_proportion <= 1.0:
        raise ValueError(
            f"`warmup_proportion` must be in [0, 1]; received {warmup_proportion!r}."
        )
    schedule = WarmupLinearDecay(
        learning_rate,
        decay_steps=num_train_steps,
        warmup_steps=int(round(warmup_proportion * num_train_steps)),
    )
    return LayerwiseDecayAdamW(
        schedule,
        num_layers=num_layers,
        layer_decay=layer_decay,
        original_top_layer_decay=original_top_layer_decay,
        weight_decay=weight_decay,
    )
