"""Side-by-side timing of PyTorch models and exported graphs on ONNX Runtime / OpenVINO.

Every entry is a zero-argument callable that runs one batch; entries are timed in interleaved rounds
(each entry once per round, in turn) so that drifts of a shared machine hit all of them alike, and
each entry's figure is the median over rounds: the same protocol as `mimo_hf.evaluation.throughput.time_interleaved`,
which times PyTorch models only.
"""

import tempfile
from pathlib import Path

import torch

from .runtime import open_session


def time_callables(entries, warmup=2, repeats=10, progress=None):
    """{name: {"median_s", "all_s"}} for [(name, run)] entries, `run()` processing one batch."""
    from mimo_hf.evaluation.throughput import time_steps_interleaved

    return time_steps_interleaved(dict(entries), warmup=warmup, repeats=repeats, progress=progress)


def torch_runner(model, pixel_values, k):
    """One eager PyTorch inference call of `model` at operating point k."""

    def run():
        with torch.inference_mode():
            model(pixel_values=pixel_values, num_superpositions=k)

    return run


def session_runner(session, inputs):
    """One call of an ONNX Runtime / OpenVINO session (see `runtime.open_session`) on fixed inputs."""
    return lambda: session(inputs)


def export_for_timing(model, k, folder, int8=False, calibration_images=128, seed=0, threads=None):
    """{precision: path} of `model` at k exported into `folder` for throughput only: the fp32 graph is
    checked against PyTorch (1e-3) on one partial-group batch; int8 is calibrated on seeded Gaussian
    inputs, which is fine for timing (int8 kernels cost the same whatever the scales) and says nothing
    about accuracy (use scripts/export_onnx.py with real images for a deployable model)."""
    import numpy as np

    from .onnx_export import Checkpoint, compare, trace
    from .quantization import quantize_int8

    checkpoint = Checkpoint(model.eval(), None, "mimoconv", "benchmark model")
    config = model.config
    generator = torch.Generator().manual_seed(seed)
    shape = (config.num_channels, config.image_size, config.image_size)
    example = {"pixel_values": torch.randn(2 * k + 1, *shape, generator=generator)}
    folder = Path(folder)
    paths = {"fp32": folder / f"model_k{k}.onnx"}
    paths["fp32"].write_bytes(trace(checkpoint, k, example).SerializeToString())
    check = compare(open_session(paths["fp32"], "onnxruntime", threads), checkpoint, k, [example], "Gaussian pixels")
    if not check["max_abs_logit_diff"] <= 1e-3:
        raise RuntimeError(f"exported graph differs from PyTorch by {check['max_abs_logit_diff']:.2e}")
    if int8:
        paths["int8"] = folder / f"model_k{k}_int8.onnx"
        pixels = torch.randn(calibration_images, *shape, generator=generator).numpy().astype(np.float32)
        quantize_int8(paths["fp32"], paths["int8"], "pixel_values", pixels, batch_size=max(k, 64 // k * k))
    return paths


def runtime_entries(models, pixel_values, runtimes, int8, threads=None, work_dir=None, progress=None):
    """Timing entries for [(name, model, k)] on every runtime and precision.

    Returns ([(key, run)], folder): key = (name, runtime, precision); "torch" entries run the eager
    model. `folder` (a TemporaryDirectory) holds the exported graphs and must outlive the timing.
    """
    folder = tempfile.TemporaryDirectory(prefix="mimo-hf-bench-", dir=work_dir)
    inputs = {"pixel_values": pixel_values.contiguous().numpy()}
    precisions = ["fp32", "int8"] if int8 else ["fp32"]
    entries = []
    for name, model, k in models:
        if "torch" in runtimes:
            entries.append(((name, "torch", "fp32"), torch_runner(model, pixel_values, k)))
        others = [runtime for runtime in runtimes if runtime != "torch"]
        if not others:
            continue
        sub = Path(folder.name) / name
        sub.mkdir()
        paths = export_for_timing(model, k, sub, int8=int8, threads=threads)
        if progress is not None:
            progress.update(1)
        for runtime in others:
            for precision in precisions:
                session = open_session(paths[precision], runtime, threads)
                entries.append(((name, runtime, precision), session_runner(session, inputs)))
    return entries, folder
