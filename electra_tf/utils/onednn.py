"""What TensorFlow's oneDNN CPU kernels will do in this process, for graphs that trace differently.

>>> onednn_assumes_frozen_weights({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"})
True
>>> onednn_assumes_frozen_weights({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "false"})
False
>>> onednn_assumes_frozen_weights({})
False
"""

import os

FROZEN_WEIGHTS_VARIABLE = "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"


def onednn_enabled():
    """Whether TensorFlow's oneDNN rewrites are on (TF_ENABLE_ONEDNN_OPTS, the platform)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def onednn_assumes_frozen_weights(environ=None):
    """Whether TF_ONEDNN_ASSUME_FROZEN_WEIGHTS is on ("1" or "true", any case, as TF reads it).

    With it on, TensorFlow's fused oneDNN dense kernels (MatMul + BiasAdd, with
    GELU or a residual Add) reorder their weights on the first call and keep
    them: a `brgemm` inner product, on AMX in bfloat16. An opt-in for
    processes whose weights never change (see the README's serving section);
    TensorFlow reads the variable once, at its first such kernel, so set it
    before that. `TransformerLayer` asks this while tracing an inference graph
    in bfloat16: with the variable on, every dense layer takes the fused kernel.
    """
    value = (os.environ if environ is None else environ).get(FROZEN_WEIGHTS_VARIABLE, "")
    return value.lower() in ("1", "true")
