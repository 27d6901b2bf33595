"""Type tests the argument checks share: a count is an `int` and a rate a number, never a `bool`.

In Python `True` is an `int` (`isinstance(True, int)` holds), so `num_layers=True` would pass
a plain `isinstance` test as 1. Each check keeps its own range and message; these two say only
what kind of value it is.
"""


def is_integer(value):
    """Whether `value` is a Python `int` and not a `bool`.

    >>> from electra_tf.utils.checks import is_integer
    >>> is_integer(3), is_integer(True), is_integer(3.0), is_integer("3")
    (True, False, False, False)
    """
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    """Whether `value` is a Python `int` or `float` and not a `bool`.

    >>> from electra_tf.utils.checks import is_number
    >>> is_number(0.1), is_number(0), is_number(False), is_number("0.1")
    (True, True, False, False)
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool)
