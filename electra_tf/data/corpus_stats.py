"""Counts of what the text-corpus reader read, skipped and repaired."""

import dataclasses
import threading


@dataclasses.dataclass
class CorpusStats:
    """Running counts, filled in while a pretraining dataset is iterated.

    Pass one to `make_pretraining_dataset(..., stats=stats)` (or
    `text_examples_dataset`) and read it during or after training; file reads
    happen in tf.data's threads, so updates go through `add`. With `repeat`, every
    epoch adds again. The same events are also logged as warnings.

    Example:
    >>> stats = CorpusStats()
    >>> stats.add(lines=3, invalid_utf8_lines=1)
    >>> stats.lines, stats.invalid_utf8_lines
    (3, 1)
    """

    files: int = 0  # files opened for reading
    empty_files: int = 0  # skipped: no bytes (or an empty gzip stream)
    unreadable_files: int = 0  # skipped or cut short by an I/O or gzip error
    lines: int = 0  # lines read, blank ones included
    invalid_utf8_lines: int = 0  # skipped: not valid UTF-8 (e.g. binary data)
    long_lines: int = 0  # cut into pieces before tokenization (see _MAX_LINE_CHARS)
    examples: int = 0  # packed examples produced
    _lock: threading.Lock = dataclasses.field(
        default_factory=threading.Lock, repr=False, compare=False
    )

    def add(self, **counts):
        """Adds to the named counters, thread-safely."""
        with self._lock:
            for name, value in counts.items():
                if name.startswith("_") or not hasattr(self, name):
                    raise ValueError(
                        f"Unknown CorpusStats counter {name!r}; expected one of "
                        f"{[f.name for f in dataclasses.fields(self) if f.repr]}."
                    )
                setattr(self, name, getattr(self, name) + value)
