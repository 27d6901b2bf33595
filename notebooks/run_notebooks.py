"""Executes the notebooks with their default settings and saves their outputs into them.

    python notebooks/run_notebooks.py [NAME.ipynb ...]

The committed notebooks carry the outputs of this command, so that a reader sees real results
(printed figures, tables, learning curves) without running anything. Each notebook runs top to
bottom in a fresh kernel of this Python, in a scratch folder (`notebooks/.runs/NAME/`, git-ignored)
that holds what it writes; offline, the notebooks use the data packaged with electra_tf. Progress
bars are saved in their final state and TensorFlow's C++ start-up logs are left out. On 2 idle CPU
cores all four take about 15 minutes. CI executes the notebooks too, with tiny settings
(tests/notebooks/), without saving.
"""

import argparse
import os
import re
import sys
import time

import nbclient
import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOKS = ["pretraining.ipynb", "finetune_sentiment.ipynb", "question_answering.ipynb",
             "compress_and_export.ipynb"]
# TensorFlow's C++ start-up log lines ("I0000 00:00:... cudart_stub.cc:31] Could not find cuda
# drivers ..."): noise about this machine, not results.
NATIVE_LOG_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:|WARNING: All log messages before absl|"
                             r"To enable the following instructions:)")


def tidy_stream(text):
    """A stream as a notebook front end shows it: each progress bar's last state, no C++ logs.

    Progress bars rewrite their line with carriage returns; the saved text keeps every state
    (hundreds of lines per bar in a viewer that ignores "\\r"), so keep what follows the last.

    >>> tidy_stream("step 1\\rstep 2\\rstep 3\\nI0000 00:00:1 x.cc:1] noise\\ndone\\n")
    'step 3\\ndone\\n'
    """
    lines = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    return "\n".join(line for line in lines if not NATIVE_LOG_LINE.match(line))


def tidy_outputs(notebook):
    """Joins consecutive writes to one stream, as a front end does, then applies `tidy_stream`.

    Keras' and tqdm's progress bars send each update as its own message ("\\r 2/63 [...]"),
    so the carriage returns only collapse once the messages are joined.
    """
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        joined = []
        for output in cell.get("outputs", []):
            previous = joined[-1] if joined else None
            if (output.get("output_type") == "stream" and previous is not None
                    and previous.get("output_type") == "stream"
                    and previous.get("name") == output.get("name")):
                previous["text"] += output["text"]
            else:
                joined.append(output)
        outputs = []
        for output in joined:
            if output.get("output_type") == "stream":
                output["text"] = tidy_stream(output["text"])
                if not output["text"].strip():
                    continue
            outputs.append(output)
        cell["outputs"] = outputs
    return notebook


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
    tidy_outputs(notebook)
    notebook.metadata.pop("widgets", None)
    temporary = path + ".tmp"
    nbformat.write(notebook, temporary)
    os.replace(temporary, path)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", default=NOTEBOOKS, help="notebooks to run (all)")
    parser.add_argument("--tidy-only", action="store_true",
                        help="only tidy the saved outputs (progress bars, C++ logs); run nothing")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the kernels inherit it
    for name in args.names:
        if args.tidy_only:
            path = os.path.join(HERE, name)
            nbformat.write(tidy_outputs(nbformat.read(path, as_version=4)), path)
            continue
        print(f"{name}: running ...", flush=True)
        print(f"{name}: saved with its outputs in {run_notebook(name):.0f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
