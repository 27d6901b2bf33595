"""Moved to `electra_tf.preprocessing.example_seeds`, next to the masking that draws from it;
this old path re-exports it.

>>> from electra_tf.preprocessing import example_seeds as home
>>> example_seeds is home.example_seeds
True
"""

from electra_tf.preprocessing.example_seeds import example_seeds, per_example_uniform  # noqa: F401
