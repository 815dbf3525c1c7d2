"""Throughput benchmarks of MIMOConv / MIMOFormer against their baselines (scripts/benchmark_throughput.py).

Randomly initialised models (throughput does not depend on the weights) of the same depth and width,
timed in interleaved rounds on the same input batch (`evaluation.throughput`); each row's ratio is its
inputs/s over the baseline's from the same run, next to the ratio its multiply-accumulates allow.
Modes: MIMOConv inference (default), MIMOConv training steps (`mode="train"`), MIMOConv on ONNX
runtimes (`runtime`, `int8`: mimo_hf.deploy), MIMOFormer inference (`architecture="mimoformer"`).
"""

import argparse
import json
import os
import sys
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from mimo_hf import (
    MIMOConvConfig,
    MIMOConvForImageClassification,
    MIMOFormerConfig,
    MIMOFormerForSequenceClassification,
)
from mimo_hf.evaluation.throughput import machine_description, macs_per_image, prepare_for_inference, time_interleaved
from mimo_hf.settings import option, parse_grid

MIMOFORMER, MIMOCONV, TRAIN = "MIMOFormer (--architecture mimoformer)", "MIMOConv", "MIMOConv --mode train"


@dataclass
class BenchmarkSettings:
    """The flags of scripts/benchmark_throughput.py."""

    group_titles = {MIMOFORMER: MIMOFORMER, MIMOCONV: MIMOCONV, TRAIN: TRAIN}

    architecture: str = option("mimoconv", "which model family", choices=["mimoconv", "mimoformer"])
    sequence_lengths: list = option(None, "sequence lengths L", MIMOFORMER, type=int, nargs="+",
                                    default_factory=lambda: [1024, 4096])
    att_grids: list = option(None, "grids MxN of MIMOFormer att.", MIMOFORMER, nargs="*",
                             default_factory=lambda: ["2x2", "4x4"])
    att_mlp_grids: list = option(None, "grids MxN of MIMOFormer att.+MLP", MIMOFORMER, nargs="*",
                                 default_factory=lambda: ["2x2"])
    num_hidden_layers: int = option(2, "encoder blocks", MIMOFORMER)
    hidden_size: int = option(64, "model width d", MIMOFORMER)
    num_attention_heads: int = option(4, "heads", MIMOFORMER)
    head_dim: int = option(16, "head size", MIMOFORMER)
    intermediate_size: int = option(128, "MLP width", MIMOFORMER)
    num_random_features: int = option(64, "random features R", MIMOFORMER)
    sequences: int = option(32, "sequences per timed call", MIMOFORMER, minimum=1)
    depth: int = option(16, "Wide ResNet depth 6n+4", MIMOCONV)
    width: int = option(4, "Wide ResNet width factor", MIMOCONV)
    initial_width: float = option(4, "MIMOConv stem width factor s, C = 16 s", MIMOCONV, type=float)
    baseline_initial_width: float = option(1, "baseline stem width factor", MIMOCONV, type=float)
    num_superpositions: list = option(None, "capacities N of the static MIMOConv models, each timed at k = N", MIMOCONV,
                                      type=int, nargs="+", default_factory=lambda: [1, 2, 4])
    dynamic_capacity: int = option(None, "also time one model of this capacity at every operating point k | N",
                                   MIMOCONV, type=int)
    binding: str = option("hrr", "MIMOConv binding", MIMOCONV, choices=["hrr", "mbat"])
    activation: str = option("prelu", "MIMOConv trunk activation (the baseline always uses relu)", MIMOCONV,
                             choices=["relu", "prelu", "srelu"])
    num_labels: int = option(10, "classifier outputs", MIMOCONV)
    image_size: int = option(32, "input height and width", MIMOCONV)
    batch_size: int = option(256, "images per timed call", minimum=1)
    threads: int = option(None, "torch intra-op threads (default: torch's choice)", type=int, minimum=1)
    warmup: int = option(3, "untimed calls per model before timing")
    repeats: int = option(15, "timed interleaved rounds; the median is reported", minimum=1)
    channels_last: bool = option(None, "run every model and the input in channels-last layout (default: off for "
                                       "inference, on for --mode train, as train_mimoconv.py does)",
                                 action=argparse.BooleanOptionalAction)
    mode: str = option("inference", "MIMOConv: time inference calls, or training steps (forward + backward + SGD, the "
                                    "recipe's loss and regularisers) on --train-bundles bundles per step",
                       choices=["inference", "train"])
    train_bundles: int = option(128, "bundles per training step: the recipe's batch (128); a step of N-capacity "
                                     "MIMOConv sees 128 * N images", TRAIN, minimum=1)
    train_precision: str = option("fp32", "precision of the timed training steps: fp32, or bf16 autocast around the "
                                          "forward and loss (what train_mimoconv.py --mixed-precision bf16 runs on a CPU, "
                                          "through accelerate); the 'plain' baseline row stays a plain fp32 step",
                                  TRAIN, choices=["fp32", "bf16"])
    tune_cpu_allocator: bool = option(True, "tune glibc's allocator as train_mimoconv.py does (process-wide: affects "
                                            "every row)", TRAIN, action=argparse.BooleanOptionalAction)
    seed: int = option(0, "seed for weights and input")
    runtime: list = option(None, "MIMOConv: runtimes to time side by side; non-torch runtimes run ONNX exports",
                           nargs="+", choices=["torch", "onnxruntime", "openvino"], default_factory=lambda: ["torch"])
    int8: bool = option(False, "with --runtime onnxruntime/openvino: also time static int8 graphs")
    output: str = option(None, "write the result rows as JSON to this path", type=str)


