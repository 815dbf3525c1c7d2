"""Accuracy and throughput of exported MIMOConv folders, next to the eager PyTorch model they came from.

Used by `scripts/evaluate_mimoconv.py --onnx DIR`: every runtime x precision x operating point of the
folder is scored on the same batches, in the same order, as the PyTorch evaluation (so the same
inputs share a bundle), through the same `evaluate` accuracy module; then every one of them is timed
side by side with the eager models in one interleaved run (`benchmark.time_callables`).
"""

import numpy as np
from tqdm.auto import tqdm

from mimo_hf.data.augment import normalize
from mimo_hf.evaluation.throughput import other_cpu_share
from .benchmark import session_runner, time_callables, torch_runner
from .runtime import DeployedClassifier, read_manifest, runtime_versions, sha256_of_files


def exported_precisions(folder):
    """Precisions present for every operating point of an exported folder."""
    points = read_manifest(folder)["operating_points"]
    return [p for p in ("fp32", "int8") if all(p in point["files"] for point in points)]


def deployed_variants(folder, runtimes, precisions=None, threads=None):
    """{(runtime, precision): DeployedClassifier} for a folder; precisions default to all exported."""
    available = exported_precisions(folder)
    precisions = available if precisions is None else precisions
    missing = [p for p in precisions if p not in available]
    if missing:
        raise ValueError(f"{folder} has no {missing} export (it has {available}); re-export with scripts/export_onnx.py")
    return {(runtime, precision): DeployedClassifier(folder, runtime, precision, threads)
            for runtime in runtimes for precision in precisions}


def check_points(classifier, points):
    """The folder must hold every operating point the PyTorch model is evaluated at."""
    missing = [k for k in points if f"k{k}" not in classifier.points]
    if missing:
        raise ValueError(f"{classifier.folder} has no export of operating points {missing}; exported: "
                         f"{classifier.operating_points}")


def score(variants, images, labels, points, batch_size, mean, std, metric, progress=True):
    """{(runtime, precision, k): {"accuracy", "count"}} on uint8 `images` (n, C, H, W) in batches of
    `batch_size`, dataset order (the PyTorch evaluation's batches)."""
    results = {}
    total = len(variants) * len(points)
    with tqdm(total=total, desc="onnx accuracy", disable=not progress) as bar:
        for (runtime, precision), classifier in variants.items():
            check_points(classifier, points)
            for k in points:
                for start in range(0, len(images), batch_size):
                    pixels = normalize(images[start:start + batch_size], mean, std).numpy()
                    preds = classifier.logits(pixels, k).argmax(-1)
                    metric.add_batch(predictions=preds, references=labels[start:start + batch_size].numpy())
                results[(runtime, precision, k)] = {"accuracy": float(metric.compute()["accuracy"]), "count": len(images)}
                bar.update(1)
    return results


def timing_entries(torch_models, variants_by_model, pixel_values):
    """[(key, run)]: eager PyTorch (model name, "torch", "fp32", k) and exported (name, runtime, precision, k)."""
    entries = []
    inputs = {"pixel_values": np.ascontiguousarray(pixel_values.numpy())}
    for name, model, points in torch_models:
        for k in points:
            entries.append(((name, "torch", "fp32", k), torch_runner(model, pixel_values, k)))
        for (runtime, precision), classifier in variants_by_model.get(name, {}).items():
            for k in points:
                entries.append(((name, runtime, precision, k), session_runner(classifier.session(k), inputs)))
    return entries


def time_all(entries, batch_size, warmup, repeats, progress=True):
    """({key: images/s} of every entry from one interleaved run, the other processes' CPU share meanwhile)."""
    with tqdm(total=repeats, desc="timing", disable=not progress) as bar:
        timings = time_callables(entries, warmup=warmup, repeats=repeats, progress=bar)
    return {key: batch_size / t["median_s"] for key, t in timings.items()}, other_cpu_share(timings)


