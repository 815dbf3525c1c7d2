#!/usr/bin/env python
"""The short-schedule recipe study for MIMOConv: short proxy runs on the 45k/5k train/validation split.

Each study run is `scripts/train_mimoconv.py` with the zoo's WRN-16-2 trunk, one recipe variant and
`--epochs` epochs (fairness rule: an epoch of capacity N passes over the data N times). Runs execute
one at a time and are resumable: a finished run (its `hub/` records reach the last epoch) is skipped, an interrupted
one continues from its last epoch checkpoint (`--resume latest`). Only validation accuracy is read
(5,000 training images held out); the test split is never touched.

Examples:
    python scripts/recipe_study.py --runs-dir ../runs/recipe-study                    # run every variant
    python scripts/recipe_study.py --runs-dir ../runs/recipe-study --only base-fast   # one of them
    python scripts/recipe_study.py --runs-dir ../runs/recipe-study --summarize --output docs/recipe_study.json
    python scripts/recipe_study.py --table docs/recipe_study.json      # the committed table, no runs needed

--summarize reads each finished run's metrics_history.json and prints the study table (markdown), and
with --output also writes it as JSON rows, merged into the rows that file already holds (a variant run again
of the same length on the same machine replaces its row; rows of other variants, lengths (--epochs) and machines
stay); --table prints the table of such a JSON file (the one in
docs/mimoconv_recipe_study.md and the README).
"""

import argparse
import json
from pathlib import Path

from mimo_hf.training.run_queue import QueuedRun, run_queue
from mimo_hf.training.zoo_runs import BASELINE, TRUNK

ROOT = Path(__file__).resolve().parents[1]

N4 = ["--num-superpositions", "4", "--binding", "hrr", "--activation", "prelu"]

