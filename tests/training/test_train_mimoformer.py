"""The MIMOFormer LRA training loop end to end on tiny data: resume, warm-up grid, dual encoder, export."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mimo_hf.data.listops import write_listops_dataset
from mimo_hf.data.synthetic import synthetic_retrieval
from mimo_hf.training.mimoformer import one_cycle_linear
from mimo_hf.training.recipes import MIMOFormerRecipe

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train_mimoformer.py"
TINY_MODEL = ["--hidden-size", "16", "--num-attention-heads", "2", "--head-dim", "8", "--intermediate-size", "16",
              "--num-random-features", "8", "--batch-size", "8", "--eval-batch-size", "16", "--warmup-steps", "2",
              "--num-threads", "1"]


def _env():
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")


def _train(args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def listops_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("listops")
    write_listops_dataset(str(out), train_size=64, validation_size=16, test_size=16, min_length=10, max_length=60,
                          seed=3, progress=False)
    return out


def _listops(listops_dir, out, *extra):
    return ["--task", "listops", "--data-dir", str(listops_dir), "--max-length", "64", *TINY_MODEL,
            "--output-dir", str(out), *extra]


def test_schedule_warms_up_then_anneals_linearly():
    factors = [one_cycle_linear(s, 4, 12) for s in range(12)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4:] == [1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8]


def test_recipe_defaults_follow_the_task_and_grid():
    args = MIMOFormerRecipe.from_flags(["--task", "listops", "--output-dir", "x"])
    assert (args.batch_size, args.max_steps, args.warmup_steps) == (64, 20000, 1000)
    assert args.grid_warmup_steps == 20000 // 8 and args.warmup_grid == "2x2"  # 4x4 default grid warms up at 2x2
    args = MIMOFormerRecipe.from_flags(["--attention-type", "performer", "--output-dir", "x"])
    assert (args.mimo_m, args.mimo_n, args.grid_warmup_steps) == (1, 1, 0)
    with pytest.raises(ValueError, match="must be below --max-steps"):
        MIMOFormerRecipe.from_flags(["--max-steps", "10", "--warmup-steps", "10", "--output-dir", "x"])


def test_stopped_run_resumes_exactly_and_exports_the_best_model(listops_dir, tmp_path):
    common = ["--attention-type", "mimo_att", "--mimo-m", "2", "--mimo-n", "2", "--max-steps", "10", "--eval-every", "4",
              "--report-process-weights"]
    full = _train(_listops(listops_dir, tmp_path / "full", *common))
    assert full.returncode == 0, full.stderr[-4000:]
    part = _train(_listops(listops_dir, tmp_path / "part", *common, "--stop-after-steps", "4"))
    assert part.returncode == 0, part.stderr[-4000:]
    assert "continue with --resume latest" in part.stdout
    resumed = _train(_listops(listops_dir, tmp_path / "part", *common, "--resume", "latest"))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "resumed from" in resumed.stdout

    # Final weights (mid-pass resume: step 4 of 8 batches per pass) and the exported best model agree bitwise.
    assert (tmp_path / "full" / "weights_rank0.sha256").read_text() == (tmp_path / "part" / "weights_rank0.sha256").read_text()
    expected = load_file(tmp_path / "full" / "hub" / "model.safetensors")
    got = load_file(tmp_path / "part" / "hub" / "model.safetensors")
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    history = json.loads((tmp_path / "full" / "hub" / "metrics_history.json").read_text())
    strip = lambda h: [{k: v for k, v in r.items() if k != "minutes"} for r in h]  # noqa: E731
    assert strip(history) == strip(json.loads((tmp_path / "part" / "hub" / "metrics_history.json").read_text()))
    assert [r["step"] for r in history] == [4, 8, 10]
    assert all(r["val_count@2x2"] == 16 for r in history)

    # The Hub folder is the best validation step's model and loads as a Hub user would.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path / "full" / "hub"
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    assert model.config.trained_grids == [[2, 2]] and tokenizer.pad_token_id == model.config.pad_token_id == 0
    args = json.loads((folder / "training_args.json").read_text())
    assert args["task"] == "listops" and not os.path.isabs(args["output_dir"])


def test_grid_warmup_trains_at_the_small_grid_first(listops_dir, tmp_path):
    run = _train(_listops(listops_dir, tmp_path / "warm", "--attention-type", "mimo_att_mlp", "--mimo-m", "4", "--mimo-n",
                          "2", "--max-steps", "4", "--grid-warmup-steps", "2", "--warmup-grid", "2x2", "--eval-every", "2",
                          "--eval-grids", "2x2", "1x1"))
    assert run.returncode == 0, run.stderr[-4000:]
    config = json.loads((tmp_path / "warm" / "hub" / "config.json").read_text())
    assert config["trained_grids"] == [[2, 2], [4, 2]]
    record = json.loads((tmp_path / "warm" / "hub" / "metrics_history.json").read_text())[-1]
    assert {"val_accuracy@1x1", "val_accuracy@2x2", "val_accuracy@4x2"} <= set(record)


def test_retrieval_dual_encoder_trains_on_prepared_pairs(tmp_path):
    from datasets import Dataset

    def text(ids, mask):
        return [bytes((row[m.bool()] - 1).tolist()).decode("ascii") for row, m in zip(ids, mask)]

    data_dir = tmp_path / "pairs"
    data_dir.mkdir()
    for split, n, seed in (("train", 32, 0), ("validation", 8, 1), ("test", 8, 2)):
        pairs = synthetic_retrieval(n, 48, seed=seed)
        Dataset.from_dict({"text1": text(pairs.input_ids, pairs.attention_mask),
                           "text2": text(pairs.input_ids_2, pairs.attention_mask_2),
                           "label": pairs.labels.tolist()}).to_parquet(str(data_dir / f"{split}-00000-of-00001.parquet"))
    run = _train(["--task", "retrieval", "--data-dir", str(data_dir), "--max-length", "48", *TINY_MODEL,
                  "--attention-type", "mimo_att", "--mimo-m", "2", "--mimo-n", "2", "--max-steps", "3", "--eval-every", "3",
                  "--output-dir", str(tmp_path / "run")])
    assert run.returncode == 0, run.stderr[-4000:]
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "hub", trust_remote_code=True)
    assert model.config.dual_encoder and model.classifier.mlpblock[0].in_features == 4 * 16
    assert json.loads((tmp_path / "run" / "hub" / "metrics_history.json").read_text())[-1]["val_count@2x2"] == 8
