"""The notebooks run top to bottom (in a real kernel) with tiny settings."""

import os

import pytest
from conftest import printed_text

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "..", "notebooks")
# The pretraining notebook's settings cell reads these: a handful of tiny steps.
TINY_SETTINGS = {
    "ELECTRA_NOTEBOOK_STEPS": "4",
    "ELECTRA_NOTEBOOK_BATCH_SIZE": "4",
    "ELECTRA_NOTEBOOK_MAX_SEQ_LENGTH": "32",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


def test_pretraining_notebook_runs(tmp_path, monkeypatch):
    for name, value in TINY_SETTINGS.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this process's environment
    monkeypatch.setenv("ELECTRA_NOTEBOOK_OUTPUT_DIR", str(tmp_path / "run"))
    notebook = nbformat.read(os.path.join(NOTEBOOKS, "pretraining.ipynb"), as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    client.execute()

    text = printed_text(notebook)
    assert "to step 4" in text  # the pretraining summary
    assert any(output.get("data", {}).get("image/png")
               for cell in notebook.cells for output in cell.get("outputs", []))
    assert "[CLS]" in text and "cricket" in text  # the discriminator's per-token table
    assert (tmp_path / "run" / "discriminator" / "model.weights.h5").exists()
