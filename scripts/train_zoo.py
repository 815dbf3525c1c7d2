#!/usr/bin/env python
"""Train the zoo's CIFAR-10 checkpoints: a resumable queue of the four WRN-16-2 runs, one at a time.

The runs are scripts/train_mimoconv.py with the fast preset (chosen by scripts/recipe_study.py on the
45k/5k train/validation split; docs/mimoconv_recipe_study.md) and the same number of epochs each (an
epoch of capacity N passes over the training images N times, the paper's fairness rule). 5,000
training images are held out for validation; the test split is never read here.

A finished run (its `hub/` folder exists) is skipped, an interrupted one continues from its last epoch
checkpoint with `--resume latest`, so the same command picks the campaign up wherever a session left it.

Examples:
    python scripts/train_zoo.py --runs-dir ../runs/zoo                           # the whole queue
    python scripts/train_zoo.py --runs-dir ../runs/zoo --only wrn16-2-baseline   # one run
    python scripts/train_zoo.py --runs-dir ../runs/zoo --print-commands          # what it would run

Run it from the repository root (the default --data-dir is relative to it). The Hub-ready folders come
out in `<runs-dir>/<name>/hub`; scripts/reproduce_zoo.sh turns them into zoo/<name>, evaluates them on
the test split and writes their deploy results. On this project's 2-core CPU (2 threads) an epoch took
about 5-7 minutes for the baseline and more for MIMOConv (the training log's `train_seconds` per epoch).
"""

import argparse
import shlex
import sys
from pathlib import Path

from mimo_hf.training.run_queue import QueuedRun, run_queue
from mimo_hf.training.zoo_runs import TRUNK, ZOO_RUNS

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", required=True, help="where the run folders (checkpoints, logs, hub/) go; keep it outside git")
    p.add_argument("--data-dir", default="../shared/data/cifar10",
                   help="CIFAR-10 parquet folder (default: ../shared/data/cifar10, the project's JPEG copy, relative to the repository root)")
    p.add_argument("--epochs", type=int, default=30, help="epochs of every run (default: 30)")
    p.add_argument("--only", nargs="+", choices=list(ZOO_RUNS), default=None, help="run only these, in this order")
    p.add_argument("--num-threads", type=int, default=2, help="torch threads of each run (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    p.add_argument("--print-commands", action="store_true", help="print each run's command (with --resume where it applies) and exit")
    return p.parse_args(argv)


def queued_runs(args):
    runs = []
    for name in args.only or list(ZOO_RUNS):
        flags = ["--data-dir", args.data_dir, *TRUNK, *ZOO_RUNS[name], "--epochs", str(args.epochs),
                 "--num-threads", str(args.num_threads), "--seed", str(args.seed)]
        runs.append(QueuedRun(name, str(ROOT / "scripts" / "train_mimoconv.py"), flags, str(Path(args.runs_dir) / name)))
    return runs


def main(argv=None):
    args = parse_args(argv)
    runs = queued_runs(args)
    if args.print_commands:
        for run in runs:
            state = "finished" if run.finished else ("resumes" if run.has_checkpoint() else "starts")
            print(f"# {run.name} ({state})\n{shlex.join(run.command())}")
        return runs
    run_queue(runs)
    return runs


if __name__ == "__main__":
    sys.exit(main() and 0)
