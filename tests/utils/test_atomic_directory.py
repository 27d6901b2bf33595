"""atomic_directory: all or nothing, and the permissions of an ordinary new directory."""

import os

import pytest

from electra_tf.utils.atomic_directory import atomic_directory


def test_output_gets_umask_permissions_not_mkdtemp_ones(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "export") as tmp:
            open(os.path.join(tmp, "saved_model.pb"), "w").close()
    finally:
        os.umask(previous)
    assert (os.stat(tmp_path / "export").st_mode & 0o777) == 0o755


def test_failure_keeps_the_previous_output_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        open(os.path.join(tmp, "old.txt"), "w").write("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target, overwrite=True) as tmp:
            open(os.path.join(tmp, "new.txt"), "w").write("new")
            raise RuntimeError("export failed halfway")
    assert os.listdir(target) == ["old.txt"]
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_existing_output_needs_overwrite(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "x").write_text("x")
    with pytest.raises(ValueError, match="already exists"):
        with atomic_directory(tmp_path / "model"):
            pass
