"""Projections of a run in progress from finished runs of the same schedule (an extrapolation to plan by)."""

import pytest

from mimo_hf.evaluation.projection import error_ratio, project_final_accuracy


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
