#!/usr/bin/env python
"""Evaluate a MIMOConv checkpoint at every operating point: accuracy (through `evaluate`) and throughput.

The model is a Hub-ready folder or a Hub id, loaded with AutoModelForImageClassification exactly as a
Hub user would. Without --data-dir or --dataset it runs on the 1,000 CIFAR-10 test images shipped with
the package (offline). Writes <output-dir>/results.json (the single source for model-card numbers)
and <output-dir>/accuracy_throughput.png. Throughput of every operating point and of the baseline is
timed side by side in one run, on this machine.

Examples:
    python scripts/evaluate_mimoconv.py                                   # zoo dynamic model, shipped sample
    python scripts/evaluate_mimoconv.py --model zoo/mimoconv16-2-n4 --data-dir ../shared/data/cifar10
    python scripts/evaluate_mimoconv.py --model org/repo --dataset uoft-cs/cifar10 --split test
    python scripts/evaluate_mimoconv.py --model zoo/mimoconv16-2-n4 --onnx zoo/mimoconv16-2-n4/onnx \
        --baseline-onnx zoo/wrn16-2-baseline/onnx --data-dir ../shared/data/cifar10 --threads 2 \
        --output-dir zoo/mimoconv16-2-n4 --results-file deploy_results.json

--onnx DIR (a folder written by scripts/export_onnx.py; needs the deploy extra) also scores the exported
graphs at every operating point on every --runtimes x --precisions, on the same batches as the PyTorch
evaluation, and times them side by side with the eager models (and the baseline's export,
--baseline-onnx) in one interleaved run; the results JSON gets a "deploy" section and no plot is drawn.
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "zoo" / "mimoconv16-2-n4-dynamic"
DEFAULT_BASELINE = ROOT / "zoo" / "wrn16-2-baseline"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="Hub-ready folder or Hub id (default: the zoo's dynamic model)")
    p.add_argument("--revision", default=None, help="Hub revision (commit, branch or tag) for --model")
    p.add_argument("--baseline", default=str(DEFAULT_BASELINE),
                   help="folder or Hub id of the plain Wide ResNet timed and scored beside it (default: the zoo's); 'none' to skip")
    p.add_argument("--operating-points", type=int, nargs="*", default=None,
                   help="operating points k to evaluate (default: every k that divides the capacity N)")
    p.add_argument("--dataset", default=None, help="Hub dataset id (uoft-cs/cifar10, uoft-cs/cifar100, ylecun/mnist)")
    p.add_argument("--data-dir", default=None, help="local folder of parquet shards in the Hub schema (e.g. ../shared/data/cifar10)")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--batch-size", type=int, default=500, help="images per evaluation batch (default: 500)")
    p.add_argument("--throughput-batch-size", type=int, default=256, help="images per timed call (default: 256)")
    p.add_argument("--repeats", type=int, default=10, help="timed interleaved rounds; median reported (default: 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per model before timing (default: 2)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--no-throughput", action="store_true", help="skip the throughput measurement")
    p.add_argument("--onnx", default=None, help="exported folder of --model (scripts/export_onnx.py) to score and time too")
    p.add_argument("--baseline-onnx", default=None, help="exported folder of --baseline, scored and timed beside it")
    p.add_argument("--runtimes", nargs="+", choices=["onnxruntime", "openvino"], default=["onnxruntime", "openvino"],
                   help="runtimes for --onnx (default: onnxruntime openvino)")
    p.add_argument("--precisions", nargs="+", choices=["fp32", "int8"], default=None,
                   help="precisions for --onnx (default: every one the folder holds)")
    p.add_argument("--output-dir", default="outputs/evaluation", help="where the results and the plot go (default: outputs/evaluation)")
    p.add_argument("--results-file", default="results.json", help="name of the results JSON in --output-dir (default: results.json)")
    return p.parse_args(argv)


def _display(name):
    """Local folders relative to the working directory (no machine-specific paths in results)."""
    return os.path.relpath(name) if os.path.isdir(name) else name


def main(argv=None):
    args = parse_args(argv)
    import torch
    from accelerate import Accelerator
    from torch.utils.data import DataLoader, TensorDataset
    from tqdm.auto import tqdm

    from mimo_hf.data.augment import normalize
    from mimo_hf.evaluation.throughput import machine_description, time_interleaved
    from mimo_hf.data.images import load_image_dataset
    from mimo_hf.evaluation.accuracy import evaluate_operating_points, load_classifier
    from mimo_hf.evaluation.metrics import load_metric
    from mimo_hf.evaluation.plots import plot_operating_points

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    sample = args.data_dir is None and args.dataset is None
    data_dir = str(ROOT / "mimo_hf" / "samples" / "cifar10") if sample else args.data_dir
    data = load_image_dataset(args.dataset or "uoft-cs/cifar10", data_dir=data_dir, split=args.split)

    accelerator = Accelerator()
    model, (mean, std) = load_classifier(args.model, revision=args.revision)
    n = model.config.num_superpositions
    points = args.operating_points or model.config.operating_points
    bad = [k for k in points if k not in model.config.operating_points]
    if bad:
        sys.exit(f"error: operating points {bad} do not divide the capacity N={n}; allowed: {model.config.operating_points}")
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if names != list(data.label_names):
        sys.exit(f"error: the model's labels {names} differ from the dataset's {list(data.label_names)}")

    loader = accelerator.prepare(DataLoader(TensorDataset(data.images, data.labels), batch_size=args.batch_size))
    model = accelerator.prepare(model)
    metric = load_metric("accuracy")
    scores = evaluate_operating_points(model, loader, points, accelerator, metric, mean=mean, std=std, progress=True)

    baseline = None
    if args.baseline and args.baseline.lower() != "none":
        base_model, (base_mean, base_std) = load_classifier(args.baseline)
        base_model = accelerator.prepare(base_model)
        base_score = evaluate_operating_points(base_model, loader, [1], accelerator, metric, mean=base_mean, std=base_std)
        baseline = {"model": _display(args.baseline), "name": "Wide ResNet baseline", "accuracy": base_score[1]["accuracy"],
                    "count": base_score[1]["count"]}

    deploy = None
    if args.onnx:
        from mimo_hf.deploy.evaluation import evaluate_deployed

        if args.baseline_onnx and baseline is None:
            sys.exit("error: --baseline-onnx needs --baseline")
        batch = None if args.no_throughput else normalize(data.images[: args.throughput_batch_size], mean, std)
        base = None if baseline is None else {"model": accelerator.unwrap_model(base_model), "scores": base_score,
                                               "onnx_dir": args.baseline_onnx, "mean": base_mean, "std": base_std}
        deploy, eager_ips = evaluate_deployed(accelerator.unwrap_model(model), args.onnx, points, data.images, data.labels,
                                              args.batch_size, mean, std, metric, scores, base, args.runtimes,
                                              args.precisions, args.threads, batch, args.warmup, args.repeats)
        if eager_ips is not None:
            ips = {**{f"k{k}": v for (name, k), v in eager_ips.items() if name == "model"},
                   **{"baseline": v for (name, _), v in eager_ips.items() if name == "baseline"}}
    elif not args.no_throughput:
        batch = normalize(data.images[: args.throughput_batch_size], mean, std).to(accelerator.device)
        entries = [(f"k{k}", accelerator.unwrap_model(model), k) for k in points]
        if baseline is not None:
            entries.append(("baseline", accelerator.unwrap_model(base_model), 1))
        with tqdm(total=args.repeats, desc="timing", disable=not accelerator.is_local_main_process) as bar:
            timings = time_interleaved(entries, batch, warmup=args.warmup, repeats=args.repeats, progress=bar)
        ips = {name: batch.shape[0] / t["median_s"] for name, t in timings.items()}

    rows = []
    for k in points:
        row = {"operating_point": k, "accuracy": scores[k]["accuracy"], "count": scores[k]["count"]}
        if not args.no_throughput:
            row["images_per_s"] = round(ips[f"k{k}"], 1)
        rows.append(row)
    if baseline is not None and not args.no_throughput:
        baseline["images_per_s"] = round(ips["baseline"], 1)
        for row in rows:
            row["speedup_vs_baseline"] = round(row["images_per_s"] / baseline["images_per_s"], 3)

    if not accelerator.is_main_process:
        return None
    report = {
        "model": _display(args.model),
        "revision": args.revision,
        "capacity": n,
        "dataset": "shipped CIFAR-10 test sample (first 1,000 test images)" if sample else (args.dataset or "uoft-cs/cifar10"),
        "data_dir": None if sample else args.data_dir,
        "split": args.split,
        "num_examples": len(data),
        "data_note": "CIFAR-10 here is a JPEG (quality 75) copy; accuracies are not comparable with published CIFAR-10 results"
        if data.dataset == "cifar10" else None,
        "results": rows,
        "baseline": baseline,
        "hardware": machine_description(),
        "throughput_batch_size": None if args.no_throughput else args.throughput_batch_size,
        "command": "python " + " ".join([os.path.relpath(__file__, ROOT)] + (sys.argv[1:] if argv is None else list(argv))),
    }
    if deploy is not None:
        report["deploy"] = deploy
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, args.results_file), "w") as f:
        json.dump(report, f, indent=2)
    print(f"\n{report['dataset']} ({args.split}, {len(data)} images); {report['hardware']['cpu']}, "
          f"{report['hardware']['threads']} threads")
    print("| model | k | accuracy | images/s | vs baseline |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {report['model']} | {row['operating_point']} | {100 * row['accuracy']:.2f}% | "
              f"{row.get('images_per_s', '-')} | {row.get('speedup_vs_baseline', '-')} |")
    if baseline is not None:
        print(f"| {baseline['model']} | 1 | {100 * baseline['accuracy']:.2f}% | {baseline.get('images_per_s', '-')} | 1.0 |")
    if deploy is not None:
        _print_deploy(deploy)
    elif not args.no_throughput:
        plot_operating_points(rows, os.path.join(args.output_dir, "accuracy_throughput.png"),
                              title=f"{Path(args.model).name} on {report['dataset']}", baseline=baseline)
    print(f"wrote {args.output_dir}/{args.results_file}" + ("" if args.no_throughput or deploy else " and accuracy_throughput.png"))
    return report


def _print_deploy(deploy):
    print("| model | runtime | precision | k | accuracy | images/s | vs eager fp32 baseline | vs baseline, same runtime |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("model", "baseline"):
        for row in (deploy[name] or {}).get("results", []):
            print(f"| {name} | {row['runtime']} | {row['precision']} | {row['operating_point']} | "
                  f"{100 * row['accuracy']:.2f}% | {row.get('images_per_s', '-')} | "
                  f"{row.get('ratio_to_eager_fp32_baseline') or '-'} | {row.get('ratio_to_baseline_same_runtime') or '-'} |")


if __name__ == "__main__":
    main()
