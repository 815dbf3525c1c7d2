"""Every committed MIMOConv zoo checkpoint still scores what its results file says, on the real test split."""

import json
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from mimo_hf.data.batches import TensorDict
from mimo_hf.data.images import load_image_dataset
from mimo_hf.evaluation.accuracy import accuracy_at_points, load_classifier
from mimo_hf.evaluation.metrics import load_metric

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "zoo"
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
CHECKPOINTS = sorted(p.parent for p in ZOO.glob("*/eval_results.json")
                     if json.loads((p.parent / "config.json").read_text())["model_type"] == "mimoconv")


def test_zoo_is_not_empty():
    assert CHECKPOINTS, "no zoo/<model>/eval_results.json found"


@pytest.fixture(scope="module")
def cifar10_test():
    if not CIFAR.is_dir():
        pytest.skip("needs ../shared/data/cifar10")
    return load_image_dataset("uoft-cs/cifar10", data_dir=str(CIFAR), split="test")


@pytest.mark.parametrize("folder", CHECKPOINTS, ids=[p.name for p in CHECKPOINTS])
def test_checkpoint_reproduces_stored_accuracy(folder, cifar10_test):
    stored = json.loads((folder / "eval_results.json").read_text())
    assert stored["split"] == "test" and stored["num_examples"] == 10000
    for name in ("model.safetensors", "config.json", "preprocessor_config.json"):
        assert (folder / name).is_file(), name
    model, inputs = load_classifier(str(folder))  # the checkpoint folder, with the package's code
    accelerator = Accelerator(cpu=True)
    # The first `subset_size` test images, whose accuracy the evaluation recorded beside the whole split's
    # (evaluate_mimoconv.py --check-subset): the same pass over fewer images, so CI stays short.
    size = stored["subset_size"]
    assert size >= 1000
    loader = DataLoader(TensorDict(cifar10_test.tensors()).head(size), batch_size=500)
    points = [row["operating_point"] for row in stored["results"]]
    assert points == model.config.operating_points  # every operating point the model supports was stored
    old_threads = torch.get_num_threads()
    try:
        scores = accuracy_at_points(model, loader, points, accelerator, load_metric("accuracy"), inputs)
    finally:
        torch.set_num_threads(old_threads)
    for row in stored["results"]:
        k = row["operating_point"]
        assert scores[k]["count"] == size
        assert abs(100 * scores[k]["accuracy"] - 100 * row["subset_accuracy"]) <= 0.1, (k, scores[k], row)


@pytest.mark.parametrize("folder", CHECKPOINTS, ids=[p.name for p in CHECKPOINTS])
def test_results_quote_the_baseline_folder_as_it_is_now(folder):
    """A MIMOConv's results (and the card built from them) quote its baseline's test accuracy: the one the
    baseline folder records now, not that of an earlier baseline the folder has since been retrained from."""
    for results_file in ("eval_results.json", "deploy_results.json"):
        if not (folder / results_file).is_file():
            continue
        baseline = json.loads((folder / results_file).read_text()).get("baseline")
        if not baseline:
            continue
        own = json.loads((ROOT / baseline["model"] / "eval_results.json").read_text())
        (row,) = own["results"]
        assert baseline["accuracy"] == row["accuracy"] and baseline["count"] == row["count"], (results_file, baseline)
