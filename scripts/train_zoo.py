#!/usr/bin/env python
"""Train the zoo: a resumable queue of its runs, one at a time (the four WRN-16-2 CIFAR-10 runs, then the
six MIMOFormer text runs).

The CIFAR-10 runs are scripts/train_mimoconv.py with the fast preset (chosen by scripts/recipe_study.py on the
45k/5k train/validation split; docs/mimoconv_recipe_study.md) under bf16 autocast, in the order the baseline
(120 epochs), static N=4 (360), static N=2 (240), dynamic N=4 (360): the second campaign (an epoch of capacity
N passes over the training images N times, the paper's fairness rule; mimo_hf/training/zoo_runs.py). 5,000
training images are held out for validation; the test split is never read here. When the baseline finishes,
the MIMOConv folders already in the zoo are evaluated again beside it (and measured again on ONNX Runtime and
OpenVINO where they have deploy results); a MIMOConv run finishing after a baseline with deploy results gets
its own.

The text runs are scripts/train_mimoformer.py at one size per task (docs/mimoformer_diagnosis.md section
4): the Performer, MIMOFormer att. (4x4 after a 2x2 warm-up) and att.+MLP (2x2), 6,000 steps of 32 on
ListOps-CPU (length 500; generated into --listops-dir first if it is missing) and on byte-level IMDB cut to
1,000 bytes ("text1k"); each keeps its best checkpoint on the validation split.

A finished run (its `hub/` records reach the end of its schedule, or its committed zoo/<name> folder records
the same recipe's whole schedule) is skipped, an interrupted one continues from its last epoch or step checkpoint
with `--resume latest`, so the same command picks the campaign up wherever a session left it. While a run
trains, its newest checkpoint is copied into campaign/<name> (`--carry-dir`); commit that folder when a session
ends: on a machine without the runs folder, the queue continues the run from the committed copy (it is deleted
when the run finishes and zoo/<name> holds the model).

Examples:
    python scripts/train_zoo.py --runs-dir ../runs/zoo                           # the whole queue
    python scripts/train_zoo.py --runs-dir ../runs/zoo --only wrn16-2-baseline   # one run
    python scripts/train_zoo.py --runs-dir ../runs/zoo --print-commands          # what it would run
    python scripts/train_zoo.py --runs-dir ../runs/zoo --carry-now               # copy the newest checkpoints now
    python scripts/train_zoo.py --runs-dir ../runs/zoo --only performer-listops-cpu mimoformer-attmlp-listops-cpu

Run it from the repository root (the default --data-dir is relative to it). The Hub-ready folders come
out in `<runs-dir>/<name>/hub`; when a run finishes, the queue copies it into zoo/<name> (checkpoint
files only; the previous folder is moved to `<runs-dir>/<name>/zoo-before`) and evaluates it on the
test split (eval_results.json) before the next run starts, so commit zoo/<name> when it appears.
ONNX exports and deploy results of every folder: scripts/reproduce_zoo.sh. On this project's 2-core CPUs (2 threads)
a bf16 epoch takes a median 0.8 minutes for the baseline and 1.1 for static MIMOConv (N = 2 or 4) where the CPU
has bf16 instructions, and about 1.8 for dynamic N = 4 (the training log's `train_seconds` per epoch;
`python scripts/plot_learning_curves.py` prints the medians; docs/mimoconv_recipe_study.md, "The campaign");
a text run 35-50 minutes on ListOps-CPU and about 1.6 hours on Text-1k (the finished runs' `minutes`
in metrics_history.json, e.g. 50 for performer-listops-cpu and 96 for performer-text1k).
"""

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from mimo_hf.training.recipes import MIMOConvRecipe, MIMOFormerRecipe
from mimo_hf.training.run_queue import QueuedRun, run_queue
from mimo_hf.training.zoo_runs import TEXT_RUNS, TEXT_TASKS, TRUNK, ZOO_EPOCHS, ZOO_RUNS

