"""Learning-curve pictures (PNG), because people would rather look than read."""

import csv


def plot_learning_curves(csv_path, png_path, keys=None):
    """Plots each logged metric against the training step, one panel per metric.

    Args:
        csv_path: a CSV with a `step` column (written by `TrainingLogger`).
        png_path: where the PNG goes.
        keys: metrics to plot; default: every column but `step`.

    Returns:
        `png_path`.

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "history.csv"), "w") as f:
    ...     _ = f.write("step,loss,accuracy\\n10,0.9,0.5\\n20,0.6,0.7\\n")
    >>> png = plot_learning_curves(os.path.join(folder, "history.csv"),
    ...                            os.path.join(folder, "curves.png"))
    >>> os.path.basename(png)
    'curves.png'
    >>> with open(png, "rb") as f:
    ...     f.read(4)[1:]
    b'PNG'
    >>> with open(os.path.join(folder, "empty.csv"), "w") as f:
    ...     _ = f.write("step,loss")
    >>> plot_learning_curves(os.path.join(folder, "empty.csv"), os.path.join(folder, "x.png"))
    Traceback (most recent call last):
    ...
    ValueError: .../empty.csv has no rows to plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{csv_path} has no rows to plot.")
    keys = keys or [k for k in rows[0] if k != "step"]
    steps = [int(float(r["step"])) for r in rows]
    columns = 3
    panel_rows = (len(keys) + columns - 1) // columns
    figure, axes = plt.subplots(panel_rows, columns, figsize=(4 * columns, 3 * panel_rows),
                                squeeze=False)
    for axis, key in zip(axes.ravel(), keys):
        axis.plot(steps, [float(r[key]) for r in rows])
        axis.set_title(key)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    for axis in axes.ravel()[len(keys):]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path
