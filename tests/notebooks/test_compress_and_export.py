"""The compression notebook runs top to bottom (in a real kernel) with tiny settings."""

import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "..", "notebooks",
                        "compress_and_export.ipynb")
SENTIMENT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                         "data", "sentiment"))


def test_compress_and_export_notebook_runs(tmp_path, monkeypatch):
    settings = {
        "ELECTRA_NOTEBOOK_STEPS": "6",
        "ELECTRA_NOTEBOOK_BATCH_SIZE": "8",
        "ELECTRA_NOTEBOOK_SEQ_LENGTH": "16",
        "ELECTRA_NOTEBOOK_NUM_DEV": "16",
        "ELECTRA_NOTEBOOK_OUTPUT_DIR": str(tmp_path / "out"),
        # Real reviews when the shared data is here; else the notebook makes some up.
        "ELECTRA_NOTEBOOK_TRAIN": os.path.join(SENTIMENT, "movie_train.tsv"),
        "ELECTRA_NOTEBOOK_DEV": os.path.join(SENTIMENT, "movie_dev.tsv"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    if not os.path.isdir(SENTIMENT):
        settings["ELECTRA_NOTEBOOK_TRAIN"] = str(tmp_path / "train.tsv")
        settings["ELECTRA_NOTEBOOK_DEV"] = str(tmp_path / "dev.tsv")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this process's environment
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=180, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    text = "\n".join(output.get("text", "") for cell in notebook.cells
                     for output in cell.get("outputs", []))
    assert "all pruned kernels" in text and "50.0%" in text  # the sparsity table
    for row in ("TFLite fp32", "TFLite full int8", "50% pruned", "1-layer student"):
        assert row in text  # the trade-off table
    assert any(output.get("data", {}).get("image/png")
               for cell in notebook.cells for output in cell.get("outputs", []))
    out = tmp_path / "out"
    assert (out / "compression_tradeoff.png").exists()
    assert (out / "pruned" / "model.weights.h5").exists()
    assert list((out / "pruning_logs").rglob("events.out.tfevents.*"))
