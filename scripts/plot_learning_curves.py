#!/usr/bin/env python
"""Plot the validation learning curves of the zoo's CIFAR-10 runs: runs in progress from the history in
their committed checkpoint (campaign/<name>/, with the end of the campaign's schedule marked,
mimo_hf/training/zoo_runs.py), and every run's zoo/<name>/metrics_history.json (the model the zoo holds now;
for a run in progress, the model it will replace, labelled "(zoo, E epochs)"). For each run in progress it
also prints where its validation accuracy is heading at the end of its schedule: the share of validation
error that the zoo's finished runs of the same learning-rate schedule had left at their end, compared with
the same fraction of their schedules, applied to the run's error now (mimo_hf/evaluation/projection.py; an
extrapolation to plan by, not a result), once the run has completed a tenth of its schedule.

Validation accuracy is on the 5,000 training images held out of the project's CIFAR-10 JPEG copy (quality
75; not comparable with published CIFAR-10 numbers), with the exported weights (the weight average of
--preset fast), at every operating point each run validates.

Examples:
    python scripts/plot_learning_curves.py                                    # docs/mimoconv_learning_curves.png
    python scripts/plot_learning_curves.py --only wrn16-2-baseline mimoconv16-2-n4-dynamic --output curves.png
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

from mimo_hf.evaluation.plots import learning_curve_series, plot_learning_curves
from mimo_hf.evaluation.projection import project_final_accuracy
from mimo_hf.training.run_queue import carried_history
from mimo_hf.training.zoo_runs import ZOO_EPOCHS, ZOO_RUNS

ROOT = Path(__file__).resolve().parents[1]
# Before a tenth of a triangular schedule the learning rate is still warming up, and the finished runs'
# error ratios from that point spread over several points of accuracy: a range too wide to plan by.
MIN_FRACTION_TO_PROJECT = 0.1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zoo-dir", default=str(ROOT / "zoo"), help="finished runs (default: the repository's zoo/)")
    p.add_argument("--carry-dir", default=str(ROOT / "campaign"),
                   help="runs in progress (default: the repository's campaign/, see campaign/README.md)")
    p.add_argument("--only", nargs="+", choices=list(ZOO_RUNS), default=list(ZOO_RUNS), metavar="NAME",
                   help=f"runs to draw (default: all of {', '.join(ZOO_RUNS)})")
    p.add_argument("--output", default=str(ROOT / "docs" / "mimoconv_learning_curves.png"),
                   help="PNG to write (default: docs/mimoconv_learning_curves.png)")
    p.add_argument("--target", type=float, default=90.0,
                   help="draw this accuracy (%%) as a reference line (default: 90, the baseline's target; 0: none)")
    return p.parse_args(argv)


def _schedule(recipe):
    """The learning-rate schedule's shape of a recorded recipe: what makes two runs' curves comparable."""
    return recipe.get("lr_schedule"), recipe.get("pct_start")


def run_histories(name, zoo_dir, carry_dir):
    """[(label, history, its planned epochs, where it came from, its schedule's shape)] of one run: the run in
    progress if campaign/ holds it (carry_dir None: not looked for), and the model its zoo folder holds (with
    that folder's own schedule); [] if neither exists."""
    found = []
    carried = None if carry_dir is None else carried_history(Path(carry_dir) / name)
    if carried is not None:
        recipe_file = Path(carry_dir) / name / "run_recipe.json"
        recipe = json.loads(recipe_file.read_text()).get("recipe", {}) if recipe_file.is_file() else {}
        found.append((name, carried, ZOO_EPOCHS[name], f"{Path(carry_dir).name}/{name} (in progress)", _schedule(recipe)))
    folder = Path(zoo_dir) / name
    if (folder / "metrics_history.json").is_file():
        recipe = json.loads((folder / "training_args.json").read_text())
        epochs = recipe.get("epochs")
        label = f"{name} (zoo, {epochs} epochs)" if found else name
        found.append((label, json.loads((folder / "metrics_history.json").read_text()), epochs,
                      f"{Path(zoo_dir).name}/{name}", _schedule(recipe)))
    return found


def print_projections(name, history, planned, schedule, finished):
    """Print where each validated operating point of a run in progress is heading (module docstring).
    finished: [(label, history, planned epochs, schedule)] of the zoo's runs that completed their schedule."""
    references = {}
    for label, ref_history, ref_planned, ref_schedule in finished:
        if ref_schedule != schedule:
            continue
        for series, epochs, accuracies in learning_curve_series(label, ref_history):
            references[series] = (epochs, [a / 100 for a in accuracies], ref_planned)
    if not references:
        print(f"  no finished run with the same learning-rate schedule {schedule}: no projection")
        return
    for series, epochs, accuracies in learning_curve_series(name, history):
        if max(epochs) >= planned:
            continue
        if max(epochs) < MIN_FRACTION_TO_PROJECT * planned:
            print(f"  {series.split()[-1]}: too early to project ({max(epochs) / planned:.0%} of the schedule; "
                  f"projections start at {MIN_FRACTION_TO_PROJECT:.0%})")
            continue
        projected = project_final_accuracy(epochs, [a / 100 for a in accuracies], planned, references)
        values = sorted(100 * accuracy for _, accuracy in projected.values())
        each = ", ".join(f"{label} {ratio:.2f}" for label, (ratio, _) in projected.items())
        print(f"  {series.split()[-1]} projected at epoch {planned}: {values[0]:.1f}-{values[-1]:.1f}% validation "
              f"(the error ratio end / {max(epochs) / planned:.0%} of the schedule of each finished run: {each})")


def main(argv=None):
    args = parse_args(argv)
    runs, planned = [], {}
    # Every zoo run that completed its own schedule is a reference for the projections, drawn or not.
    finished = [(label, history, epochs, schedule)
                for name in ZOO_RUNS for label, history, epochs, source, schedule in run_histories(name, args.zoo_dir, None)
                if history and epochs and history[-1].get("epoch", 0) >= epochs]
    for name in args.only:
        found = run_histories(name, args.zoo_dir, args.carry_dir)
        if not found:
            print(f"{name}: no zoo folder and no carried checkpoint; left out", file=sys.stderr)
        for label, history, epochs, source, schedule in found:
            runs.append((label, history))
            planned[label] = epochs
            last = history[-1]
            campaign = "" if epochs == ZOO_EPOCHS[name] else f" (its own schedule; the campaign plans {ZOO_EPOCHS[name]})"
            curves = ", ".join(f"{series.split()[-1]} {acc[-1]:.2f}%" for series, _, acc in learning_curve_series(label, history))
            seconds = [r["train_seconds"] for r in history if r.get("train_seconds")]
            timing = f"; median {statistics.median(seconds) / 60:.1f} training minutes per epoch" if seconds else ""
            print(f"{name}: {source}, epoch {last.get('epoch')} of {epochs}{campaign}; last validation accuracy {curves}{timing}")
            if source.endswith("(in progress)"):  # the carried run; the zoo model beside it has finished
                print_projections(name, history, epochs, schedule, finished)
    if not runs:
        sys.exit("nothing to plot: no zoo folders nor carried checkpoints for the runs asked for")
    lines = [(f"target {args.target:g}%", args.target)] if args.target else []
    plot_learning_curves(runs, args.output, planned=planned, reference_lines=lines,
                         title="Zoo runs on CIFAR-10 (JPEG copy), WRN-16-2 trunk: validation accuracy per epoch")
    print(f"wrote {args.output}")
    return runs


if __name__ == "__main__":
    main()
