"""Old argument and attribute names that still work, with a DeprecationWarning.

A renamed keyword argument stays callable under its old name through
`renamed_arguments`; a renamed attribute through `renamed_attribute`. Both warn
once per call site, say which name to use, and leave the new name the only one
in the signature (`inspect.signature` follows the wrapper), so the naming test
(tests/test_api_naming.py) sees one vocabulary.

>>> @renamed_arguments(mask_id="mask_token_id")
... def mask(ids, *, mask_token_id):
...     return [mask_token_id if i < 0 else i for i in ids]
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     mask([-1, 5], mask_id=103)
[103, 5]
>>> str(caught[0].message)
'mask(mask_id=...) is deprecated; use mask_token_id=... .'
"""

import functools
import warnings


def renamed_arguments(**renames):
    """Decorator: accept each old keyword (`old="new"`) with a DeprecationWarning.

    The wrapper records the renames in `__renamed_arguments__` ({old: new}).
    Passing both names is a `TypeError`, as a repeated argument is in Python.
    """

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(f"{function.__qualname__}() received both {old}= and "
                                    f"{new}=; pass only {new}= ({old}= is its deprecated name).")
                warnings.warn(f"{function.__qualname__}({old}=...) is deprecated; use "
                              f"{new}=... .", DeprecationWarning, stacklevel=2)
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        wrapper.__renamed_arguments__ = dict(renames)
        return wrapper

    return decorate


def renamed_attribute(old, new):
    """A read-only property `old` that returns `self.<new>` with a DeprecationWarning.

    >>> class Tokenizer:
    ...     mask_token_id = 103
    ...     mask_id = renamed_attribute("mask_id", "mask_token_id")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     Tokenizer().mask_id
    103
    """

    def getter(self):
        warnings.warn(f"{type(self).__name__}.{old} is deprecated; use {new}.",
                      DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    return property(getter, doc=f"Deprecated: `{new}`.")
