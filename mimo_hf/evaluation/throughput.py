"""Inference throughput of MIMOConv and MIMOFormer models, measured side by side.

Throughput is timed in interleaved rounds (every model once per round, in turn) so that slow drifts
of the machine (frequency, other load) hit all models alike, and each model's figure is the median
over rounds.
"""

import os
import platform
import resource
import statistics
import sys
import time

import torch

from mimo_hf.evaluation.accuracy import point_kwargs


def model_inputs(model, batch):
    """A batch is a tensor of the model's main input or a dict of inputs (e.g. input_ids + attention_mask)."""
    return batch if isinstance(batch, dict) else {model.main_input_name: batch}


def batch_size_of(batch):
    return next(iter(batch.values())).shape[0] if isinstance(batch, dict) else batch.shape[0]


def _run(model, batch, point):
    with torch.inference_mode():
        out = model(**model_inputs(model, batch), **point_kwargs(model.config, point))
    logits = out[0] if isinstance(out, tuple) else out.logits
    if logits.is_cuda:
        torch.cuda.synchronize(logits.device)  # GPU work is asynchronous: wait before the clock is read


def time_interleaved(entries, batch, warmup=2, repeats=10, progress=None):
    """Seconds per batch for each (name, model, operating point) entry: the median over `repeats` interleaved rounds.

    Returns {name: {"median_s": ..., "all_s": [...]}}.
    """
    steps = {name: (lambda model=model, point=point: _run(model, batch, point)) for name, model, point in entries}
    return time_steps_interleaved(steps, warmup=warmup, repeats=repeats, progress=progress)


# The vector extensions that decide how fast the kernels run here (fp32 convolutions, int8 and bf16 paths).
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def cpu_features(flags):
    """The CPU_FEATURES among a CPU's flags (the `flags` line of /proc/cpuinfo), in that order."""
    present = set(flags)
    return [name for name in CPU_FEATURES if name in present]


def describe_isa(features):
    """A short name of the vector ISA, e.g. "AVX2, no VNNI" or "AVX-512 with VNNI and BF16"."""
    if "avx512f" in features:
        extras = [name for name, flag in (("VNNI", "avx512_vnni"), ("BF16", "avx512_bf16"), ("AMX", "amx_int8"))
                  if flag in features]
        return "AVX-512" + (f" with {' and '.join(extras)}" if extras else ", no VNNI")
    if "avx2" in features:
        return "AVX2" + (" with AVX-VNNI" if "avx_vnni" in features else ", no VNNI")
    return "no AVX2"


def machine_description():
    """What the numbers were measured on, for the result rows: the CPU's model name with its vector ISA
    (machines that share a model name, such as "AMD EPYC", differ in it, and int8 and bf16 speeds with it)."""
    model_name, flags = None, None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:  # the first processor's lines
                if line.startswith("model name") and model_name is None:
                    model_name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and flags is None:
                    flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    cpu = model_name or platform.processor() or platform.machine()
    description = {"cpu": cpu}
    if flags is not None:
        features = cpu_features(flags)
        description = {"cpu": f"{cpu} ({describe_isa(features)})", "cpu_features": features}
    return {
        **description,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def prepare_for_inference(model, channels_last=False):
    model.eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def macs_per_image(model, batch, point):
    """Multiply-accumulates per input (image or sequence) of one inference call, from torch's FLOP counter.

    Counts the matrix work (convolutions, linear layers, matrix products); elementwise work such as
    normalisation, activations and elementwise binding is not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        _run(model, batch, point)
    return counter.get_total_flops() / 2 / batch_size_of(batch)


# Above this share of the machine's CPU time used by other processes while timing, the figures are flagged.
BUSY_MACHINE_SHARE = 0.1


def _machine_busy_seconds():
    """CPU seconds all processes have used since boot (Linux /proc/stat), or None where unavailable."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process (torch, ONNX Runtime, OpenVINO)
    return usage.ru_utime + usage.ru_stime


class OtherLoad:
    """Share of the machine's CPU time (0-1, all cores) that other processes used inside the `with` block.

    Interleaved rounds make slow drifts hit every timed entry alike, but a machine kept busy by other work
    (a training run, a test suite) slows runtimes unequally and makes every figure low: such a measurement
    is recorded with its share and flagged, not passed off as this machine's speed. None off Linux."""

    def __enter__(self):
        self.start = (_machine_busy_seconds(), _own_cpu_seconds(), time.perf_counter())
        self.share = None
        return self

    def __exit__(self, *exc):
        busy, own, wall = _machine_busy_seconds(), _own_cpu_seconds(), time.perf_counter()
        if busy is not None and self.start[0] is not None and wall > self.start[2]:
            other = (busy - self.start[0]) - (own - self.start[1])
            self.share = round(min(1.0, max(0.0, other / ((wall - self.start[2]) * (os.cpu_count() or 1)))), 3)
        return False


def other_cpu_share(timings):
    """The other processes' CPU share of one timing run (the same in every entry of its result)."""
    return next(iter(timings.values()))["other_cpu_share"]


def time_steps_interleaved(steps, warmup=2, repeats=10, progress=None):
    """Seconds per call of each zero-argument callable in {name: step}, the median over `repeats`
    interleaved rounds (each step once per round, in turn).

    Returns {name: {"median_s", "all_s", "other_cpu_share"}}; other_cpu_share (the same for every name) is
    the share of the machine's CPU that other processes used during the timed rounds (see OtherLoad), with
    a warning on stderr above BUSY_MACHINE_SHARE."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps}
    with OtherLoad() as load:
        for _ in range(repeats):
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
            if progress is not None:
                progress.update(1)
    if load.share is not None and load.share > BUSY_MACHINE_SHARE:
        print(f"warning: other processes used {100 * load.share:.0f}% of this machine's CPU while timing: the "
              "throughput figures are low and their ratios unreliable; time on an otherwise idle machine",
              file=sys.stderr, flush=True)
    return {name: {"median_s": statistics.median(ts), "all_s": ts, "other_cpu_share": load.share}
            for name, ts in times.items()}


def macs_of_call(fn):
    """Multiply-accumulates of one call of `fn` (forward and backward alike), from torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 2
