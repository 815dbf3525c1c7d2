"""Zoo model cards are generated from the results files and say exactly what those files say."""

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from mimo_hf.model_card import build_model_card

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.parent for p in (ROOT / "zoo").glob("*/eval_results.json"))


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_committed_card_is_current_and_matches_results(folder, tmp_path):
    committed = (folder / "README.md").read_text()
    assert committed.strip() == str(build_model_card(folder)).strip(), "regenerate with scripts/write_model_card.py"

    card = ModelCard.load(folder / "README.md")
    assert card.data.pipeline_tag == "image-classification" and card.data.library_name == "transformers"
    results = json.loads((folder / "eval_results.json").read_text())
    by_config = {r.metric_config: r.metric_value for r in card.data.eval_results}
    assert len(by_config) == len(results["results"])
    for row in results["results"]:
        k = row["operating_point"]
        assert by_config[f"k={k}"] == round(100 * row["accuracy"], 2)
        assert f"| {k} | {100 * row['accuracy']:.2f}% |" in committed
    assert "JPEG" in committed


def test_card_needs_results(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="eval_results.json"):
        build_model_card(tmp_path)
