"""Where a training run in progress is heading, read off the runs that finished a schedule of the same recipe.

An extrapolation, not a measurement. Under the triangular learning rate of `--preset fast` most of a run's
gain comes while the rate anneals to zero, so its accuracy halfway through says little about its end. A
finished run of the same recipe shows what share of its validation error was left at the end compared with
the same fraction of its own schedule; applying that share to the run in progress gives one projection per
finished run, and their spread is the range to expect:

    error_ratio  = error(finished run, at its end) / error(finished run, at fraction f of its schedule)
    projection   = 1 - error(run in progress, now, at fraction f of its schedule) * error_ratio

Errors are taken as the median over the last `window` validated epochs up to each point (a single epoch's
validation accuracy moves by about half a point).
"""

import math
import statistics


def _error_at(epochs, accuracies, epoch, window):
    """1 - the median accuracy (0..1) over the last `window` validated epochs up to `epoch`."""
    upto = [accuracy for e, accuracy in zip(epochs, accuracies) if e <= epoch]
    if not upto:
        raise ValueError(f"no validated epoch at or before epoch {epoch}")
    return 1.0 - statistics.median(upto[-window:])


def error_ratio(epochs, accuracies, fraction, planned_epochs, window=5):
    """error at the end / error at `fraction` of the schedule, for a finished series (epochs, accuracies 0..1)
    whose schedule had `planned_epochs` epochs."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    if not epochs or max(epochs) < planned_epochs:
        raise ValueError(f"the reference run has not finished its {planned_epochs} epochs")
    at = max(1, round(fraction * planned_epochs))
    now = _error_at(epochs, accuracies, at, window)
    end = _error_at(epochs, accuracies, planned_epochs, window)
    return end / now


def project_final_accuracy(epochs, accuracies, planned_epochs, references, window=5):
    """{reference label: (error ratio, projected accuracy 0..1 at the end of the schedule)} for a series in
    progress (epochs, accuracies 0..1; `planned_epochs` in its schedule). references: {label: (epochs,
    accuracies, planned epochs)} of finished series of the same recipe."""
    if not epochs:
        raise ValueError("the run in progress has no validated epoch yet")
    done = max(epochs)
    if done >= planned_epochs:
        raise ValueError(f"the run has finished its {planned_epochs} epochs: nothing to project")
    fraction = done / planned_epochs
    error_now = _error_at(epochs, accuracies, done, window)
    projected = {}
    for label, (ref_epochs, ref_accuracies, ref_planned) in references.items():
        ratio = error_ratio(ref_epochs, ref_accuracies, fraction, ref_planned, window)
        projected[label] = (ratio, 1.0 - error_now * ratio)
    return projected


def schedule_power_law(runs):
    """(a, b) of the power law error = a * epochs ** -b fitted (least squares in log-log) to finished runs of one
    recipe that differ in schedule length. runs: [(planned epochs, final accuracy 0..1)], at least two lengths."""
    points = sorted(runs)
    if len({epochs for epochs, _ in points}) < 2:
        raise ValueError("need finished runs of at least two schedule lengths")
    for epochs, accuracy in points:
        if epochs <= 0 or not 0 <= accuracy < 1:
            raise ValueError(f"a run needs epochs > 0 and an accuracy in [0, 1), got ({epochs}, {accuracy})")
    xs = [math.log(epochs) for epochs, _ in points]
    ys = [math.log(1.0 - accuracy) for _, accuracy in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    return math.exp(mean_y - slope * mean_x), -slope


def epochs_for_accuracy(runs, target):
    """Schedule length at which the power law of `schedule_power_law(runs)` reaches accuracy `target` (0..1);
    math.inf when the error does not fall with longer schedules."""
    if not 0 < target < 1:
        raise ValueError(f"target must lie strictly between 0 and 1, got {target}")
    a, b = schedule_power_law(runs)
    if b <= 0:
        return math.inf
    return (a / (1.0 - target)) ** (1.0 / b)