def folder_record(folder):
    """What was evaluated: the folder, its export command, quantization and the sha256 of every file."""
    import os

    manifest = read_manifest(folder)
    return {"folder": os.path.relpath(folder), "export_command": manifest.get("command"), "quantization": manifest.get("quantization"),
            "calibration": manifest.get("calibration"), "files": sha256_of_files(folder, manifest),
            "versions": {**manifest.get("versions", {}), **runtime_versions()}}


def deploy_rows(name, scores, ips=None, baseline_name=None):
    """Result rows of one model, in the order of `scores` ({(runtime, precision, k): {accuracy, count}}):
    accuracy, images/s, and the speed relative to the eager fp32 baseline and to the baseline on the
    same runtime and precision (all from the same timing run)."""
    rows = []
    for (runtime, precision, k), value in scores.items():
        row = {"runtime": runtime, "precision": precision, "operating_point": k, **value}
        if ips:
            speed = ips[(name, runtime, precision, k)]
            row["images_per_s"] = round(speed, 1)
            eager = ips.get((baseline_name, "torch", "fp32", 1))
            same = ips.get((baseline_name, runtime, precision, 1))
            row["ratio_to_eager_fp32_baseline"] = None if eager is None else round(speed / eager, 3)
            row["ratio_to_baseline_same_runtime"] = None if same is None else round(speed / same, 3)
        rows.append(row)
    return rows


def eager_scores(scores):
    """The PyTorch evaluation's {k: {accuracy, count}} as deploy score keys ("torch", "fp32", k)."""
    return {("torch", "fp32", k): value for k, value in scores.items()}


def evaluate_deployed(model, onnx_dir, points, images, labels, batch_size, mean, std, metric, eager, baseline=None,
                      runtimes=("onnxruntime", "openvino"), precisions=None, threads=None, throughput_batch=None,
                      warmup=2, repeats=10, progress=True):
    """Score and time an exported folder (and optionally the baseline's) beside the eager models.

    model: the eager PyTorch model; eager: its {k: {accuracy, count}} from the PyTorch evaluation.
    baseline: None or a dict {model, onnx_dir, scores ({1: {accuracy, count}}), mean, std}.
    throughput_batch: normalised (B, C, H, W) tensor to time on, None to skip timing.
    Returns (deploy report dict, {("model"|"baseline", k): eager images/s} or None).
    """
    variants = {"model": deployed_variants(onnx_dir, runtimes, precisions, threads)}
    scores = {"model": {**eager_scores(eager), **score(variants["model"], images, labels, points, batch_size, mean, std,
                                                       metric, progress)}}
    torch_models = [("model", model, points)]
    if baseline is not None:
        torch_models.append(("baseline", baseline["model"], [1]))
        scores["baseline"] = eager_scores(baseline["scores"])
        if baseline.get("onnx_dir"):
            variants["baseline"] = deployed_variants(baseline["onnx_dir"], runtimes, precisions, threads)
            scores["baseline"].update(score(variants["baseline"], images, labels, [1], batch_size, baseline["mean"],
                                            baseline["std"], metric, progress))
    ips = share = None
    if throughput_batch is not None:
        entries = timing_entries(torch_models, variants, throughput_batch)
        ips, share = time_all(entries, throughput_batch.shape[0], warmup, repeats, progress)
    baseline_name = "baseline" if baseline is not None else None
    report = {
        "threads": threads,
        "runtimes": list(runtimes),
        "other_cpu_share_while_timing": share,
        "model": {**folder_record(onnx_dir), "results": deploy_rows("model", scores["model"], ips, baseline_name)},
        "baseline": None,
    }
    if baseline is not None:
        report["baseline"] = {**(folder_record(baseline["onnx_dir"]) if baseline.get("onnx_dir") else {}),
                              "results": deploy_rows("baseline", scores["baseline"], ips, baseline_name)}
    eager_ips = None if ips is None else {(name, key[3]): v for key, v in ips.items()
                                          for name in ("model", "baseline") if key[:3] == (name, "torch", "fp32")}
    return report, eager_ips