def build(settings, capacity, baseline=False):
    if baseline:
        config = MIMOConvConfig(num_superpositions=1, binding="none", depth=settings.depth, width=settings.width,
                                initial_width=settings.baseline_initial_width, activation="relu",
                                image_size=settings.image_size, num_labels=settings.num_labels)
    else:
        config = MIMOConvConfig(num_superpositions=capacity, binding=settings.binding, depth=settings.depth, width=settings.width,
                                initial_width=settings.initial_width, activation=settings.activation,
                                image_size=settings.image_size, num_labels=settings.num_labels)
    return prepare_for_inference(MIMOConvForImageClassification(config), settings.channels_last)


def build_former(settings, attention_type, grid, length):
    config = MIMOFormerConfig(attention_type=attention_type, mimo_m=grid[0], mimo_n=grid[1],
                              num_random_features=settings.num_random_features, vocab_size=256, max_position_embeddings=length,
                              hidden_size=settings.hidden_size, num_attention_heads=settings.num_attention_heads,
                              head_dim=settings.head_dim, intermediate_size=settings.intermediate_size,
                              num_hidden_layers=settings.num_hidden_layers, num_labels=settings.num_labels)
    return MIMOFormerForSequenceClassification(config).eval()


def main_mimoformer(settings):
    machine = machine_description()
    rows = []
    for length in settings.sequence_lengths:
        variants = [("performer", "performer", (1, 1))]
        variants += [(f"mimo_att-{g}", "mimo_att", parse_grid(g)) for g in settings.att_grids]
        variants += [(f"mimo_att_mlp-{g}", "mimo_att_mlp", parse_grid(g)) for g in settings.att_mlp_grids]
        entries = [(name, build_former(settings, kind, grid, length), None) for name, kind, grid in variants]
        ids = torch.randint(0, 256, (settings.sequences, length))
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        with tqdm(total=settings.repeats, desc=f"timing L={length}", file=sys.stderr) as bar:
            timings = time_interleaved(entries, batch, warmup=settings.warmup, repeats=settings.repeats, progress=bar)
        macs = {name: macs_per_image(model, batch, None) for name, model, _ in entries}
        base = settings.sequences / timings["performer"]["median_s"]
        for (name, kind, grid), (_, model, _) in zip(variants, entries):
            sps = settings.sequences / timings[name]["median_s"]
            rows.append({"name": name, "attention_type": kind, "grid": f"{grid[0]}x{grid[1]}", "sequence_length": length,
                         "sequences": settings.sequences, "layers": settings.num_hidden_layers, "hidden_size": settings.hidden_size,
                         "heads": settings.num_attention_heads, "head_dim": settings.head_dim,
                         "intermediate_size": settings.intermediate_size, "random_features": settings.num_random_features,
                         "sequences_per_s": round(sps, 2), "ratio_to_baseline": round(sps / base, 3),
                         "mmacs_per_sequence": round(macs[name] / 1e6, 3),
                         "mac_ratio_to_baseline": round(macs["performer"] / macs[name], 3),
                         "median_s": timings[name]["median_s"], "repeats": settings.repeats,
                         "other_cpu_share_while_timing": timings[name]["other_cpu_share"], **machine})
    print(f"\n{machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}, {settings.sequences} sequences per call")
    print("| model | grid | L | sequences/s | vs Performer | MMACs/sequence | ideal ratio by MACs |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['attention_type']} | {r['grid']} | {r['sequence_length']} | {r['sequences_per_s']:.1f} | "
              f"{r['ratio_to_baseline']:.2f}x | {r['mmacs_per_sequence']:.1f} | {r['mac_ratio_to_baseline']:.2f}x |")
    return rows


