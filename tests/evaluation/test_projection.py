"""Projections of a run in progress from finished runs of the same schedule (an extrapolation to plan by)."""

import json
import math
import runpy
from pathlib import Path

import pytest

from mimo_hf.evaluation.projection import epochs_for_accuracy, error_ratio, project_final_accuracy, schedule_power_law


def _curve(planned, upto=None, rate=0.9):
    """Epochs 1..upto of a run whose error falls by `rate` per tenth of its schedule of `planned` epochs."""
    epochs = list(range(1, (upto or planned) + 1))
    return epochs, [1 - 0.5 * rate ** (10 * e / planned) for e in epochs]


def test_error_ratio_is_the_end_error_over_the_error_at_the_fraction():
    epochs, accuracies = _curve(10)
    assert error_ratio(epochs, accuracies, 0.5, 10, window=1) == pytest.approx(0.9 ** 5)
    # The median over a window: epochs 3..5 at fraction 0.5, epochs 8..10 at the end.
    expected = (1 - accuracies[8]) / (1 - accuracies[3])
    assert error_ratio(epochs, accuracies, 0.5, 10, window=3) == pytest.approx(expected)


def test_a_run_that_follows_a_reference_scaled_in_time_is_projected_to_the_reference_end():
    ref_epochs, ref_accuracies = _curve(10)
    epochs, accuracies = _curve(40, upto=20)  # the same curve over a 4x longer schedule, half-way through
    projected = project_final_accuracy(epochs, accuracies, 40, {"ref": (ref_epochs, ref_accuracies, 10)}, window=1)
    ratio, accuracy = projected["ref"]
    assert ratio == pytest.approx(0.9 ** 5)
    assert accuracy == pytest.approx(ref_accuracies[-1])
    # A run doing worse than the reference now is projected lower, by the same share of its error.
    worse = [a - 0.1 for a in accuracies]
    _, lower = project_final_accuracy(epochs, worse, 40, {"ref": (ref_epochs, ref_accuracies, 10)}, window=1)["ref"]
    assert lower == pytest.approx(1 - (1 - worse[-1]) * 0.9 ** 5)


def test_projection_refuses_what_it_cannot_extrapolate():
    epochs, accuracies = _curve(10)
    with pytest.raises(ValueError, match="finished its 10 epochs"):
        project_final_accuracy(epochs, accuracies, 10, {"ref": (epochs, accuracies, 10)})
    with pytest.raises(ValueError, match="no validated epoch yet"):
        project_final_accuracy([], [], 10, {"ref": (epochs, accuracies, 10)})
    with pytest.raises(ValueError, match="has not finished its 20 epochs"):
        error_ratio(epochs, accuracies, 0.5, 20)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        error_ratio(epochs, accuracies, 1.0, 10)


def test_schedule_power_law_recovers_the_law_its_runs_follow():
    runs = [(e, 1 - 0.5 * e ** -0.2) for e in (30, 60, 240)]
    a, b = schedule_power_law(runs)
    assert (a, b) == (pytest.approx(0.5), pytest.approx(0.2))
    # 1 - 0.5 * E ** -0.2 = 0.9  <=>  E = 5 ** 5
    assert epochs_for_accuracy(runs, 0.9) == pytest.approx(5 ** 5)
    # Two runs: the law through both points, whatever their order.
    two = [(360, 0.8076), (60, 0.7636)]
    a, b = schedule_power_law(two)
    assert a * 60 ** -b == pytest.approx(1 - 0.7636) and a * 360 ** -b == pytest.approx(1 - 0.8076)


def test_schedule_power_law_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="two schedule lengths"):
        schedule_power_law([(60, 0.8), (60, 0.81)])
    with pytest.raises(ValueError, match="accuracy in"):
        schedule_power_law([(60, 0.8), (120, 1.0)])
    with pytest.raises(ValueError, match="target"):
        epochs_for_accuracy([(60, 0.8), (120, 0.85)], 1.0)
    # A longer schedule that did no better: no length is projected to reach a higher target.
    assert epochs_for_accuracy([(60, 0.8), (120, 0.79)], 0.9) == math.inf


def test_project_schedule_script_prints_the_epochs_needed(capsys):
    main = runpy.run_path(str(Path(__file__).resolve().parents[2] / "scripts" / "project_schedule.py"))["main"]

    row = main(["--run", "60:76.36", "360:80.76", "--target", "85.24", "--minutes-per-epoch", "1.0"])
    expected = epochs_for_accuracy([(60, 0.7636), (360, 0.8076)], 0.8524)
    assert row["epochs_needed"] == round(expected) and row["hours_needed"] == pytest.approx(expected / 60, abs=0.05)
    assert json.loads(capsys.readouterr().out.splitlines()[0]) == row
    with pytest.raises(SystemExit):
        main(["--run", "60-76", "--target", "85"])
