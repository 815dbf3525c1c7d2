"""Publishing goes through one mocked HfApi.create_commit: right files, no pickles, right revision."""

from pathlib import Path
from unittest.mock import create_autospec

import pytest
from huggingface_hub import HfApi

from mimo_hf.publishing import files_to_publish, load_push_config, publish

ROOT = Path(__file__).resolve().parents[1]


def _folder(tmp_path):
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md",
                 "modeling_mimoconv.py", "eval_results.json", "accuracy_throughput.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_publish_makes_one_commit_with_the_hub_files(tmp_path):
    api = create_autospec(HfApi, instance=True)
    publish(api, "org/model", _folder(tmp_path), revision="v1")
    api.create_repo.assert_called_once_with("org/model", private=False, exist_ok=True)
    kwargs = api.create_commit.call_args.kwargs
    assert kwargs["repo_id"] == "org/model" and kwargs["revision"] == "v1"
    paths = sorted(op.path_in_repo for op in kwargs["operations"])
    assert paths == ["README.md", "accuracy_throughput.png", "config.json", "eval_results.json",
                     "model.safetensors", "modeling_mimoconv.py", "preprocessor_config.json"]


def test_pickles_and_incomplete_folders_are_refused(tmp_path):
    folder = _folder(tmp_path)
    (folder / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="pytorch_model.bin"):
        files_to_publish(folder)
    (folder / "pytorch_model.bin").unlink()
    (folder / "README.md").unlink()
    with pytest.raises(FileNotFoundError, match="README.md"):
        files_to_publish(folder)


@pytest.mark.parametrize("path", sorted((ROOT / "push_configs").glob("*.yaml")), ids=lambda p: p.name)
def test_push_configs_point_at_publishable_zoo_folders(path):
    config = load_push_config(path)
    assert "/" in config["repo_id"]
    assert files_to_publish(ROOT / config["folder"])