# name -> (what it tests, flags). Each variant changes one thing against "fast" (or is a preset itself).
VARIANTS = {
    "base-paper": ("baseline, paper preset (one-cycle, mixup 1, wd 1e-5)", BASELINE + ["--preset", "paper"]),
    "base-fast": ("baseline, fast preset", BASELINE + ["--preset", "fast"]),
    "base-fast-no-ls": ("baseline, fast without label smoothing", BASELINE + ["--preset", "fast", "--label-smoothing", "0"]),
    "base-fast-no-ema": ("baseline, fast without weight EMA (and BN momentum 0.1)",
                         BASELINE + ["--preset", "fast", "--ema-decay", "0", "--bn-momentum", "0.1"]),
    "base-fast-wd1e-5": ("baseline, fast with the paper's weight decay 1e-5", BASELINE + ["--preset", "fast", "--weight-decay", "1e-5"]),
    "n4-s2-paper": ("MIMOConv N=4, 32-channel stem, paper preset", N4 + ["--initial-width", "2", "--preset", "paper"]),
    "n4-s2-fast": ("MIMOConv N=4, 32-channel stem, fast preset", N4 + ["--initial-width", "2", "--preset", "fast"]),
    "n4-s4-fast": ("MIMOConv N=4, 64-channel stem (the paper's), fast preset", N4 + ["--initial-width", "4", "--preset", "fast"]),
    # bf16 autocast (accelerate's --mixed-precision bf16): about 1.6x faster training steps on CPUs with
    # AVX-512 BF16 or AMX (README, "Training throughput"); these rows check that it costs no accuracy.
    "base-fast-bf16": ("baseline, fast preset, bf16 autocast", BASELINE + ["--preset", "fast", "--mixed-precision", "bf16"]),
    "n4-s2-fast-bf16": ("MIMOConv N=4, 32-channel stem, fast preset, bf16 autocast",
                        N4 + ["--initial-width", "2", "--preset", "fast", "--mixed-precision", "bf16"]),
    # ReLU in place of PReLU (the plain WRN's activation): int8 graph runtimes fuse ReLU into the convolutions,
    # PReLU not as well (README, "Deploy"); does superposition need PReLU's negative slope?
    "n4-s2-fast-relu-bf16": ("MIMOConv N=4, 32-channel stem, ReLU instead of PReLU, fast preset, bf16 autocast",
                             N4[:-1] + ["relu", "--initial-width", "2", "--preset", "fast", "--mixed-precision", "bf16"]),
    # Against n4-s2-fast-relu-bf16: the paper's 64-channel stem (more dimensions for the bound items), and
    # no isometry regulariser (ISONet's, made for nets without ReLU).
    "n4-s4-fast-relu-bf16": ("MIMOConv N=4, 64-channel stem, ReLU, fast preset, bf16 autocast",
                             N4[:-1] + ["relu", "--initial-width", "4", "--preset", "fast", "--mixed-precision", "bf16"]),
    "n4-s2-fast-relu-noiso-bf16": ("MIMOConv N=4, 32-channel stem, ReLU, no isometry regulariser, fast preset, bf16 autocast",
                                   N4[:-1] + ["relu", "--initial-width", "2", "--isometry-coef", "0", "--preset", "fast",
                                              "--mixed-precision", "bf16"]),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", default=None, help="where the study's run folders go (keep outside git); required "
                                                     "unless --table")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "cifar10"),
                   help="CIFAR-10 parquet folder (default: ../shared/data/cifar10, the project's JPEG copy)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per proxy run (default: 3)")
    p.add_argument("--only", nargs="+", choices=sorted(VARIANTS), default=None, help="run only these variants, in this order")
    p.add_argument("--num-threads", type=int, default=2, help="torch threads of each run (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    p.add_argument("--summarize", action="store_true", help="print the table of the finished runs instead of training")
    p.add_argument("--output", default=None, help="with --summarize: also write the rows as JSON")
    p.add_argument("--table", default=None, metavar="JSON", help="print the table of rows written by --summarize --output")
    args = p.parse_args(argv)
    if args.runs_dir is None and args.table is None:
        p.error("--runs-dir is required (unless --table)")
    return args


def queued_run(name, args):
    """The train_mimoconv.py run of one study variant."""
    flags = ["--data-dir", args.data_dir, *TRUNK, *VARIANTS[name][1], "--epochs", str(args.epochs),
             "--seed", str(args.seed), "--num-threads", str(args.num_threads)]
    return QueuedRun(name, str(ROOT / "scripts" / "train_mimoconv.py"), flags, str(Path(args.runs_dir) / name))


def run_all(args):
    run_queue([queued_run(name, args) for name in args.only or list(VARIANTS)])


def summarize(args):
    """The rows of the finished runs in --runs-dir; with --output, merged into the rows already in that file (a
    variant run on this machine for as many epochs replaces that row, every other row is kept), ordered by
    epochs, then VARIANTS order."""
    from mimo_hf.evaluation.throughput import machine_description

    machine = f"{machine_description()['cpu']}, {args.num_threads} threads"
    rows = []
    for name, (what, _) in VARIANTS.items():
        history_file = Path(args.runs_dir) / name / "hub" / "metrics_history.json"
        if not history_file.is_file():
            continue
        history = json.loads(history_file.read_text())
        training_args = json.loads((history_file.parent / "training_args.json").read_text())
        final = history[-1]
        points = sorted(int(key.split("@k")[1]) for key in final if key.startswith("val_accuracy@k"))
        rows.append({"variant": name, "what": what, "epochs": len(history), "capacity": training_args["num_superpositions"],
                     "initial_width": training_args["initial_width"], "preset": training_args["preset"],
                     **{f"val_accuracy@k{k}": final[f"val_accuracy@k{k}"] for k in points},
                     **{f"raw_val_accuracy@k{k}": final[f"raw_val_accuracy@k{k}"] for k in points if f"raw_val_accuracy@k{k}" in final},
                     "val_curve": [r[f"val_accuracy@k{max(points)}"] for r in history],
                     "train_minutes": round(sum(r.get("train_seconds", 0) for r in history) / 60, 1),
                     "machine": machine,
                     "command": " ".join(["python", "scripts/train_mimoconv.py", *TRUNK, *VARIANTS[name][1],
                                          "--epochs", str(len(history)), "--data-dir", "../shared/data/cifar10",
                                          "--output-dir", f"runs/{name}"])})
    if args.output and Path(args.output).is_file():
        fresh = {(row["variant"], row["machine"], row["epochs"]) for row in rows}
        kept = [row for row in json.loads(Path(args.output).read_text())
                if (row["variant"], row.get("machine"), row["epochs"]) not in fresh]
        order = list(VARIANTS)
        rows = sorted(kept + rows, key=lambda row: (row["epochs"], order.index(row["variant"])))  # stable: earlier machines first
    print_table(rows)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(rows, indent=2) + "\n")
        print(f"rows written to {args.output}")
    return rows


def print_table(rows):
    print("| variant | what it tests | N | epochs | validation accuracy (k = N) | raw weights | per epoch (val, k = N) | training minutes | trained on |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        k = r["capacity"]
        raw = r.get(f"raw_val_accuracy@k{k}")
        curve = " / ".join(f"{100 * v:.1f}" for v in r["val_curve"])
        print(f"| `{r['variant']}` | {r['what']} | {k} | {r['epochs']} | {100 * r[f'val_accuracy@k{k}']:.2f}% | "
              f"{'-' if raw is None else f'{100 * raw:.2f}%'} | {curve} | {r['train_minutes']} | {r.get('machine', '-')} |")


def main(argv=None):
    args = parse_args(argv)
    if args.table:
        rows = json.loads(Path(args.table).read_text())
        print_table(rows)
        return rows
    if args.summarize:
        return summarize(args)
    run_all(args)


if __name__ == "__main__":
    main()