def benchmark(settings):
    """scripts/benchmark_throughput.py: time the settings' models side by side; returns (and writes) the rows."""
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    if settings.architecture == "mimoformer":
        rows = main_mimoformer(settings)
        _write(rows, settings.output)
        return rows
    if settings.mode == "train":
        rows = main_train(settings)
        _write(rows, settings.output)
        return rows
    return main_inference(settings)


def main_inference(settings):
    """MIMOConv inference calls of the baseline and each MIMOConv (and with --runtime, their exports)."""
    settings.channels_last = bool(settings.channels_last)
    entries = [("baseline", build(settings, 1, baseline=True), 1)]
    descriptions = {"baseline": {"model": f"WRN-{settings.depth}-{settings.width}", "capacity": 1, "operating_point": 1,
                                 "binding": "none", "initial_width": settings.baseline_initial_width, "activation": "relu"}}
    models = {}
    for n in settings.num_superpositions:
        models[n] = build(settings, n)
        name = f"mimoconv-n{n}"
        entries.append((name, models[n], n))
        descriptions[name] = {"model": f"MIMOConv-{settings.depth}-{settings.width}", "capacity": n, "operating_point": n}
    if settings.dynamic_capacity is not None:
        n = settings.dynamic_capacity
        model = models.get(n) or build(settings, n)
        for k in MIMOConvConfig(num_superpositions=n).operating_points:
            name = f"mimoconv-n{n}-k{k}"
            if k == n and n in models:
                continue
            entries.append((name, model, k))
            descriptions[name] = {"model": f"MIMOConv-{settings.depth}-{settings.width}", "capacity": n, "operating_point": k}
    for name, d in descriptions.items():
        if name != "baseline":
            d.update(binding=settings.binding, initial_width=settings.initial_width, activation=settings.activation)

    batch = torch.randn(settings.batch_size, 3, settings.image_size, settings.image_size)
    if settings.channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    if settings.runtime != ["torch"] or settings.int8:
        rows = main_deploy(settings, entries, descriptions, batch)
        _write(rows, settings.output)
        return rows
    with tqdm(total=settings.repeats, desc="timing rounds", file=sys.stderr) as bar:
        timings = time_interleaved(entries, batch, warmup=settings.warmup, repeats=settings.repeats, progress=bar)

    machine = machine_description()
    base = settings.batch_size / timings["baseline"]["median_s"]
    macs = {name: macs_per_image(model, batch, k) for name, model, k in entries}
    rows = []
    for name, _, _ in entries:
        ips = settings.batch_size / timings[name]["median_s"]
        rows.append({"name": name, **descriptions[name], "depth": settings.depth, "width": settings.width,
                     "batch_size": settings.batch_size, "channels_last": settings.channels_last,
                     "images_per_s": round(ips, 1), "ratio_to_baseline": round(ips / base, 3),
                     "gmacs_per_image": round(macs[name] / 1e9, 4), "mac_ratio_to_baseline": round(macs["baseline"] / macs[name], 3),
                     "median_s": timings[name]["median_s"], "repeats": settings.repeats,
                     "other_cpu_share_while_timing": timings[name]["other_cpu_share"], **machine})

    print(f"\n{machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}, batch {settings.batch_size}"
          f"{', channels_last' if settings.channels_last else ''}")
    print("| model | N | k | images/s | vs baseline | GMACs/image | ideal ratio by MACs |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['capacity']} | {r['operating_point']} | {r['images_per_s']:.1f} | "
              f"{r['ratio_to_baseline']:.2f}x | {r['gmacs_per_image']:.3f} | {r['mac_ratio_to_baseline']:.2f}x |")
    _write(rows, settings.output)
    return rows


