#!/usr/bin/env python
"""Where exported MIMOConv graphs spend their time on OpenVINO: per-layer counters grouped by part.

Each folder written by scripts/export_onnx.py is compiled as DeployedClassifier compiles it (f32
precision hint, one stream, --threads threads) with OpenVINO's per-layer counters on, run on a
seeded batch of Gaussian pixels (times do not depend on the pixel values), and its layers' median
times are summed into parts: "stem" (the convolutions that read the input image; superposition does
not shrink them with k), "convolution" (every other one, the trunk, binding, shortcuts) and the
remaining OpenVINO layer types (Convert, FakeQuantize, Reorder, fused eltwise chains named by their
first op, e.g. "Subtract", ...). The folders run one after the other in one process: pass the
baseline's export next to a MIMOConv one to compare them. The per-part table goes to stdout, the
per-layer rows (with --output) to a JSON file. Counting slows a call a little: the totals are for
comparing parts, images/s come from scripts/benchmark_throughput.py and evaluate_mimoconv.py --onnx.
Timings from a busy machine mislead: stop other work while this runs.

Example (the README's Deploy section):
    python scripts/export_onnx.py --model zoo/mimoconv16-2-n4 --output zoo/mimoconv16-2-n4/onnx --int8 \\
        --calibration-data-dir ../shared/data/cifar10
    python scripts/export_onnx.py --model zoo/wrn16-2-baseline --output zoo/wrn16-2-baseline/onnx --int8 \\
        --calibration-data-dir ../shared/data/cifar10
    python scripts/profile_onnx.py --onnx zoo/wrn16-2-baseline/onnx zoo/mimoconv16-2-n4/onnx \\
        --operating-point 1 4 --threads 2 --output outputs/profile_int8.json
"""

import argparse
import json
from pathlib import Path

from mimo_hf.evaluation.throughput import machine_description


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", nargs="+", required=True, help="exported folders (scripts/export_onnx.py --output)")
    p.add_argument("--operating-point", nargs="+", default=None,
                   help="operating point per folder (k, or 'k4'); one value applies to all; default: each "
                        "folder's default operating point (deploy.json)")
    p.add_argument("--precision", choices=["fp32", "int8"], default="int8", help="which file (default: int8)")
    p.add_argument("--batch-size", type=int, default=256, help="images per call (default: 256)")
    p.add_argument("--threads", type=int, default=None, help="OpenVINO inference threads (default: its choice)")
    p.add_argument("--repeats", type=int, default=5, help="profiled calls; each layer's median (default: 5)")
    p.add_argument("--min-share", type=float, default=0.01,
                   help="parts under this share of the total in every folder are summed into one 'other' row "
                        "(default: 0.01; 0 lists every part)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Gaussian input batch (default: 0)")
    p.add_argument("--output", default=None, help="JSON file for the per-layer rows (refuses to overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    args = p.parse_args(argv)
    points = args.operating_point
    if points is not None and len(points) not in (1, len(args.onnx)):
        p.error(f"--operating-point takes one value or one per folder ({len(args.onnx)}), got {len(points)}")
    if args.output and Path(args.output).exists() and not args.overwrite:
        p.error(f"{args.output} exists; pass --overwrite to replace it")
    return args


def display_name(folder):
    """The model's name for an export in <model folder>/onnx, else the folder's own name."""
    folder = Path(folder)
    return folder.parent.name if folder.name == "onnx" and folder.parent.name else folder.name


def table(profiles, min_share=0.0):
    """Markdown: one row per part, ms and share of each folder's total, columns in folder order; parts
    under `min_share` in every folder are summed into an "other" row."""
    parts = []
    for profile in profiles:
        parts += [entry["part"] for entry in profile["parts"] if entry["part"] not in parts]
    by_part = [{entry["part"]: entry for entry in profile["parts"]} for profile in profiles]
    small = [part for part in parts if all(part not in found or found[part]["share"] < min_share for found in by_part)]
    header = " | ".join(f"`{display_name(p['folder'])}` {p['operating_point']} {p['precision']}" for p in profiles)
    lines = [f"| part | {header} |", "|---" * (len(profiles) + 1) + "|"]

    def cell(ms, total):
        return f"{ms:.2f} ms ({100 * ms / total:.1f}%)" if total > 0 else f"{ms:.2f} ms"

    for part in parts:
        if part in small:
            continue
        cells = [cell(found[part]["ms"], profile["total_ms"]) if part in found else "-"
                 for found, profile in zip(by_part, profiles)]
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    if small:
        cells = [cell(sum(found[part]["ms"] for part in small if part in found), profile["total_ms"])
                 for found, profile in zip(by_part, profiles)]
        lines.append(f"| other ({', '.join(small)}) | " + " | ".join(cells) + " |")
    lines.append("| total | " + " | ".join(f"{p['total_ms']:.2f} ms" for p in profiles) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    from mimo_hf.deploy.profiling import profile_export

    points = args.operating_point or [None]
    if len(points) == 1:
        points = points * len(args.onnx)
    profiles = [profile_export(folder, point, args.precision, args.batch_size, args.threads, args.repeats, args.seed)
                for folder, point in zip(args.onnx, points)]
    machine = machine_description()
    print(table(profiles, args.min_share))
    print(f"\n{machine['cpu']}, {args.threads or 'default'} threads, batch {args.batch_size}, median of "
          f"{args.repeats} profiled calls per layer")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps({"machine": machine, "profiles": profiles}, indent=1))
        print(f"per-layer rows written to {args.output}")
    return profiles


if __name__ == "__main__":
    main()
