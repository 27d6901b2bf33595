"""Whether the graph being traced is compiled by XLA."""

import tensorflow as tf


def compiled_by_xla():
    """Whether the ops being built will be compiled by XLA (`jit_compile=True`, TPUs).

    Shape-dependent code asks this: XLA needs static shapes and lacks some
    kernels (multinomial sampling), so such graphs take another path.

    >>> compiled_by_xla()
    False
    >>> bool(tf.function(lambda: tf.constant(compiled_by_xla()), jit_compile=True)())
    True
    """
    from tensorflow.python.ops import control_flow_util  # no public API tells this

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())
