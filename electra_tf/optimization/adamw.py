"""The ELECTRA/BERT optimizer, from tf-keras parts: AdamW + warmup + linear decay + clipping."""

from electra_tf.optimization.fused_adamw import FusedAdamW
from electra_tf.optimization.warmup_linear_decay import WarmupLinearDecay

# Weights that get no weight decay, as in the original: LayerNorm scales/offsets and biases.
NO_DECAY_NAME_PARTS = ("layer_norm", "LayerNorm", "bias")


def create_optimizer(
    learning_rate,
    num_train_steps,
    warmup_steps,
    weight_decay=0.01,
    end_learning_rate=0.0,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-6,
    clip_norm=1.0,
):
    """AdamW (tf-keras', with the step fused: `FusedAdamW`) with BERT/ELECTRA's settings.

    Decoupled weight decay 0.01 (none on LayerNorm and biases), β = (0.9,
    0.999), ε = 1e-6 (BERT's, not Keras' 1e-7), global-norm clipping at 1.0,
    and `WarmupLinearDecay`. Pass it to any `model.compile`.

    >>> optimizer = create_optimizer(5e-4, num_train_steps=1000, warmup_steps=100)
    >>> type(optimizer).__name__, optimizer.global_clipnorm
    ('FusedAdamW', 1.0)
    """
    optimizer = FusedAdamW(
        learning_rate=WarmupLinearDecay(
            learning_rate, num_train_steps, warmup_steps, end_learning_rate
        ),
        weight_decay=weight_decay,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        global_clipnorm=clip_norm,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAME_PARTS))
    return optimizer
