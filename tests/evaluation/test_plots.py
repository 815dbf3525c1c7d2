"""The pictures: learning curves from run histories, in progress (a carried checkpoint) or finished."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from mimo_hf.evaluation.plots import learning_curve_series, plot_learning_curves
from mimo_hf.training.portable_checkpoint import to_portable
from mimo_hf.training.run_queue import carried_history
from mimo_hf.training.zoo_runs import ZOO_EPOCHS, ZOO_RUNS

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("plot_learning_curves", ROOT / "scripts" / "plot_learning_curves.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HISTORY = [{"epoch": 1, "val_accuracy@k1": 0.5, "val_accuracy@k4": 0.25, "raw_val_accuracy@k1": 0.4},
           {"epoch": 2, "val_accuracy@k1": 0.625, "val_accuracy@k4": 0.375}]


def test_learning_curve_series_has_one_curve_per_validated_operating_point():
    assert learning_curve_series("m", HISTORY) == [("m k=1", [1, 2], [50.0, 62.5]), ("m k=4", [1, 2], [25.0, 37.5])]
    assert learning_curve_series("m", []) == []


def test_plot_learning_curves_writes_a_png(tmp_path):
    out = plot_learning_curves([("m", HISTORY)], tmp_path / "c.png", planned={"m": 5}, reference_lines=[("t", 90)])
    assert Path(out).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _carried(folder, history):
    """A carried checkpoint as the queue commits it (mimo_hf/training/portable_checkpoint.py)."""
    checkpoint = folder.parent / f"{folder.name}-machine" / "epoch_2"
    checkpoint.mkdir(parents=True)
    torch.save({"base_lrs": [0.1]}, checkpoint / "custom_checkpoint_0.pkl")  # the scheduler comes first
    torch.save({"epoch": 2, "step": 0, "prev_grad_norm": 1.0, "best": None, "history": history},
               checkpoint / "custom_checkpoint_1.pkl")
    to_portable(checkpoint, folder / "epoch_2")


def test_carried_history_reads_the_training_state_of_the_newest_checkpoint(tmp_path):
    assert carried_history(tmp_path / "none") is None
    _carried(tmp_path / "run", HISTORY)
    assert carried_history(tmp_path / "run") == HISTORY
    (tmp_path / "bad" / "epoch_1").mkdir(parents=True)
    with pytest.raises(ValueError, match="no training state"):
        carried_history(tmp_path / "bad")


def test_the_script_draws_runs_in_progress_and_the_zoo_models_of_the_others(tmp_path, capsys):
    zoo, campaign = tmp_path / "zoo", tmp_path / "campaign"
    for name, epochs in [("wrn16-2-baseline", 30), ("mimoconv16-2-n4", 2), ("mimoconv16-2-n4-dynamic", 2)]:
        (zoo / name).mkdir(parents=True)
        (zoo / name / "training_args.json").write_text(json.dumps({"epochs": epochs}))
        (zoo / name / "metrics_history.json").write_text(json.dumps([{"epoch": 1, "val_accuracy@k1": 0.3, "train_seconds": 90.0}]))
    _carried(campaign / "mimoconv16-2-n4-dynamic", HISTORY)
    runs = _script().main(["--zoo-dir", str(zoo), "--carry-dir", str(campaign), "--output", str(tmp_path / "c.png")])
    captured = capsys.readouterr()
    # The in-progress run is drawn beside the zoo model it will replace; the others are the zoo's models.
    finished = [{"epoch": 1, "val_accuracy@k1": 0.3, "train_seconds": 90.0}]
    in_queue_order = [name for name in ZOO_RUNS if name != "mimoconv16-2-n2"]
    drawn = {"wrn16-2-baseline": [("wrn16-2-baseline", finished)], "mimoconv16-2-n4": [("mimoconv16-2-n4", finished)],
             "mimoconv16-2-n4-dynamic": [("mimoconv16-2-n4-dynamic", HISTORY),
                                         ("mimoconv16-2-n4-dynamic (zoo, 2 epochs)", finished)]}
    assert runs == [run for name in in_queue_order for run in drawn[name]]  # the queue's order
    assert "last validation accuracy k=1 30.00%; median 1.5 training minutes per epoch" in captured.out
    planned = ZOO_EPOCHS["mimoconv16-2-n4"]
    assert f"mimoconv16-2-n4: zoo/mimoconv16-2-n4, epoch 1 of 2 (its own schedule; the campaign plans {planned})" in captured.out
    planned = ZOO_EPOCHS["mimoconv16-2-n4-dynamic"]
    assert f"mimoconv16-2-n4-dynamic: campaign/mimoconv16-2-n4-dynamic (in progress), epoch 2 of {planned};" in captured.out
    assert "mimoconv16-2-n4-dynamic: zoo/mimoconv16-2-n4-dynamic, epoch 1 of 2 (its own schedule" in captured.out
    assert "k=1 62.50%, k=4 37.50%" in captured.out
    assert "mimoconv16-2-n2: no zoo folder and no carried checkpoint; left out" in captured.err
    # No zoo run has finished its schedule here, so nothing to project from.
    assert "no finished run with the same learning-rate schedule" in captured.out
    assert (tmp_path / "c.png").is_file()
    with pytest.raises(SystemExit, match="nothing to plot"):
        _script().main(["--zoo-dir", str(tmp_path / "empty"), "--carry-dir", str(campaign), "--only", "mimoconv16-2-n2",
                        "--output", str(tmp_path / "d.png")])


def test_the_script_projects_a_run_in_progress_from_the_finished_runs_of_its_schedule(tmp_path, capsys):
    zoo, campaign = tmp_path / "zoo", tmp_path / "campaign"
    schedule = {"lr_schedule": "triangular", "pct_start": 0.25}
    finished = [{"epoch": e, "val_accuracy@k1": a} for e, a in [(1, 0.5), (2, 0.6), (3, 0.7), (4, 0.8)]]
    for name, recipe in [("wrn16-2-baseline", schedule), ("mimoconv16-2-n2", {**schedule, "pct_start": 0.5})]:
        (zoo / name).mkdir(parents=True)
        (zoo / name / "training_args.json").write_text(json.dumps({"epochs": 4, **recipe}))
        (zoo / name / "metrics_history.json").write_text(json.dumps(finished))
    planned = ZOO_EPOCHS["mimoconv16-2-n4"]
    in_progress = [{"epoch": e, "val_accuracy@k4": 0.4} for e in range(1, planned // 2 + 1)]
    _carried(campaign / "mimoconv16-2-n4", in_progress)
    (campaign / "mimoconv16-2-n4" / "run_recipe.json").write_text(json.dumps({"recipe": {"epochs": planned, **schedule}}))
    _script().main(["--zoo-dir", str(zoo), "--carry-dir", str(campaign), "--only", "mimoconv16-2-n4",
                    "--output", str(tmp_path / "c.png")])
    out = capsys.readouterr().out
    # Half-way (epoch 2 of 4) the baseline's error was 0.45 (median of 0.5, 0.6), at its end 0.35 (median of the
    # 4 epochs, the window being 5): the run's error now, 0.6, is projected to fall by the same share.
    ratio = 0.35 / 0.45
    expected = 100 * (1 - 0.6 * ratio)
    assert f"k=4 projected at epoch {planned}: {expected:.1f}-{expected:.1f}% validation" in out
    assert f"wrn16-2-baseline k=1 {ratio:.2f}" in out
    assert "mimoconv16-2-n2" not in out.split("projected", 1)[1]  # another schedule's shape: not a reference
    # Too early in its schedule, a run gets no projection.
    early = tmp_path / "early"
    _carried(early / "mimoconv16-2-n4", in_progress[:2])
    (early / "mimoconv16-2-n4" / "run_recipe.json").write_text(json.dumps({"recipe": {"epochs": planned, **schedule}}))
    _script().main(["--zoo-dir", str(zoo), "--carry-dir", str(early), "--only", "mimoconv16-2-n4",
                    "--output", str(tmp_path / "c.png")])
    out = capsys.readouterr().out
    assert "projected" not in out and f"k=4: too early to project ({2 / planned:.0%} of the schedule" in out
