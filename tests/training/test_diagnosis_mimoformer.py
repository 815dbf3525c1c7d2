"""scripts/diagnose_mimoformer.py (mimo_hf.training.diagnosis_mimoformer): grid rows, table, plot, resume, gradient norms."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

from mimo_hf.training.diagnosis_mimoformer import markdown_table, parse_size, run_name
from mimo_hf.data.listops import write_listops_dataset

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--hidden-size", "16", "--num-attention-heads", "2", "--intermediate-size", "16", "--num-hidden-layers", "1",
        "--batch-size", "8", "--max-length", "24", "--sizes", "8:8", "--no-progress"]


def _script():
    spec = importlib.util.spec_from_file_location("diagnose_mimoformer", ROOT / "scripts" / "diagnose_mimoformer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def listops_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("listops")
    write_listops_dataset(str(out), train_size=64, validation_size=16, test_size=8, min_length=5, max_length=24,
                          seed=1, progress=False)
    return out


def test_sizes_are_parsed_and_bad_ones_refused():
    assert parse_size("64:256") == (64, 256)
    with pytest.raises(ValueError, match="HEAD_DIM:FEATURES"):
        parse_size("64x256")
    with pytest.raises(ValueError, match=">= 1"):
        parse_size("0:8")


def test_grid_writes_rows_table_and_plot_and_skips_finished_runs(listops_dir, tmp_path):
    out = tmp_path / "diag"
    argv = ["grid", "--data-dir", str(listops_dir), "--output-dir", str(out), "--models", "performer", "att-4x4",
            "--max-steps", "8", "--eval-every", "4", *TINY]
    rows = _script().main(argv)
    assert sorted(r["name"] for r in rows) == sorted(run_name(m, (8, 8), 1e-3) for m in ("performer", "att-4x4"))
    for r in rows:
        assert [p["step"] for p in r["curve"]] == [4, 8]
        assert all(0.0 <= p["val_accuracy"] <= 1.0 and math.isfinite(p["train_loss"]) for p in r["curve"])
        assert r["val_count"] == 16 and r["cpu_seconds"] > 0
    att = next(r for r in rows if r["model"] == "att-4x4")
    assert att["grid"] == "4x4" and att["grid_warmup_steps"] == 1  # the training loop's default: 1/8 of the steps at 2x2
    lines = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [r["name"] for r in lines] == ["performer_h8-r8_lr0.001", "att-4x4_h8-r8_lr0.001"]  # Performer first
    table = (out / "table.md").read_text()
    assert table.startswith(markdown_table(rows))
    baselines = json.loads((out / "baselines.json").read_text())
    assert baselines["validation_examples"] == 16 and 0.0 < baselines["majority"] <= baselines["operator_only"] <= 1.0
    assert f"top-level operator only {100 * baselines['operator_only']:.1f}%" in table
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A second call finds both runs finished and trains nothing (their files are left as they were).
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    again = _script().main(argv)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == stamps
    assert sorted(r["name"] for r in again) == sorted(r["name"] for r in rows)


def test_table_compares_each_model_with_the_performer_of_its_size():
    def row(model, acc, head=16):
        return {"model": model, "hidden_size": 64, "head_dim": head, "num_random_features": 4 * head, "lr": 1e-3,
                "max_steps": 10, "final_val_accuracy": acc, "best_val_accuracy": acc, "best_step": 10,
                "final_train_loss": 2.0, "first_step_val_accuracy_above": None, "cpu_seconds": 60.0,
                "sequences_per_cpu_s": 5.0}

    table = markdown_table([row("att-2x2", 0.30), row("performer", 0.34), row("performer", 0.20, head=32)])
    line = next(s for s in table.splitlines() if s.startswith("| att-2x2"))
    assert "| -4.0 |" in line and "| never |  |" in line


def test_gradients_command_reports_every_parameter(listops_dir, tmp_path):
    norms = _script().main(["gradients", "--data-dir", str(listops_dir), "--output-dir", str(tmp_path),
                            "--models", "performer", "att-mlp-2x2", "--gradient-batches", "2", *TINY])
    per_model = norms["8:8"]
    assert set(per_model) == {"performer", "att-mlp-2x2"}
    for result in per_model.values():
        assert all(math.isfinite(v) and v > 0 for v in result["grad_norms"].values())
    assert "| attn. query+key |" in (tmp_path / "grad_norms.md").read_text()


def test_missing_data_folder_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="generate_listops"):
        _script().main(["grid", "--data-dir", str(tmp_path / "nothing"), "--output-dir", str(tmp_path)])
