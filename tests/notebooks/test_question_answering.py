"""The question-answering notebook runs top to bottom (in a real kernel) on the real SQuAD sample."""

import os

import pytest
from conftest import printed_text

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "..", "notebooks")


def test_question_answering_notebook_runs(tmp_path, monkeypatch):
    settings = {  # offline, the defaults are the packaged SQuAD questions and a tiny encoder
        "ELECTRA_NOTEBOOK_OUTPUT_DIR": str(tmp_path / "run"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this process's environment
    notebook = nbformat.read(os.path.join(NOTEBOOKS, "question_answering.ipynb"), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    text = printed_text(notebook)
    assert "5 training questions from" in text and "(skipped: {})" in text
    assert "as characters of the context: 'Saint Bernadette Soubirous'" in text
    assert "exact match 100.0  F1 100.0  (5 questions)" in text  # training EM: it learned
    assert "A: 'Saint Bernadette Soubirous'" in text
    assert "best span: saint bernadette soubirous" in text  # the in-graph span, same answer
    assert any(output.get("data", {}).get("image/png")
               for cell in notebook.cells for output in cell.get("outputs", []))
    assert (tmp_path / "run" / "model" / "task.json").exists()
