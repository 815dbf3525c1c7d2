#!/usr/bin/env python
"""How long a schedule of one recipe would need to reach a target accuracy, from finished runs of that recipe
with different schedule lengths: a power law in the final error, error = a * epochs ** -b, fitted in log-log
(mimo_hf/evaluation/projection.py). An extrapolation to plan by, not a result; it answers "what more training
would be needed" for a model that missed its target after its planned schedule.

Give each finished run as EPOCHS:ACCURACY (its planned epochs and its final validation accuracy in %, never a
test accuracy: the number guides the next run's length). The target is a validation accuracy in % too.

Examples:
    # static N = 4 of the zoo: the 60- and 360-epoch runs' final validation accuracies at k = 4
    # (docs/mimoconv_recipe_study.md) and its target, the baseline's 90.24% validation less 5 points
    python scripts/project_schedule.py --run 60:76.36 360:80.76 --target 85.24 --minutes-per-epoch 1.15
"""

import argparse
import json
import math

from mimo_hf.evaluation.projection import epochs_for_accuracy, schedule_power_law


def _run(text):
    try:
        epochs, accuracy = text.split(":")
        return int(epochs), float(accuracy) / 100.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected EPOCHS:ACCURACY (e.g. 360:80.76), got {text!r}") from None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", nargs="+", type=_run, required=True, metavar="EPOCHS:ACCURACY",
                   help="finished runs of one recipe: planned epochs and final validation accuracy in %%")
    p.add_argument("--target", type=float, required=True, help="validation accuracy to reach, in %%")
    p.add_argument("--minutes-per-epoch", type=float, default=None,
                   help="training minutes per epoch on your machine: also print the hours the schedule would take")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    a, b = schedule_power_law(args.run)
    epochs = epochs_for_accuracy(args.run, args.target / 100.0)
    row = {"runs": [{"epochs": e, "accuracy": round(100 * acc, 2)} for e, acc in sorted(args.run)],
           "exponent": round(b, 4), "target": args.target,
           "epochs_needed": None if math.isinf(epochs) else round(epochs)}
    if args.minutes_per_epoch is not None and row["epochs_needed"] is not None:
        row["hours_needed"] = round(epochs * args.minutes_per_epoch / 60, 1)
    print(json.dumps(row))
    if row["epochs_needed"] is None:
        print(f"the error does not fall with longer schedules (exponent {b:.3f}): more epochs of this recipe "
              "are not projected to reach the target")
    else:
        print(f"error ~ {a:.3f} * epochs^-{b:.3f}: {args.target:.2f}% after about {row['epochs_needed']} epochs"
              + (f" (~{row['hours_needed']} h at {args.minutes_per_epoch} min per epoch)" if "hours_needed" in row else ""))
    return row


if __name__ == "__main__":
    main()