def main_deploy(settings, entries, descriptions, batch):
    """--runtime: the MIMOConv entries on every runtime and precision, timed in the same interleaved rounds."""
    from mimo_hf.deploy.benchmark import runtime_entries, time_callables
    from mimo_hf.deploy.runtime import runtime_versions

    if settings.int8 and settings.runtime == ["torch"]:
        sys.exit("error: --int8 needs --runtime onnxruntime and/or openvino (PyTorch runs fp32 here)")
    threads = torch.get_num_threads()  # every runtime gets torch's thread count
    with tqdm(total=len(entries), desc="exporting", file=sys.stderr) as bar:
        timed, folder = runtime_entries(entries, batch, settings.runtime, settings.int8, threads=threads, progress=bar)
    with folder, tqdm(total=settings.repeats, desc="timing rounds", file=sys.stderr) as bar:
        timings = time_callables(timed, warmup=settings.warmup, repeats=settings.repeats, progress=bar)
    machine = {**machine_description(), "runtime_versions": runtime_versions()}
    ips = {key: settings.batch_size / t["median_s"] for key, t in timings.items()}
    eager_base = ips.get(("baseline", "torch", "fp32"))
    rows = []
    for (name, runtime, precision), _ in timed:
        key = (name, runtime, precision)
        same = ips[("baseline", runtime, precision)]
        rows.append({"name": name, **descriptions[name], "depth": settings.depth, "width": settings.width,
                     "batch_size": settings.batch_size, "channels_last": settings.channels_last, "runtime": runtime,
                     "precision": precision, "images_per_s": round(ips[key], 1),
                     "ratio_to_baseline": None if eager_base is None else round(ips[key] / eager_base, 3),
                     "ratio_to_baseline_same_runtime": round(ips[key] / same, 3),
                     "median_s": timings[key]["median_s"], "repeats": settings.repeats,
                     "other_cpu_share_while_timing": timings[key]["other_cpu_share"],
                     "int8_calibration": "random inputs (timing only)" if precision == "int8" else None, **machine})
    print(f"\n{machine['cpu']}, {threads} threads, torch {machine['torch']}, batch {settings.batch_size}; "
          + ", ".join(f"{k} {v}" for k, v in machine["runtime_versions"].items()))
    print("| model | N | k | runtime | precision | images/s | vs eager fp32 baseline | vs baseline, same runtime and precision |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = "-" if r["ratio_to_baseline"] is None else f"{r['ratio_to_baseline']:.2f}x"
        print(f"| {r['model']} | {r['capacity']} | {r['operating_point']} | {r['runtime']} | {r['precision']} | "
              f"{r['images_per_s']:.1f} | {ratio} | {r['ratio_to_baseline_same_runtime']:.2f}x |")
    return rows


def train_step(model, k, bundles, channels_last, regularised, seed, precision="fp32"):
    """A training-step closure at operating point k: forward + backward + SGD on `bundles * k` images,
    the loss of train_mimoconv.py (smoothed soft targets; binding + isometry regularisers for MIMOConv).
    precision "bf16": the forward and loss under CPU bf16 autocast, fp32 weights and optimizer (accelerate's
    bf16 mixed precision)."""
    from mimo_hf.training.fast_training import smooth_targets
    from mimo_hf.training.mimoconv import parameter_groups, training_loss

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.train().to(memory_format=fmt)
    optimizer = torch.optim.SGD(parameter_groups(model, 5e-4), lr=0.01, momentum=0.9, nesterov=True)
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(bundles * k, model.config.num_channels, model.config.image_size, model.config.image_size,
                         generator=gen).contiguous(memory_format=fmt)
    labels = torch.randint(0, model.config.num_labels, (bundles * k,), generator=gen)
    targets = smooth_targets(torch.nn.functional.one_hot(labels, model.config.num_labels).float(), 0.2)
    coefs = (0.1, 1e-4) if regularised else (0.0, 0.0)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            _, loss = training_loss(model, model, images, targets, k, *coefs)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, bundles * k


def main_train(settings):
    """--mode train: training steps of the baseline and each MIMOConv, timed side by side."""
    from mimo_hf.evaluation.throughput import macs_of_call, time_steps_interleaved
    from mimo_hf.training.fast_training import tune_cpu_allocator

    channels_last = True if settings.channels_last is None else settings.channels_last
    tuned = settings.tune_cpu_allocator and tune_cpu_allocator()
    base = {"model": f"WRN-{settings.depth}-{settings.width}", "capacity": 1, "operating_point": 1, "binding": "none",
            "initial_width": settings.baseline_initial_width, "activation": "relu"}
    precision = settings.train_precision
    specs = [("baseline", build(settings, 1, baseline=True), 1, channels_last, False, base)]
    # The same baseline as a plain fp32 step (contiguous layout): the tuned baseline must be no slower.
    specs.append(("baseline-plain", build(settings, 1, baseline=True), 1, False, False, {**base, "plain": True}))
    points = [(n, n) for n in settings.num_superpositions]
    if settings.dynamic_capacity is not None:
        points += [(settings.dynamic_capacity, k) for k in MIMOConvConfig(num_superpositions=settings.dynamic_capacity).operating_points
                   if (settings.dynamic_capacity, k) not in points]
    for n, k in points:
        specs.append((f"mimoconv-n{n}" + (f"-k{k}" if k != n else ""), build(settings, n), k, channels_last, True,
                      {"model": f"MIMOConv-{settings.depth}-{settings.width}", "capacity": n, "operating_point": k,
                       "binding": settings.binding, "initial_width": settings.initial_width, "activation": settings.activation}))
    precisions = {name: "fp32" if name == "baseline-plain" else precision for name, *_ in specs}
    steps, images, layouts = {}, {}, {}
    for name, model, k, layout, regularised, _ in specs:
        steps[name], images[name] = train_step(model, k, settings.train_bundles, layout, regularised, settings.seed,
                                               precisions[name])
        layouts[name] = layout
    with tqdm(total=settings.repeats, desc="timing training steps", file=sys.stderr) as bar:
        timings = time_steps_interleaved(steps, warmup=settings.warmup, repeats=settings.repeats, progress=bar)
    macs = {name: macs_of_call(step) / images[name] for name, step in steps.items()}  # forward + backward
    machine = machine_description()
    base_ips = images["baseline"] / timings["baseline"]["median_s"]
    rows = []
    for name, _, _, _, _, description in specs:
        ips = images[name] / timings[name]["median_s"]
        mac_ratio = macs["baseline"] / macs[name]
        rows.append({"name": name, "mode": "train", **description, "depth": settings.depth, "width": settings.width,
                     "bundles_per_step": settings.train_bundles, "images_per_step": images[name],
                     "channels_last": layouts[name], "cpu_allocator_tuned": bool(tuned), "precision": precisions[name],
                     "images_per_s": round(ips, 1), "ratio_to_baseline": round(ips / base_ips, 3),
                     "gmacs_per_image": round(macs[name] / 1e9, 4), "mac_ratio_to_baseline": round(mac_ratio, 3),
                     "fraction_of_mac_ratio": round(ips / base_ips / mac_ratio, 3),
                     "median_s": timings[name]["median_s"], "repeats": settings.repeats,
                     "other_cpu_share_while_timing": timings[name]["other_cpu_share"], **machine})
    print(f"\n{machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}, training steps of "
          f"{settings.train_bundles} bundles, allocator {'tuned' if tuned else 'default'}")
    print("| model | N | k | layout | precision | images/s | vs baseline | GMACs/image (fwd+bwd) | ideal ratio by MACs | share of ideal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']}{' (plain)' if r.get('plain') else ''} | {r['capacity']} | {r['operating_point']} | "
              f"{'channels-last' if r['channels_last'] else 'contiguous'} | {r['precision']} | {r['images_per_s']:.1f} | "
              f"{r['ratio_to_baseline']:.2f}x | {r['gmacs_per_image']:.3f} | {r['mac_ratio_to_baseline']:.2f}x | "
              f"{r['fraction_of_mac_ratio']:.2f} |")
    return rows


def _write(rows, output):
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w") as f:
            json.dump(rows, f, indent=2)
        print(f"rows written to {output}")
