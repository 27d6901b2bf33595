"""Write a directory all at once, or not at all.

Checkpoints, conversions and exports are written into a temporary sibling
directory that is renamed into place only after everything in it was
written, so a crash or an error never leaves a half-written output behind
and never destroys the previous one.
"""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yields a temporary directory that becomes `path` when the block succeeds.

    Args:
        path: the directory to create.
        overwrite: replace an existing `path`. The old one is removed only
            after the new one is complete.

    Raises:
        ValueError: `path` exists and `overwrite` is False, or it is a file.

    Example:
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "model")
    >>> with atomic_directory(target) as tmp:
    ...     _ = open(os.path.join(tmp, "config.json"), "w").write("{}")
    >>> os.listdir(target)
    ['config.json']
    """
    path = os.path.abspath(path)
    if os.path.isfile(path):
        raise ValueError(f"Output path {path!r} is an existing file; expected a directory path.")
    exists = os.path.isdir(path) and bool(os.listdir(path))
    if exists and not overwrite:
        raise ValueError(
            f"Output directory {path!r} already exists and is not empty; "
            "choose another path or pass overwrite=True (--overwrite)."
        )
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    # mkdtemp makes the directory private (0700); the output should have the
    # permissions of any new directory, so that e.g. a TensorFlow Serving
    # container running as another user can read an export.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.isdir(path):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=parent)
        os.rmdir(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old:
        shutil.rmtree(old, ignore_errors=True)
