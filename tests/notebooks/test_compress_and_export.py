"""The compression notebook runs top to bottom (in a real kernel) with tiny settings."""

import os

import pytest
from conftest import printed_text

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "..", "notebooks",
                        "compress_and_export.ipynb")

def test_compress_and_export_notebook_runs(tmp_path, monkeypatch):
    settings = {
        "ELECTRA_NOTEBOOK_STEPS": "6",
        "ELECTRA_NOTEBOOK_BATCH_SIZE": "8",
        "ELECTRA_NOTEBOOK_SEQ_LENGTH": "16",
        "ELECTRA_NOTEBOOK_NUM_DEV": "16",
        "ELECTRA_NOTEBOOK_NUM_TRAIN": "200",
        "ELECTRA_NOTEBOOK_OUTPUT_DIR": str(tmp_path / "out"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }  # offline, the data are the packaged movie-review sentences
    for name, value in settings.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this process's environment
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=180, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    text = printed_text(notebook)
    assert "200 training and 16 held-out dev sentences (packaged)" in text
    assert "all pruned kernels" in text and "50.0%" in text  # the sparsity table
    for row in ("TFLite fp32", "TFLite full int8", "50% pruned", "1-layer student"):
        assert row in text  # the trade-off table
    assert any(output.get("data", {}).get("image/png")
               for cell in notebook.cells for output in cell.get("outputs", []))
    out = tmp_path / "out"
    assert (out / "compression_tradeoff.png").exists()
    assert (out / "pruned" / "model.weights.h5").exists()
    assert list((out / "pruning_logs").rglob("events.out.tfevents.*"))
