#!/usr/bin/env python
"""Evaluate a MIMOFormer checkpoint on its LRA task at several grids: accuracy (through `evaluate`) and throughput.

The model is a Hub-ready folder or a Hub id, loaded with AutoModelForSequenceClassification exactly as
a Hub user would. Throughput of every grid and of the baseline (e.g. the Performer of the same size)
is timed side by side in one run on this machine. Writes <output-dir>/<results-file> (the single
source for model-card numbers) and <output-dir>/accuracy_throughput.png.

Examples:
    python scripts/evaluate_mimoformer.py --model zoo/mimoformer-listops-att --baseline zoo/performer-listops \
        --data-dir data/listops-cpu --output-dir zoo/mimoformer-listops-att --results-file eval_results.json
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def grid_arg(text):
    from mimo_hf.training.mimoformer import parse_grid

    try:
        return parse_grid(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="Hub-ready folder or Hub id")
    p.add_argument("--revision", default=None, help="Hub revision (commit, branch or tag) for --model")
    p.add_argument("--baseline", default=None, help="folder or Hub id of a baseline timed and scored beside it (e.g. the Performer)")
    p.add_argument("--task", default=None, help="LRA task (default: read from the folder's training_args.json)")
    p.add_argument("--data-dir", default=None, help="the task's data folder (default: as in training_args.json)")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--grids", type=grid_arg, nargs="*", default=None,
                   help="grids MxN to evaluate (default: 1x1, the trained grids and the full grid)")
    p.add_argument("--batch-size", type=int, default=256, help="sequences per evaluation batch (default: 256)")
    p.add_argument("--max-eval-samples", type=int, default=None, help="evaluate only the first N examples of the split")
    p.add_argument("--check-subset", type=int, default=256,
                   help="also record accuracy on the first N examples, for the re-evaluation test (default: 256)")
    p.add_argument("--throughput-batch-size", type=int, default=64, help="sequences per timed call (default: 64)")
    p.add_argument("--repeats", type=int, default=7, help="timed interleaved rounds; median reported (default: 7)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per model before timing (default: 2)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--no-throughput", action="store_true", help="skip the throughput measurement")
    p.add_argument("--throughput-only", action="store_true",
                   help="only time the grids (and baseline) on this machine and merge sequences/s into the existing "
                        "results file, keeping its accuracies (e.g. accuracy measured on a GPU, throughput on a CPU)")
    p.add_argument("--output-dir", default="outputs/evaluation", help="where results and plot go (default: outputs/evaluation)")
    p.add_argument("--results-file", default="results.json", help="results JSON name in --output-dir (default: results.json)")
    return p.parse_args(argv)


def _display(name):
    return os.path.relpath(name) if os.path.isdir(name) else name


def _run_args(model_name):
    path = Path(model_name) / "training_args.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def results_dataset(task, data_dir):
    """The results' `dataset` field, which model cards and push configs declare: the Hub id of the image and
    text data, or for ListOps, generated here, a name saying how: "listops (generated with
    scripts/generate_listops.py --preset cpu)" when the data folder's generation.json matches a preset."""
    import importlib.util

    from mimo_hf.data.lra import HUB_IDS

    if task != "listops":
        return HUB_IDS.get(task, task)
    generation_file = Path(data_dir) / "generation.json" if data_dir else None
    generation = json.loads(generation_file.read_text()) if generation_file and generation_file.is_file() else {}
    spec = importlib.util.spec_from_file_location("generate_listops", ROOT / "scripts" / "generate_listops.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    splits = generation.get("splits", {})
    for name, preset in script.PRESETS.items():
        if all(generation.get(key) == preset[key] for key in ("min_length", "max_length")) and \
                [splits.get(split) for split in ("train", "validation", "test")] == \
                [preset["train_size"], preset["validation_size"], preset["test_size"]]:
            seed = generation.get("seed", 0)
            return f"listops (generated with scripts/generate_listops.py --preset {name}" + \
                (f" --seed {seed})" if seed != 0 else ")")
    return "listops (generated with scripts/generate_listops.py)"


def default_grids(config):
    grids = {(1, 1), (config.mimo_m, config.mimo_n), *(tuple(g) for g in (config.trained_grids or []))}
    return sorted(grids)


def main(argv=None):
    args = parse_args(argv)
    import torch
    from accelerate import Accelerator
    from torch.utils.data import DataLoader, TensorDataset
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification

    from mimo_hf.evaluation.throughput import machine_description, time_interleaved
    from mimo_hf.evaluation.accuracy import evaluate_grids
    from mimo_hf.data.lra import load_lra_task
    from mimo_hf.evaluation.metrics import load_metric
    from mimo_hf.evaluation.plots import plot_operating_points

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    run = _run_args(args.model)
    task = args.task or run.get("task")
    if task is None:
        sys.exit("error: --task is required (the model folder has no training_args.json naming it)")
    data_dir = args.data_dir or run.get("data_dir")
    accelerator = Accelerator()
    model = AutoModelForSequenceClassification.from_pretrained(args.model, revision=args.revision, trust_remote_code=True).eval()
    config = model.config
    # max_examples: only the first N examples are decoded (the same rows a full load would start with).
    data = load_lra_task(task, args.split, data_dir=data_dir, max_length=config.max_position_embeddings,
                         seed=run.get("seed", 0), max_examples=args.max_eval_samples or None)
    grids = args.grids or default_grids(config)
    bad = [g for g in grids if tuple(g) not in config.operating_points]
    if bad:
        sys.exit(f"error: grids {bad} lie outside the model's {config.mimo_m}x{config.mimo_n} grid")

    tensors = [data.input_ids, data.attention_mask] + ([data.input_ids_2, data.attention_mask_2] if data.input_ids_2 is not None else []) + [data.labels]
    loader = accelerator.prepare(DataLoader(TensorDataset(*tensors), batch_size=args.batch_size))
    subset = min(args.check_subset, len(data))
    subset_loader = accelerator.prepare(DataLoader(TensorDataset(*(t[:subset] for t in tensors)), batch_size=args.batch_size))
    model = accelerator.prepare(model)
    metric = load_metric("accuracy")
    previous = None
    if args.throughput_only:
        with open(os.path.join(args.output_dir, args.results_file)) as f:
            previous = json.load(f)
        scores = {g: next(r for r in previous["results"] if r["grid"] == f"{g[0]}x{g[1]}") for g in grids}
        subset_scores = scores
    else:
        scores = evaluate_grids(model, loader, grids, accelerator, metric, progress=True)
        subset_scores = evaluate_grids(model, subset_loader, grids, accelerator, metric)

    baseline = None
    if args.baseline:
        base_model = accelerator.prepare(
            AutoModelForSequenceClassification.from_pretrained(args.baseline, trust_remote_code=True).eval())
        if previous is not None:
            base_score = previous["baseline"]
        else:
            base_score = evaluate_grids(base_model, loader, [(1, 1)], accelerator, metric, progress=True)[(1, 1)]
        baseline = {"model": _display(args.baseline), "attention_type": accelerator.unwrap_model(base_model).config.attention_type,
                    "accuracy": base_score["accuracy"], "count": base_score["count"]}

    if not args.no_throughput:
        n = args.throughput_batch_size
        batch = {"input_ids": data.input_ids[:n].to(accelerator.device), "attention_mask": data.attention_mask[:n].to(accelerator.device)}
        entries = [(f"{g[0]}x{g[1]}", accelerator.unwrap_model(model), g) for g in grids]
        if baseline is not None:
            entries.append(("baseline", accelerator.unwrap_model(base_model), None))
        with tqdm(total=args.repeats, desc="timing", disable=not accelerator.is_local_main_process) as bar:
            timings = time_interleaved(entries, batch, warmup=args.warmup, repeats=args.repeats, progress=bar)
        sps = {name: batch["input_ids"].shape[0] / t["median_s"] for name, t in timings.items()}

    rows = []
    for g in grids:
        row = {"grid": f"{g[0]}x{g[1]}", "inputs_per_group": g[0] * g[1], "accuracy": scores[g]["accuracy"],
               "count": scores[g]["count"],
               "subset_accuracy": subset_scores[g]["subset_accuracy" if previous is not None else "accuracy"]}
        if not args.no_throughput:
            row["sequences_per_s"] = round(sps[row["grid"]], 2)
        rows.append(row)
    if baseline is not None and not args.no_throughput:
        baseline["sequences_per_s"] = round(sps["baseline"], 2)
        for row in rows:
            row["speedup_vs_baseline"] = round(row["sequences_per_s"] / baseline["sequences_per_s"], 3)

    if not accelerator.is_main_process:
        return None
    hardware = machine_description()
    if torch.cuda.is_available() and accelerator.device.type == "cuda":
        hardware["gpu"] = torch.cuda.get_device_name(accelerator.device)
    command = "python " + " ".join([os.path.relpath(__file__, ROOT)] + (sys.argv[1:] if argv is None else list(argv)))
    if previous is not None:
        # Accuracies (and where they were measured) stay; throughput is this run's.
        previous.setdefault("dataset", results_dataset(task, data_dir))
        previous.update(results=rows, baseline=baseline, throughput_hardware=hardware, throughput_device=str(accelerator.device),
                        throughput_batch_size=args.throughput_batch_size, throughput_command=command)
        with open(os.path.join(args.output_dir, args.results_file), "w") as f:
            json.dump(previous, f, indent=2)
        report = previous
    else:
        report = None
    report = report or {
        "model": _display(args.model),
        "revision": args.revision,
        "architecture": "mimoformer",
        "attention_type": config.attention_type,
        "grid": f"{config.mimo_m}x{config.mimo_n}",
        "task": task,
        "dataset": results_dataset(task, data_dir),
        "data_dir": data_dir,
        "split": args.split,
        "num_examples": len(data),
        "sequence_length": int(data.input_ids.shape[1]),
        "subset_size": subset,
        "results": rows,
        "baseline": baseline,
        "hardware": hardware,
        "device": str(accelerator.device),
        "throughput_batch_size": None if args.no_throughput else args.throughput_batch_size,
        "command": command,
    }
    if previous is None:
        if not args.no_throughput:
            report.update(throughput_hardware=hardware, throughput_device=str(accelerator.device), throughput_command=command)
        os.makedirs(args.output_dir, exist_ok=True)
        with open(os.path.join(args.output_dir, args.results_file), "w") as f:
            json.dump(report, f, indent=2)
    timed_on = report.get("throughput_device")
    print(f"\n{task} ({args.split}, {report['num_examples']} sequences of {report['sequence_length']} tokens); accuracy on "
          f"{report['device']}" + (f", throughput on {timed_on}" if timed_on else ""))
    print("| model | grid | accuracy | sequences/s | vs baseline |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {report['model']} | {row['grid']} | {100 * row['accuracy']:.2f}% | {row.get('sequences_per_s', '-')} | "
              f"{row.get('speedup_vs_baseline', '-')} |")
    if baseline is not None:
        print(f"| {baseline['model']} | 1x1 | {100 * baseline['accuracy']:.2f}% | {baseline.get('sequences_per_s', '-')} | 1.0 |")
    if not args.no_throughput:
        points = [{"label": r["grid"], "accuracy": r["accuracy"], "images_per_s": r["sequences_per_s"]} for r in rows]
        base = None if baseline is None else {"name": f"{baseline['attention_type']} baseline", "accuracy": baseline["accuracy"],
                                              "images_per_s": baseline["sequences_per_s"]}
        plot_operating_points(points, os.path.join(args.output_dir, "accuracy_throughput.png"),
                              title=f"{Path(args.model).name} on LRA {task}", baseline=base, unit="sequences/s",
                              series=f"MIMOFormer ({config.attention_type}) grids")
    return report


if __name__ == "__main__":
    main()
