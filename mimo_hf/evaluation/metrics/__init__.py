"""Evaluation metrics shipped inside the package, so they load without the Hub."""

from pathlib import Path

import evaluate

_METRICS_DIR = Path(__file__).resolve().parent


def load_metric(name="accuracy", **kwargs):
    """`evaluate.load` of the metric module folder `mimo_hf/metrics/<name>/` by absolute path (works offline)."""
    folder = _METRICS_DIR / name
    if not (folder / f"{name}.py").is_file():
        known = sorted(p.name for p in _METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"unknown metric {name!r}; shipped metrics: {known}")
    return evaluate.load(str(folder), **kwargs)
