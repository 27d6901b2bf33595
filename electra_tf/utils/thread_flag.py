"""ThreadFlag: a per-thread switch that a `with` block turns on."""

import contextlib
import threading


class ThreadFlag:
    """A boolean of the current thread: False until a `with flag.on():` block, then True inside it.

    For switches read while a graph is traced (tracing runs in the calling
    thread), such as `plain_transposes()` and `unfused_kernels()`.

    >>> flag = ThreadFlag()
    >>> with flag.on():
    ...     bool(flag)
    True
    >>> bool(flag)
    False
    """

    def __init__(self):
        self._local = threading.local()

    def __bool__(self):
        return getattr(self._local, "value", False)

    @contextlib.contextmanager
    def on(self):
        previous = bool(self)
        self._local.value = True
        try:
            yield
        finally:
            self._local.value = previous
