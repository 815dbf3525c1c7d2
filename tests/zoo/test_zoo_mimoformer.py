"""Every committed MIMOFormer zoo checkpoint still scores what its results file says.

The accuracies in eval_results.json were measured over the whole test split on this CPU by the zoo's
queue; the file also holds the accuracy on the first `subset_size` test examples, which this test
recomputes on the CPU from the checkpoint folder, with the package's code
(tests/hub/test_hub_loading.py shows that the Hub folder's remote code gives the same logits). The
test's thread count and batch split can differ from the evaluation's, and reductions then round
differently, so a prediction whose top two logits are nearly tied may flip: up to 2 of the 256
examples may differ.
"""

import json
from pathlib import Path

import pytest
from accelerate import Accelerator
from torch.utils.data import DataLoader

from mimo_hf.data.batches import TensorDict
from mimo_hf.data.lra import load_lra_task
from mimo_hf.evaluation.accuracy import accuracy_at_points, load_classifier
from mimo_hf.evaluation.metrics import load_metric
from mimo_hf.settings import parse_grid

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "zoo"
FOLDERS = sorted(p.parent for p in ZOO.glob("*/eval_results.json")
                 if json.loads((p.parent / "config.json").read_text())["model_type"] == "mimoformer")
MAX_FLIPS = 2


def test_mimoformer_zoo_has_every_task_and_variant():
    names = {p.name for p in FOLDERS}
    for task in ("listops-cpu", "text1k"):
        for variant in ("performer", "mimoformer-att", "mimoformer-attmlp"):
            assert f"{variant}-{task}" in names


PRESETS = {"data/listops-cpu": "cpu", "data/listops-lra": "lra"}  # how scripts/train_zoo.py makes them (generate_listops.py --preset)


@pytest.fixture(scope="module")
def listops_data(tmp_path_factory):
    """ListOps regenerated with the preset the zoo was trained on (deterministic given the seed)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_listops", ROOT / "scripts" / "generate_listops.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    cache = {}

    def get(folder):
        data_dir = json.loads((folder / "training_args.json").read_text())["data_dir"]
        if data_dir not in cache:
            out = tmp_path_factory.mktemp(Path(data_dir).name)
            script.main(["--preset", PRESETS[data_dir], "--output-dir", str(out), "--workers", "2", "--no-progress"])
            cache[data_dir] = str(out)
        return cache[data_dir]

    return get


def _data_dir(folder, task, listops_data):
    if task == "listops":
        return listops_data(folder)
    return None  # image / text: ../shared/data defaults


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_checkpoint_reproduces_stored_subset_accuracy(folder, listops_data):
    stored = json.loads((folder / "eval_results.json").read_text())
    task = stored["task"]
    if task in ("image", "text") and not (ROOT.parent / "shared" / "data").is_dir():
        pytest.skip("needs ../shared/data")
    model, _ = load_classifier(str(folder), auto_class="AutoModelForSequenceClassification")  # the package's code
    data = load_lra_task(task, "test", data_dir=_data_dir(folder, task, listops_data),
                         max_length=model.config.max_position_embeddings, max_examples=stored["subset_size"])
    assert len(data) == stored["subset_size"]
    loader = DataLoader(TensorDict(data.tensors()), batch_size=64)
    grids = [parse_grid(row["grid"]) for row in stored["results"]]
    scores = accuracy_at_points(model, loader, grids, Accelerator(cpu=True), load_metric("accuracy"))
    for row, grid in zip(stored["results"], grids):
        flips = abs(scores[grid]["accuracy"] - row["subset_accuracy"]) * stored["subset_size"]
        assert round(flips) <= MAX_FLIPS, (folder.name, grid, scores[grid], row)


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_checkpoint_metadata_is_consistent(folder):
    stored = json.loads((folder / "eval_results.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    args = json.loads((folder / "training_args.json").read_text())
    assert stored["attention_type"] == config["attention_type"] == args["attention_type"]
    assert stored["grid"] == f"{config['mimo_m']}x{config['mimo_n']}"
    assert stored["task"] == args["task"] and stored["split"] == "test"
    assert all(row["count"] == stored["num_examples"] for row in stored["results"])
    assert (folder / "tokenizer.json").is_file() == (stored["task"] in ("listops", "text"))
