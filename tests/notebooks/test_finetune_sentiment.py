"""notebooks/finetune_sentiment.ipynb runs top to bottom (in a real kernel) with tiny settings."""

import json
import os

import pytest
from conftest import printed_text

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "..", "notebooks",
                        "finetune_sentiment.ipynb")
# The settings cell reads these: a tiny random encoder and a few dozen of the real, packaged
# sentences (offline, the notebook's default data).
TINY_SETTINGS = {
    "ELECTRA_NOTEBOOK_ENCODER": "tiny",
    "ELECTRA_NOTEBOOK_TRAIN_EXAMPLES": "64",
    "ELECTRA_NOTEBOOK_DEV_EXAMPLES": "32",
    "ELECTRA_NOTEBOOK_EPOCHS": "1",
    "ELECTRA_NOTEBOOK_BATCH_SIZE": "16",
    "ELECTRA_NOTEBOOK_MAX_SEQ_LENGTH": "32",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


def test_finetune_sentiment_notebook_runs(tmp_path, monkeypatch):
    for name, value in TINY_SETTINGS.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this process's environment
    monkeypatch.setenv("ELECTRA_NOTEBOOK_OUTPUT_DIR", str(tmp_path / "run"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    client.execute()

    text = printed_text(notebook)
    assert "rated movie-review sentences packaged with electra_tf" in text
    assert "train: 64 sentences, dev: 32 (held out)" in text
    assert "dev accuracy" in text
    assert any(output.get("data", {}).get("image/png")
               for cell in notebook.cells for output in cell.get("outputs", []))
    assert "An absolute delight" in text and "p(positive)=" in text
    with open(tmp_path / "run" / "model" / "task.json") as f:
        assert json.load(f)["label_names"] == ["negative", "positive"]
    assert os.listdir(tmp_path / "run" / "logs" / "train")  # TensorBoard
