"""Accuracy-vs-throughput picture of one model's operating points, with the baseline for comparison."""


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
    ax.set_xlabel(f"inference throughput ({unit})")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
