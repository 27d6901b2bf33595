"""Measuring compressed classifiers: zipped size, latency, throughput; the trade-off table and PNG.

Used by `benchmarks/compression.py`, the compression notebook and example,
so every variant (SavedModel, TFLite, pruned, distilled, torch) is measured
the same way.
"""

import os
import statistics
import tempfile
import time
import zipfile

import numpy as np

# Columns of the trade-off table, with their formats.
COLUMNS = (
    ("name", "{}"),
    ("accuracy", "{:.4f}"),
    ("zipped_mb", "{:.2f}"),
    ("latency_ms", "{:.1f}"),
    ("throughput", "{:.1f}"),
)
HEADERS = {
    "name": "model",
    "accuracy": "dev accuracy",
    "zipped_mb": "zipped MB",
    "latency_ms": "latency ms (1 example)",
    "throughput": "examples/s (32)",
}


def zipped_size(path):
    """Bytes of `path` (a file or a directory) compressed with zip (deflate, level 9).

    Pruned kernels are full of exact zeros: they cost as much as dense ones
    on disk until compressed, which is how sparse models are shipped.

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "zeros.bin")
    >>> _ = open(path, "wb").write(bytes(100_000))
    >>> zipped_size(path) < 1_000
    True
    """
    if not os.path.exists(path):
        raise ValueError(f"Cannot measure {path!r}: it does not exist.")
    files = [path] if os.path.isfile(path) else [
        os.path.join(root, name) for root, _, names in os.walk(path) for name in names]
    with tempfile.TemporaryDirectory() as tmp:
        archive = os.path.join(tmp, "model.zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as f:
            for file in files:
                f.write(file, os.path.relpath(file, os.path.dirname(path)))
        return os.path.getsize(archive)


def median_seconds(function, repeats=20, warmup=3):
    """The median wall time of `function()` over `repeats` calls, after `warmup` calls.

    >>> median_seconds(lambda: sum(range(1000)), repeats=3, warmup=1) < 1.0
    True
    """
    if repeats < 1:
        raise ValueError(f"`repeats` must be >= 1; received {repeats!r}.")
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def accuracy_from_logits(labels, logits):
    """Fraction of argmax predictions equal to `labels`.

    >>> accuracy_from_logits([0, 1, 1], np.array([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0]]))
    0.6666666666666666
    """
    return float(np.mean(np.argmax(np.asarray(logits), axis=-1) == np.asarray(labels)))


def measure_tflite(path, features, labels, latency_runs=20, num_threads=2):
    """Accuracy, zipped size, latency and throughput of a classifier's .tflite file.

    Args:
        path: a file written by `export_tflite` (fixed batch 1).
        features: dict of int32 (examples, seq_length) arrays.
        labels: (examples,) class ids.
        latency_runs: calls timed for the single-example latency (median).
        num_threads: interpreter threads.

    Returns:
        A table row without its name: {"accuracy", "zipped_mb", "latency_ms",
        "throughput"}; throughput is 32 examples run one after another.
    """
    from electra_tf.export.tflite_export import tflite_interpreter

    runner = tflite_interpreter(path, num_threads=num_threads).get_signature_runner()
    (output_name,) = runner.get_output_details()

    def run(rows):
        return [runner(**{key: np.asarray(value[i:i + 1], np.int32)
                          for key, value in features.items()})[output_name][0] for i in rows]

    logits = np.stack(run(range(len(labels))))
    latency = median_seconds(lambda: run([0]), repeats=latency_runs)
    batch = min(32, len(labels))
    batch_seconds = median_seconds(lambda: run(range(batch)), repeats=3, warmup=1)
    return {"accuracy": accuracy_from_logits(labels, logits),
            "zipped_mb": zipped_size(path) / 1e6,
            "latency_ms": 1000 * latency, "throughput": batch / batch_seconds}


def format_compression_table(rows):
    """The trade-off as a text table: one row per model, the `COLUMNS` above.

    Args:
        rows: dicts with "name", "accuracy", "zipped_mb", "latency_ms",
            "throughput"; a missing or None value prints as "-".

    >>> print(format_compression_table([{"name": "fp32", "accuracy": 0.9, "zipped_mb": 80.0,
    ...                                  "latency_ms": 20.0, "throughput": 60.0}]))
    model | dev accuracy | zipped MB | latency ms (1 example) | examples/s (32)
    ------|--------------|-----------|------------------------|----------------
    fp32  |       0.9000 |     80.00 |                   20.0 |            60.0
    """
    cells = [[HEADERS[key] for key, _ in COLUMNS]]
    for row in rows:
        cells.append([
            "-" if row.get(key) is None else form.format(row[key]) for key, form in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]

    def line(values):
        return " | ".join(
            value.ljust(width) if i == 0 else value.rjust(width)
            for i, (value, width) in enumerate(zip(values, widths))).rstrip()

    separator = "-|-".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), separator] + [line(values) for values in cells[1:]])


def plot_compression_tradeoff(rows, png_path, title="Compression trade-off"):
    """Dev accuracy against zipped size and against latency, one point per model (PNG).

    Args:
        rows: as for `format_compression_table`; rows without accuracy are skipped.
        png_path: where the picture goes.
        title: the figure title.

    Returns:
        `png_path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in rows if row.get("accuracy") is not None]
    if not rows:
        raise ValueError("No rows with an accuracy to plot.")
    # Points are numbered and named in one legend below: names written next to
    # the points overlap where models coincide (fp32 SavedModel, TFLite, torch).
    figure, axes = plt.subplots(1, 2, figsize=(12, 5 + 0.12 * len(rows)))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, key, label in ((axes[0], "zipped_mb", "zipped size (MB)"),
                             (axes[1], "latency_ms", "latency, 1 example (ms)")):
        placed = []  # (x, y) of the numbers written so far, to stack coinciding ones
        x_span = max(row.get(key) or 0 for row in rows) or 1.0
        for number, row in enumerate(rows, start=1):
            if row.get(key) is None:
                continue
            point = (row[key], row["accuracy"])
            axis.scatter(*point, s=40, color=colors[(number - 1) % len(colors)],
                         label=f"{number}. {row['name']}" if axis is axes[0] else None)
            stacked = sum(abs(x - point[0]) < 0.03 * x_span and abs(y - point[1]) < 0.004
                          for x, y in placed)
            axis.annotate(str(number), point, fontsize=8, xytext=(5, 3 + 9 * stacked),
                          textcoords="offset points")
            placed.append(point)
        axis.set_xlabel(label)
        axis.set_ylabel("dev accuracy")
        axis.grid(alpha=0.3)
    figure.legend(loc="lower center", ncol=2, fontsize=8, frameon=False)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.04 * (len(rows) + 1) / 2 + 0.02, 1, 1))
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path
