"""ThreadValue and ThreadFlag: per-thread settings that a `with` block sets, for its duration."""

import contextlib
import threading


class ThreadValue:
    """A value of the current thread: `default` until a `with setting.set(value):` block.

    For settings read while a graph is traced (tracing runs in the calling
    thread), such as the group count of `width_parts()`. Blocks nest: each
    restores the value it found.

    >>> setting = ThreadValue(1)
    >>> with setting.set(2):
    ...     with setting.set(3):
    ...         inner = setting.value
    ...     outer = setting.value
    >>> inner, outer, setting.value
    (3, 2, 1)
    """

    def __init__(self, default):
        self._default = default
        self._local = threading.local()

    @property
    def value(self):
        return getattr(self._local, "value", self._default)

    @contextlib.contextmanager
    def set(self, value):
        previous = self.value
        self._local.value = value
        try:
            yield
        finally:
            self._local.value = previous


class ThreadFlag(ThreadValue):
    """A boolean of the current thread: False until a `with flag.on():` block, then True inside it.

    For switches read while a graph is traced, such as `plain_transposes()`
    and `unfused_kernels()`.

    >>> flag = ThreadFlag()
    >>> with flag.on():
    ...     bool(flag)
    True
    >>> bool(flag)
    False
    """

    def __init__(self):
        super().__init__(False)

    def __bool__(self):
        return self.value

    def on(self):
        return self.set(True)
