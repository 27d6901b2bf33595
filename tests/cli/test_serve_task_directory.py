"""`electra-tf serve` takes a task model directory (or its run directory) as well as an export.

The directory is exported to an end-to-end SavedModel first, with the settings
its task.json records, so serving needs no flag that fine-tuning already got.
"""

import os
import sys

import numpy as np

from electra_tf.cli.serve_commands import _default_name, servable_model_dir

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "compression"))
from task_dirs import make_task_dirs  # noqa: E402


def test_a_task_directory_is_exported_then_served_with_its_labels(tmp_path):
    from electra_tf.serving.served_model import ServedModel

    paths = make_task_dirs(tmp_path)
    run = tmp_path / "sentiment_run"
    run.mkdir()
    os.rename(paths["classify"], run / "model")
    served, temporary = servable_model_dir(str(run))  # the run directory, as jobs write it
    try:
        assert temporary == served and os.listdir(served) == ["1"]
        model = ServedModel(os.path.join(served, "1"))
        outputs = model.predict("serving_default", {"text": ["the film is good", "the film is bad"]})
        assert set(np.asarray(outputs["label"]).astype(str)) <= {"neg", "pos"}  # task.json's
    finally:
        import shutil

        shutil.rmtree(temporary)
    assert _default_name(str(run / "model")) == "sentiment_run"


def test_an_export_is_served_as_it_is(tmp_path):
    export = tmp_path / "serving" / "1"
    export.mkdir(parents=True)
    (export / "saved_model.pb").write_bytes(b"")
    assert servable_model_dir(str(tmp_path / "serving")) == (str(tmp_path / "serving"), None)
