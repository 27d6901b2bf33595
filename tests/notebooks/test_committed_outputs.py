"""The committed notebooks carry the outputs of a real run (`python notebooks/run_notebooks.py`)."""

import doctest
import os
import sys

import pytest
from conftest import printed_text

nbformat = pytest.importorskip("nbformat")

NOTEBOOKS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "notebooks")
sys.path.insert(0, NOTEBOOKS_DIR)
import run_notebooks  # noqa: E402

# What a reader must see without running anything: a result line and, where the notebook
# draws one, a picture.
EXPECTED = {
    "pretraining.ipynb": ("Pretrained ELECTRA (preset 'tiny') to step 600", True),
    "finetune_sentiment.ipynb": ("dev accuracy", True),
    "question_answering.ipynb": ("exact match", True),
    "compress_and_export.ipynb": ("TFLite full int8", True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_is_saved_with_the_outputs_of_a_complete_run(name):
    notebook = nbformat.read(os.path.join(NOTEBOOKS_DIR, name), as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    counts = [cell.get("execution_count") for cell in code]
    assert counts == list(range(1, len(code) + 1)), f"{name}: not one run top to bottom: {counts}"
    outputs = [output for cell in code for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    text = printed_text(notebook)
    result, picture = EXPECTED[name]
    assert result in text
    if picture:
        assert any("image/png" in output.get("data", {}) for output in outputs)
    assert "\r" not in text  # progress bars saved in their final state


def test_tidy_stream():
    assert doctest.testmod(run_notebooks).failed == 0
    assert run_notebooks.tidy_stream("a\rb\rc\nW0000 00:00:1 x] y\n") == "c\n"
