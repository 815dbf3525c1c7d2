"""Pictures: accuracy vs throughput of one model's operating points (with the baseline for comparison), and
validation learning curves of training runs."""

import re

VAL_KEY = re.compile(r"^val_accuracy@k(\d+)$")


def plot_operating_points(results, path, title=None, baseline=None, unit="images/s", series="MIMOConv operating points"):
    """Write a PNG: one point per operating point (throughput on x, accuracy on y), baseline as a star.

    results: rows with "operating_point" (or a "label"), "accuracy" (0..1) and "images_per_s" (the
    throughput, in `unit`). baseline: optional dict with "name", "accuracy" and "images_per_s".
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    rows = sorted(results, key=lambda r: r["images_per_s"])
    xs = [r["images_per_s"] for r in rows]
    ys = [100 * r["accuracy"] for r in rows]
    ax.plot(xs, ys, "o-", color="tab:blue", label=series)
    for r, x, y in zip(rows, xs, ys):
        ax.annotate(r.get("label") or f"k={r['operating_point']}", (x, y), textcoords="offset points", xytext=(6, 6))
    if baseline is not None:
        ax.plot([baseline["images_per_s"]], [100 * baseline["accuracy"]], "*", markersize=14, color="tab:red",
                label=baseline.get("name", "baseline"))
    return _finish(plt, fig, ax, path, f"inference throughput ({unit})", "test accuracy (%)", title, legend={"loc": "best"})


def _finish(plt, fig, ax, path, xlabel, ylabel, title, legend):
    """Labels, grid, legend and title, then write the PNG and free the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(**legend)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def learning_curve_series(name, history):
    """[(label, epochs, accuracies in %)] of one run: one series per operating point validated
    (`val_accuracy@k<k>` in its per-epoch records)."""
    series = {}
    for record in history:
        for key, value in record.items():
            if (match := VAL_KEY.match(key)) and value is not None and "epoch" in record:
                series.setdefault(int(match.group(1)), []).append((record["epoch"], 100 * value))
    return [(f"{name} k={k}", [e for e, _ in points], [a for _, a in points]) for k, points in sorted(series.items())]


def plot_learning_curves(runs, path, title=None, planned=None, reference_lines=()):
    """Write a PNG of validation accuracy per epoch.

    runs: [(name, history)] with history the per-epoch records of metrics_history.json; planned: optional
    {name: planned epochs}, drawn as the end of that run's schedule; reference_lines: [(label, accuracy in
    %)] drawn as horizontal lines (e.g. a target)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", ":", "-."]
    for index, (name, history) in enumerate(runs):
        color = colors[index % len(colors)]
        for style, (label, epochs, accuracies) in zip(styles * 4, learning_curve_series(name, history)):
            ax.plot(epochs, accuracies, style, marker=".", color=color, label=label)
        if planned and name in planned and history and history[-1].get("epoch", 0) < planned[name]:
            ax.axvline(planned[name], color=color, alpha=0.35, linewidth=1)
    for label, value in reference_lines:
        ax.axhline(value, color="grey", linestyle=(0, (4, 4)), linewidth=1)
        ax.annotate(label, (0, value), textcoords="offset points", xytext=(4, 3), fontsize=8, color="grey",
                    xycoords=("axes fraction", "data"))
    return _finish(plt, fig, ax, path, "epoch (an epoch of capacity N passes over the training images N times)",
                   "validation accuracy (%)", title, legend={"loc": "lower right", "fontsize": 8})
