"""Moved to `electra_tf.utils.strategies` (fine-tuning jobs choose a strategy too); this old
path re-exports it.

>>> from electra_tf.utils import strategies
>>> build_strategy is strategies.build_strategy
True
"""

from electra_tf.utils.strategies import STRATEGIES, build_strategy, is_chief  # noqa: F401
