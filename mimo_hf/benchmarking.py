"""Inference throughput of MIMOConv models, measured side by side.

Throughput is timed in interleaved rounds (every model once per round, in turn) so that slow drifts
of the machine (frequency, other load) hit all models alike, and each model's figure is the median
over rounds.
"""

import platform
import statistics
import time

import torch


def _run(model, batch, k):
    with torch.inference_mode():
        model(batch, num_superpositions=k)


def time_interleaved(entries, batch, warmup=2, repeats=10, progress=None):
    """Seconds per batch for each (name, model, k) entry: the median over `repeats` interleaved rounds.

    Returns {name: {"median_s": ..., "all_s": [...]}}.
    """
    for _, model, k in entries:
        for _ in range(warmup):
            _run(model, batch, k)
    times = {name: [] for name, _, _ in entries}
    for _ in range(repeats):
        for name, model, k in entries:
            start = time.perf_counter()
            _run(model, batch, k)
            times[name].append(time.perf_counter() - start)
        if progress is not None:
            progress.update(1)
    return {name: {"median_s": statistics.median(ts), "all_s": ts} for name, ts in times.items()}


def machine_description():
    """What the numbers were measured on, for the result rows."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def prepare_for_inference(model, channels_last=False):
    model.eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def macs_per_image(model, batch, k):
    """Multiply-accumulates per image of one inference call, from torch's FLOP counter.

    Counts the matrix work (convolutions, linear layers, the binding product); elementwise work such
    as BatchNorm and activations is not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(batch, num_superpositions=k)
    return counter.get_total_flops() / 2 / batch.shape[0]
