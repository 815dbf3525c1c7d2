"""scripts/evaluate_mimoformer.py --check-subset 0: no subset score (null), not a crash inside `evaluate`."""

import importlib.util
import json
from pathlib import Path

import pytest
from tiny_checkpoints import lra_image_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _main():
    spec = importlib.util.spec_from_file_location("evaluate_mimoformer", ROOT / "scripts" / "evaluate_mimoformer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.skipif(not (ROOT.parent / "shared" / "data" / "cifar10").is_dir(), reason="needs ../shared/data/cifar10")
def test_check_subset_zero_records_no_subset_accuracy(tmp_path):
    model = lra_image_checkpoint(tmp_path / "image-mimoformer", attention_type="mimo_att")
    common = ["--model", str(model), "--max-eval-samples", "8", "--batch-size", "8",
              "--no-throughput", "--output-dir", str(tmp_path / "eval")]
    report = _main()(common + ["--check-subset", "0"])
    assert report["subset_size"] == 0
    assert all(r["subset_accuracy"] is None and r["count"] == 8 for r in report["results"])
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["results"] == report["results"]
    with pytest.raises(SystemExit, match="--check-subset must be >= 0"):
        _main()(common + ["--check-subset", "-1"])


def test_throughput_only_without_earlier_results_says_what_to_run(tmp_path):
    model = lra_image_checkpoint(tmp_path / "image-mimoformer", attention_type="mimo_att")
    with pytest.raises(SystemExit, match=r"--throughput-only merges .* evaluate without --throughput-only first"):
        _main()(["--model", str(model), "--throughput-only", "--output-dir", str(tmp_path / "nothing-here")])
