#!/usr/bin/env python
"""Inference throughput of MIMOConv / MIMOFormer at each superposition setting vs the plain network.

MIMOConv (default): every model is the same code (mimo_hf.MIMOConvForImageClassification) with the
same depth and width; the baseline is N = 1, binding "none", initial width 1, ReLU.
MIMOFormer (--architecture mimoformer): the Performer baseline, MIMOFormer "att." and "att.+MLP" of
the same size (layers, width, heads, MLP, random features), timed at each sequence length.
Models are randomly initialised (throughput does not depend on the weights) and timed in interleaved
rounds on the same input batch; ratios are each model's inputs/s over the baseline's from the same run.

Examples (the README's tables):
    python scripts/benchmark_throughput.py --depth 16 --width 4 --batch-size 256 --output bench.json
    python scripts/benchmark_throughput.py --architecture mimoformer --sequence-lengths 1024 4096 --output bench-former.json
    python scripts/benchmark_throughput.py --runtime torch onnxruntime openvino --int8 --threads 2 --output bench-deploy.json

--runtime (MIMOConv): every model is also exported to ONNX (mimo_hf.deploy, needs the deploy extra) and
timed on ONNX Runtime and/or OpenVINO, with --int8 also as a static int8 (QDQ) graph, all side by side
with the eager PyTorch models in the same interleaved rounds. The int8 graphs of this benchmark are
calibrated on random inputs (weights are random too): they time the kernels, their accuracy means
nothing (scripts/export_onnx.py makes deployable int8 models from trained checkpoints).
"""

import argparse
import json
import os
import sys

import torch
from tqdm.auto import tqdm