ROOT = Path(__file__).resolve().parents[1]
# --print-commands: what the queue does with each run (QueuedRun.status)
STATUS_TEXT = {"finished": "finished", "in zoo": "finished", "refused": "holds a finished run of another recipe: the queue refuses it",
               "carried": "resumes from the carried checkpoint", "resumes": "resumes", "starts": "starts"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", required=True, help="where the run folders (checkpoints, logs, hub/) go; keep it outside git")
    p.add_argument("--data-dir", default="../shared/data/cifar10",
                   help="CIFAR-10 parquet folder (default: ../shared/data/cifar10, the project's JPEG copy, relative to the repository root)")
    p.add_argument("--listops-dir", default="data/listops-cpu",
                   help="ListOps-CPU folder of the text runs, generated there if missing (default: data/listops-cpu, git-ignored)")
    p.add_argument("--imdb-dir", default="../shared/data/imdb",
                   help="IMDB parquet folder of the text1k runs (default: ../shared/data/imdb)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of every CIFAR-10 run (default: each run's own, mimo_hf/training/zoo_runs.py ZOO_EPOCHS: "
                        + ", ".join(f"{epochs} for {name}" for name, epochs in ZOO_EPOCHS.items()) + ")")
    p.add_argument("--only", nargs="+", choices=[*ZOO_RUNS, *TEXT_RUNS], default=None, metavar="NAME",
                   help=f"run only these, in this order; names: {', '.join([*ZOO_RUNS, *TEXT_RUNS])}")
    p.add_argument("--num-threads", type=int, default=2, help="torch threads of each run (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    p.add_argument("--print-commands", action="store_true", help="print each run's command (with --resume where it applies) and exit")
    p.add_argument("--zoo-dir", default=str(ROOT / "zoo"),
                   help="where finished runs go (<zoo-dir>/<name>) and where the queue looks for runs finished on "
                        "another machine (default: the repository's zoo/)")
    p.add_argument("--carry-dir", default=str(ROOT / "campaign"),
                   help="where the newest checkpoint of each run in progress is copied while it trains "
                        "(<carry-dir>/<name>; default: the repository's campaign/, committed at the end of a session "
                        "so that another machine continues the run)")
    p.add_argument("--no-carry", action="store_true", help="do not copy checkpoints into --carry-dir nor read them from it")
    p.add_argument("--carry-now", action="store_true",
                   help="copy each run's newest checkpoint into --carry-dir and exit (for a queue started without "
                        "carrying, e.g. from another shell before a commit)")
    p.add_argument("--no-export", action="store_true",
                   help="leave finished runs in --runs-dir; by default each is copied into zoo/<name> (the previous "
                        "folder moved to <runs-dir>/<name>/zoo-before) and evaluated on the test split before the next "
                        "run starts, so its results are timed on an otherwise idle machine")
    return p.parse_args(argv)


def queued_runs(args):
    runs = []
    for name in args.only or [*ZOO_RUNS, *TEXT_RUNS]:
        common = ["--num-threads", str(args.num_threads), "--seed", str(args.seed)]
        if name in ZOO_RUNS:
            script = "train_mimoconv.py"
            flags = ["--data-dir", args.data_dir, *TRUNK, *ZOO_RUNS[name], "--epochs",
                     str(ZOO_EPOCHS[name] if args.epochs is None else args.epochs),
                     *common]
        else:
            script = "train_mimoformer.py"
            flags = [f.format(listops_dir=args.listops_dir, imdb_dir=args.imdb_dir) for f in TEXT_RUNS[name]] + common
        runs.append(QueuedRun(name, str(ROOT / "scripts" / script), flags, str(Path(args.runs_dir) / name),
                              recipe_class=MIMOConvRecipe if name in ZOO_RUNS else MIMOFormerRecipe,
                              zoo_dir=str(Path(args.zoo_dir) / name),
                              carry_dir=None if args.no_carry else str(Path(args.carry_dir) / name)))
    return runs


def zoo_commands(run, data_dir, threads):
    """The commands that turn a finished run into its zoo folder with its test-split results, from the repo
    root (relative paths: the results record the evaluation command as a user would type it), timed on
    `threads` threads (the runs' --num-threads)."""
    python, zoo = sys.executable, os.path.relpath(run.zoo_dir, ROOT)
    zoo_root = os.path.dirname(zoo)
    commands = [[python, "scripts/export_hub_folder.py", str(Path(run.output_dir) / "hub"), "--checkpoint-only",
                 "--output", zoo]]
    if run.name in ZOO_RUNS:
        baseline = "none" if run.name == "wrn16-2-baseline" else os.path.join(zoo_root, "wrn16-2-baseline")
        commands.append(mimoconv_evaluation(zoo, baseline, data_dir, threads))
        commands.append([python, "scripts/export_hub_folder.py", zoo, "--widget-images"])
        baseline_zoo = os.path.join(zoo_root, "wrn16-2-baseline")
        if run.name == "wrn16-2-baseline":
            # A new baseline changes what every MIMOConv's results quote (its accuracy, the speed-ups): the
            # MIMOConv folders already in the zoo are evaluated again beside it, and those with deploy results
            # (which quote the baseline's exported models too) are measured again beside its new export.
            others = [name for name in ZOO_RUNS if name != run.name and (ROOT / zoo_root / name / "eval_results.json").is_file()]
            commands += [mimoconv_evaluation(os.path.join(zoo_root, name), zoo, data_dir, threads) for name in others]
            deployed = [os.path.join(zoo_root, name) for name in others
                        if (ROOT / zoo_root / name / "deploy_results.json").is_file()]
            if deployed:
                commands += deploy_commands(zoo, None, data_dir, threads)
                for folder in deployed:
                    commands += deploy_commands(folder, zoo, data_dir, threads)
        elif (ROOT / baseline_zoo / "deploy_results.json").is_file():
            # The baseline has deploy results: so does the new MIMOConv (the card's Deploy section), measured
            # beside the baseline's export (made again here: onnx/ folders are not committed).
            commands += deploy_commands(baseline_zoo, None, data_dir, threads, measure=False)
            commands += deploy_commands(zoo, baseline_zoo, data_dir, threads)
    else:
        task = next(t for t in TEXT_TASKS if run.name.endswith(f"-{t}"))
        # Each MIMOFormer is scored and timed beside the Performer of its task (trained before it in the queue).
        # 25 timing rounds: with the default 7, single ratios moved by 20% between runs on the 2-core machine.
        baseline = [] if run.name == f"performer-{task}" else ["--baseline", os.path.join(zoo_root, f"performer-{task}")]
        commands.append([python, "scripts/evaluate_mimoformer.py", "--model", zoo, *baseline, "--threads", str(threads),
                         "--repeats", "25", "--warmup", "3", "--output-dir", zoo, "--results-file", "eval_results.json"])
    return commands


def deploy_commands(folder, baseline, data_dir, threads, measure=True):
    """ONNX fp32 + int8 export of a zoo folder into its onnx/ (git-ignored), then (measure) the accuracy and
    images/s of every runtime x precision x operating point into deploy_results.json, beside `baseline` (a
    zoo folder whose onnx/ exists by then) or alone (None): the deploy steps of scripts/reproduce_zoo.sh."""
    python = sys.executable
    commands = [[python, "scripts/export_onnx.py", "--model", folder, "--output", os.path.join(folder, "onnx"), "--int8",
                 "--calibration-data-dir", data_dir, "--overwrite"]]
    if measure:
        compare = (["--baseline", "none"] if baseline is None else
                   ["--baseline", baseline, "--baseline-onnx", os.path.join(baseline, "onnx")])
        commands.append([python, "scripts/evaluate_mimoconv.py", "--model", folder, "--onnx", os.path.join(folder, "onnx"),
                         *compare, "--data-dir", data_dir, "--threads", str(threads), "--output-dir", folder,
                         "--results-file", "deploy_results.json"])
    return commands


def mimoconv_evaluation(folder, baseline, data_dir, threads):
    return [sys.executable, "scripts/evaluate_mimoconv.py", "--model", folder, "--baseline", baseline, "--data-dir", data_dir,
            "--threads", str(threads), "--output-dir", folder, "--results-file", "eval_results.json"]


def export_to_zoo(run, data_dir, threads):
    """on_finished of the queue: move the old zoo folder aside, copy the run in, evaluate it."""
    import shutil

    old = Path(run.zoo_dir)
    if old.exists():
        aside = Path(run.output_dir) / "zoo-before"
        if aside.exists():
            shutil.rmtree(aside)
        shutil.move(str(old), str(aside))
        print(f"[{run.name}] previous {old} moved to {aside}", flush=True)
    for command in zoo_commands(run, data_dir, threads):
        print(f"[{run.name}] {shlex.join(command)}", flush=True)
        subprocess.run(command, check=True, cwd=ROOT)


def generate_listops_if_missing(args, runs):
    """The ListOps-CPU runs read generated data: make it first (the generator is seeded, so it is the same data)."""
    if any(run.status() not in ("finished", "in zoo") and "listops" in run.arguments for run in runs) and \
            not (Path(args.listops_dir) / "train-00000-of-00001.parquet").is_file():
        command = [sys.executable, str(ROOT / "scripts" / "generate_listops.py"), "--preset", "cpu",
                   "--output-dir", args.listops_dir]
        print(f"[listops-cpu] generating the data: {shlex.join(command)}", flush=True)
        subprocess.run(command, check=True)


def main(argv=None):
    args = parse_args(argv)
    runs = queued_runs(args)
    if args.print_commands:
        for run in runs:
            print(f"# {run.name} ({STATUS_TEXT[run.status()]})\n{shlex.join(run.command())}")
        return runs
    if args.carry_now:
        for run in runs:
            if run.carry_dir and (carried := run.carry()) is not None:
                print(f"[{run.name}] carried {carried}")
        return runs
    generate_listops_if_missing(args, runs)
    run_queue(runs, on_finished=None if args.no_export else (lambda run: export_to_zoo(run, args.data_dir, args.num_threads)))
    return runs


if __name__ == "__main__":
    sys.exit(main() and 0)
