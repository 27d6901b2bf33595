"""Executes the notebooks with their default settings and saves their outputs into them.

    python notebooks/run_notebooks.py [NAME.ipynb ...]

The committed notebooks carry the outputs of this command, so that a reader sees real results
(printed figures, tables, learning curves) without running anything. Each notebook runs top to
bottom in a fresh kernel of this Python, in a scratch folder (`notebooks/.runs/NAME/`, git-ignored)
that holds what it writes; offline, the notebooks use the data packaged with electra_tf. On 2 CPU
cores all four take about 15 minutes. CI executes the notebooks too, with tiny settings
(tests/notebooks/), without saving.
"""

import argparse
import os
import sys
import time

import nbclient
import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOKS = ["pretraining.ipynb", "finetune_sentiment.ipynb", "question_answering.ipynb",
             "compress_and_export.ipynb"]


def run_notebook(name, timeout=3600):
    """Runs notebooks/NAME top to bottom and writes it back with its outputs; returns seconds."""
    path = os.path.join(HERE, name)
    if not os.path.isfile(path):
        raise ValueError(f"No notebook {name!r} in {HERE}; expected one of {NOTEBOOKS}.")
    workdir = os.path.join(HERE, ".runs", os.path.splitext(name)[0])
    os.makedirs(workdir, exist_ok=True)
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": workdir}})
    client.execute()  # raises on the first failing cell: the committed notebook stays as it was
    notebook.metadata.pop("widgets", None)
    temporary = path + ".tmp"
    nbformat.write(notebook, temporary)
    os.replace(temporary, path)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", default=NOTEBOOKS, help="notebooks to run (all)")
    args = parser.parse_args(argv)
    for name in args.names:
        print(f"{name}: running ...", flush=True)
        print(f"{name}: saved with its outputs in {run_notebook(name):.0f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