from mimo_hf import (
    MIMOConvConfig,
    MIMOConvForImageClassification,
    MIMOFormerConfig,
    MIMOFormerForSequenceClassification,
)
from mimo_hf.evaluation.throughput import (
    machine_description,
    macs_per_image,
    prepare_for_inference,
    time_interleaved,
)
from mimo_hf.settings import parse_grid


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--architecture", choices=["mimoconv", "mimoformer"], default="mimoconv", help="which model family (default: mimoconv)")
    f = p.add_argument_group("MIMOFormer (--architecture mimoformer)")
    f.add_argument("--sequence-lengths", type=int, nargs="+", default=[1024, 4096], help="sequence lengths L (default: 1024 4096)")
    f.add_argument("--att-grids", nargs="*", default=["2x2", "4x4"], help="grids MxN of MIMOFormer att. (default: 2x2 4x4)")
    f.add_argument("--att-mlp-grids", nargs="*", default=["2x2"], help="grids MxN of MIMOFormer att.+MLP (default: 2x2)")
    f.add_argument("--num-hidden-layers", type=int, default=2, help="encoder blocks (default: 2)")
    f.add_argument("--hidden-size", type=int, default=64, help="model width d (default: 64)")
    f.add_argument("--num-attention-heads", type=int, default=4, help="heads (default: 4)")
    f.add_argument("--head-dim", type=int, default=16, help="head size (default: 16)")
    f.add_argument("--intermediate-size", type=int, default=128, help="MLP width (default: 128)")
    f.add_argument("--num-random-features", type=int, default=64, help="random features R (default: 64)")
    f.add_argument("--sequences", type=int, default=32, help="sequences per timed call (default: 32)")
    c = p.add_argument_group("MIMOConv")
    c.add_argument("--depth", type=int, default=16, help="Wide ResNet depth 6n+4 (default: 16)")
    c.add_argument("--width", type=int, default=4, help="Wide ResNet width factor (default: 4)")
    c.add_argument("--initial-width", type=float, default=4, help="MIMOConv stem width factor s, C = 16 s (default: 4)")
    c.add_argument("--baseline-initial-width", type=float, default=1, help="baseline stem width factor (default: 1)")
    c.add_argument("--num-superpositions", type=int, nargs="+", default=[1, 2, 4],
                   help="capacities N of the static MIMOConv models, each timed at k = N (default: 1 2 4)")
    c.add_argument("--dynamic-capacity", type=int, default=None,
                   help="also time one model of this capacity at every operating point k | N")
    c.add_argument("--binding", choices=["hrr", "mbat"], default="hrr", help="MIMOConv binding (default: hrr)")
    c.add_argument("--activation", choices=["relu", "prelu", "srelu"], default="prelu",
                   help="MIMOConv trunk activation (default: prelu; the baseline always uses relu)")
    c.add_argument("--num-labels", type=int, default=10, help="classifier outputs (default: 10)")
    c.add_argument("--image-size", type=int, default=32, help="input height and width (default: 32)")
    p.add_argument("--batch-size", type=int, default=256, help="images per timed call (default: 256)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per model before timing (default: 3)")
    p.add_argument("--repeats", type=int, default=15, help="timed interleaved rounds; the median is reported (default: 15)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="run every model and the input in channels-last layout (default: off for inference, on for "
                   "--mode train, as train_mimoconv.py does)")
    p.add_argument("--mode", choices=["inference", "train"], default="inference",
                   help="MIMOConv: time inference calls, or training steps (forward + backward + SGD, the recipe's loss "
                   "and regularisers) on --train-bundles bundles per step")
    t = p.add_argument_group("MIMOConv --mode train")
    t.add_argument("--train-bundles", type=int, default=128,
                   help="bundles per training step: the recipe's batch (128); a step of N-capacity MIMOConv sees 128 * N images")
    t.add_argument("--tune-cpu-allocator", action=argparse.BooleanOptionalAction, default=True,
                   help="tune glibc's allocator as train_mimoconv.py does (process-wide: affects every row)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and input (default: 0)")
    p.add_argument("--runtime", nargs="+", choices=["torch", "onnxruntime", "openvino"], default=["torch"],
                   help="MIMOConv: runtimes to time side by side (default: torch); non-torch runtimes run ONNX exports")
    p.add_argument("--int8", action="store_true", help="with --runtime onnxruntime/openvino: also time static int8 graphs")
    p.add_argument("--output", default=None, help="write the result rows as JSON to this path")
    return p.parse_args(argv)


def build(args, capacity, baseline=False):
    if baseline:
        config = MIMOConvConfig(num_superpositions=1, binding="none", depth=args.depth, width=args.width,
                                initial_width=args.baseline_initial_width, activation="relu",
                                image_size=args.image_size, num_labels=args.num_labels)
    else:
        config = MIMOConvConfig(num_superpositions=capacity, binding=args.binding, depth=args.depth, width=args.width,
                                initial_width=args.initial_width, activation=args.activation,
                                image_size=args.image_size, num_labels=args.num_labels)
    return prepare_for_inference(MIMOConvForImageClassification(config), args.channels_last)


def build_former(args, attention_type, grid, length):
    config = MIMOFormerConfig(attention_type=attention_type, mimo_m=grid[0], mimo_n=grid[1],
                              num_random_features=args.num_random_features, vocab_size=256, max_position_embeddings=length,
                              hidden_size=args.hidden_size, num_attention_heads=args.num_attention_heads,
                              head_dim=args.head_dim, intermediate_size=args.intermediate_size,
                              num_hidden_layers=args.num_hidden_layers, num_labels=args.num_labels)
    return MIMOFormerForSequenceClassification(config).eval()


def main_mimoformer(args):
    machine = machine_description()
    rows = []
    for length in args.sequence_lengths:
        variants = [("performer", "performer", (1, 1))]
        variants += [(f"mimo_att-{g}", "mimo_att", parse_grid(g)) for g in args.att_grids]
        variants += [(f"mimo_att_mlp-{g}", "mimo_att_mlp", parse_grid(g)) for g in args.att_mlp_grids]
        entries = [(name, build_former(args, kind, grid, length), None) for name, kind, grid in variants]
        ids = torch.randint(0, 256, (args.sequences, length))
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        with tqdm(total=args.repeats, desc=f"timing L={length}", file=sys.stderr) as bar:
            timings = time_interleaved(entries, batch, warmup=args.warmup, repeats=args.repeats, progress=bar)
        macs = {name: macs_per_image(model, batch, None) for name, model, _ in entries}
        base = args.sequences / timings["performer"]["median_s"]
        for (name, kind, grid), (_, model, _) in zip(variants, entries):
            sps = args.sequences / timings[name]["median_s"]
            rows.append({"name": name, "attention_type": kind, "grid": f"{grid[0]}x{grid[1]}", "sequence_length": length,
                         "sequences": args.sequences, "layers": args.num_hidden_layers, "hidden_size": args.hidden_size,
                         "heads": args.num_attention_heads, "head_dim": args.head_dim,
                         "intermediate_size": args.intermediate_size, "random_features": args.num_random_features,
                         "sequences_per_s": round(sps, 2), "ratio_to_baseline": round(sps / base, 3),
                         "mmacs_per_sequence": round(macs[name] / 1e6, 3),
                         "mac_ratio_to_baseline": round(macs["performer"] / macs[name], 3),
                         "median_s": timings[name]["median_s"], "repeats": args.repeats, **machine})
    print(f"\n{machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}, {args.sequences} sequences per call")
    print("| model | grid | L | sequences/s | vs Performer | MMACs/sequence | ideal ratio by MACs |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['attention_type']} | {r['grid']} | {r['sequence_length']} | {r['sequences_per_s']:.1f} | "
              f"{r['ratio_to_baseline']:.2f}x | {r['mmacs_per_sequence']:.1f} | {r['mac_ratio_to_baseline']:.2f}x |")
    return rows


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.architecture == "mimoformer":
        rows = main_mimoformer(args)
        _write(rows, args.output)
        return rows
    if args.mode == "train":
        rows = main_train(args)
        _write(rows, args.output)
        return rows
    args.channels_last = bool(args.channels_last)
    entries = [("baseline", build(args, 1, baseline=True), 1)]
    descriptions = {"baseline": {"model": f"WRN-{args.depth}-{args.width}", "capacity": 1, "operating_point": 1,
                                 "binding": "none", "initial_width": args.baseline_initial_width, "activation": "relu"}}
    models = {}
    for n in args.num_superpositions:
        models[n] = build(args, n)
        name = f"mimoconv-n{n}"
        entries.append((name, models[n], n))
        descriptions[name] = {"model": f"MIMOConv-{args.depth}-{args.width}", "capacity": n, "operating_point": n}
    if args.dynamic_capacity is not None:
        n = args.dynamic_capacity
        model = models.get(n) or build(args, n)
        for k in MIMOConvConfig(num_superpositions=n).operating_points:
            name = f"mimoconv-n{n}-k{k}"
            if k == n and n in models:
                continue
            entries.append((name, model, k))
            descriptions[name] = {"model": f"MIMOConv-{args.depth}-{args.width}", "capacity": n, "operating_point": k}
    for name, d in descriptions.items():
        if name != "baseline":
            d.update(binding=args.binding, initial_width=args.initial_width, activation=args.activation)

    batch = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    if args.channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    if args.runtime != ["torch"] or args.int8:
        rows = main_deploy(args, entries, descriptions, batch)
        _write(rows, args.output)
        return rows
    with tqdm(total=args.repeats, desc="timing rounds", file=sys.stderr) as bar:
        timings = time_interleaved(entries, batch, warmup=args.warmup, repeats=args.repeats, progress=bar)

    machine = machine_description()
    base = args.batch_size / timings["baseline"]["median_s"]
    macs = {name: macs_per_image(model, batch, k) for name, model, k in entries}
    rows = []
    for name, _, _ in entries:
        ips = args.batch_size / timings[name]["median_s"]
        rows.append({"name": name, **descriptions[name], "depth": args.depth, "width": args.width,
                     "batch_size": args.batch_size, "channels_last": args.channels_last,
                     "images_per_s": round(ips, 1), "ratio_to_baseline": round(ips / base, 3),
                     "gmacs_per_image": round(macs[name] / 1e9, 4), "mac_ratio_to_baseline": round(macs["baseline"] / macs[name], 3),
                     "median_s": timings[name]["median_s"], "repeats": args.repeats, **machine})

    print(f"\n{machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}, batch {args.batch_size}"
          f"{', channels_last' if args.channels_last else ''}")
    print("| model | N | k | images/s | vs baseline | GMACs/image | ideal ratio by MACs |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['capacity']} | {r['operating_point']} | {r['images_per_s']:.1f} | "
              f"{r['ratio_to_baseline']:.2f}x | {r['gmacs_per_image']:.3f} | {r['mac_ratio_to_baseline']:.2f}x |")
    _write(rows, args.output)
    return rows


def main_deploy(args, entries, descriptions, batch):
    """--runtime: the MIMOConv entries on every runtime and precision, timed in the same interleaved rounds."""
    from mimo_hf.deploy.benchmark import runtime_entries, time_callables
    from mimo_hf.deploy.runtime import runtime_versions

    if args.int8 and args.runtime == ["torch"]:
        sys.exit("error: --int8 needs --runtime onnxruntime and/or openvino (PyTorch runs fp32 here)")
    threads = torch.get_num_threads()  # every runtime gets torch's thread count
    with tqdm(total=len(entries), desc="exporting", file=sys.stderr) as bar:
        timed, folder = runtime_entries(entries, batch, args.runtime, args.int8, threads=threads, progress=bar)
    with folder, tqdm(total=args.repeats, desc="timing rounds", file=sys.stderr) as bar:
        timings = time_callables(timed, warmup=args.warmup, repeats=args.repeats, progress=bar)
    machine = {**machine_description(), "runtime_versions": runtime_versions()}
    ips = {key: args.batch_size / t["median_s"] for key, t in timings.items()}
    eager_base = ips.get(("baseline", "torch", "fp32"))
    rows = []
    for (name, runtime, precision), _ in timed:
        key = (name, runtime, precision)
        same = ips[("baseline", runtime, precision)]
        rows.append({"name": name, **descriptions[name], "depth": args.depth, "width": args.width,
                     "batch_size": args.batch_size, "channels_last": args.channels_last, "runtime": runtime,
                     "precision": precision, "images_per_s": round(ips[key], 1),
                     "ratio_to_baseline": None if eager_base is None else round(ips[key] / eager_base, 3),
                     "ratio_to_baseline_same_runtime": round(ips[key] / same, 3),
                     "median_s": timings[key]["median_s"], "repeats": args.repeats,
                     "int8_calibration": "random inputs (timing only)" if precision == "int8" else None, **machine})
    print(f"\n{machine['cpu']}, {threads} threads, torch {machine['torch']}, batch {args.batch_size}; "
          + ", ".join(f"{k} {v}" for k, v in machine["runtime_versions"].items()))
    print("| model | N | k | runtime | precision | images/s | vs eager fp32 baseline | vs baseline, same runtime and precision |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = "-" if r["ratio_to_baseline"] is None else f"{r['ratio_to_baseline']:.2f}x"
        print(f"| {r['model']} | {r['capacity']} | {r['operating_point']} | {r['runtime']} | {r['precision']} | "
              f"{r['images_per_s']:.1f} | {ratio} | {r['ratio_to_baseline_same_runtime']:.2f}x |")
    return rows


def train_step(model, k, bundles, channels_last, regularised, seed):
    """A training-step closure at operating point k: forward + backward + SGD on `bundles * k` images,
    the loss of train_mimoconv.py (smoothed soft targets; binding + isometry regularisers for MIMOConv)."""
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
        _, loss = training_loss(model, model, images, targets, k, *coefs)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, bundles * k


def main_train(args):
    """--mode train: training steps of the baseline and each MIMOConv, timed side by side."""
    from mimo_hf.evaluation.throughput import macs_of_call, time_steps_interleaved
    from mimo_hf.training.fast_training import tune_cpu_allocator

    channels_last = True if args.channels_last is None else args.channels_last
    tuned = args.tune_cpu_allocator and tune_cpu_allocator()
    base = {"model": f"WRN-{args.depth}-{args.width}", "capacity": 1, "operating_point": 1, "binding": "none",
            "initial_width": args.baseline_initial_width, "activation": "relu"}
    specs = [("baseline", build(args, 1, baseline=True), 1, channels_last, False, base)]
    # The same baseline as a plain fp32 step (contiguous layout): the tuned baseline must be no slower.
    specs.append(("baseline-plain", build(args, 1, baseline=True), 1, False, False, {**base, "plain": True}))
    points = [(n, n) for n in args.num_superpositions]
    if args.dynamic_capacity is not None:
        points += [(args.dynamic_capacity, k) for k in MIMOConvConfig(num_superpositions=args.dynamic_capacity).operating_points
                   if (args.dynamic_capacity, k) not in points]
    for n, k in points:
        specs.append((f"mimoconv-n{n}" + (f"-k{k}" if k != n else ""), build(args, n), k, channels_last, True,
                      {"model": f"MIMOConv-{args.depth}-{args.width}", "capacity": n, "operating_point": k,
                       "binding": args.binding, "initial_width": args.initial_width, "activation": args.activation}))
    steps, images, layouts = {}, {}, {}
    for name, model, k, layout, regularised, _ in specs:
        steps[name], images[name] = train_step(model, k, args.train_bundles, layout, regularised, args.seed)
        layouts[name] = layout
    with tqdm(total=args.repeats, desc="timing training steps", file=sys.stderr) as bar:
        timings = time_steps_interleaved(steps, warmup=args.warmup, repeats=args.repeats, progress=bar)
    macs = {name: macs_of_call(step) / images[name] for name, step in steps.items()}  # forward + backward
    machine = machine_description()
    base_ips = images["baseline"] / timings["baseline"]["median_s"]
    rows = []
    for name, _, _, _, _, description in specs:
        ips = images[name] / timings[name]["median_s"]
        mac_ratio = macs["baseline"] / macs[name]
        rows.append({"name": name, "mode": "train", **description, "depth": args.depth, "width": args.width,
                     "bundles_per_step": args.train_bundles, "images_per_step": images[name],
                     "channels_last": layouts[name], "cpu_allocator_tuned": bool(tuned), "precision": "fp32",
                     "images_per_s": round(ips, 1), "ratio_to_baseline": round(ips / base_ips, 3),
                     "gmacs_per_image": round(macs[name] / 1e9, 4), "mac_ratio_to_baseline": round(mac_ratio, 3),
                     "fraction_of_mac_ratio": round(ips / base_ips / mac_ratio, 3),
                     "median_s": timings[name]["median_s"], "repeats": args.repeats, **machine})
    print(f"\n{machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}, training steps of "
          f"{args.train_bundles} bundles, fp32, allocator {'tuned' if tuned else 'default'}")
    print("| model | N | k | layout | images/s | vs baseline | GMACs/image (fwd+bwd) | ideal ratio by MACs | share of ideal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']}{' (plain)' if r.get('plain') else ''} | {r['capacity']} | {r['operating_point']} | "
              f"{'channels-last' if r['channels_last'] else 'contiguous'} | {r['images_per_s']:.1f} | "
              f"{r['ratio_to_baseline']:.2f}x | {r['gmacs_per_image']:.3f} | {r['mac_ratio_to_baseline']:.2f}x | "
              f"{r['fraction_of_mac_ratio']:.2f} |")
    return rows


def _write(rows, output):
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w") as f:
            json.dump(rows, f, indent=2)
        print(f"rows written to {output}")


if __name__ == "__main__":
    main()
