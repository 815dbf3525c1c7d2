"""The one export function: checkpoint folders in, Hub folders (model code, auto_map, card) out, and back."""

import json
import shutil
from pathlib import Path

import pytest

from mimo_hf.hub.export import (
    AUTO_MAPS,
    CODE_ROOT,
    MODEL_CODE_FILES,
    checkpoint_files,
    export_folder,
    generated_files,
    save_hub_folder,
)

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "zoo"
CONVERSION = ZOO / "wrn16-2-baseline"
TEXT = ZOO / "performer-listops-cpu"


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.mark.parametrize("source", [CONVERSION, TEXT], ids=lambda p: p.name)
def test_export_adds_code_and_auto_map_and_the_checkpoint_export_takes_them_away(source, tmp_path):
    hub = export_folder(source, tmp_path / "hub", card="# card\n")
    model_type = json.loads((source / "config.json").read_text())["model_type"]
    assert generated_files(hub) == sorted(["README.md", *MODEL_CODE_FILES[model_type]])
    assert json.loads((hub / "config.json").read_text())["auto_map"] == AUTO_MAPS[model_type]
    assert (hub / "README.md").read_text() == "# card\n"
    # Back to a checkpoint folder: byte for byte the zoo folder.
    back = export_folder(hub, tmp_path / "checkpoint", code=False, replace_generated=True)
    assert _files(back) == _files(source)


def test_stale_code_copies_are_replaced_only_when_asked(tmp_path):
    """A Hub-ready folder (a training run's, or an old download) carries copies of the model code: the
    export replaces them with the package's, but only when told to (a checkpoint folder holds none)."""
    run = export_folder(TEXT, tmp_path / "run")
    (run / "favor.py").write_text("# stale\n")
    with pytest.raises(ValueError, match=r"holds \[.*'favor.py'.*\]: a checkpoint folder has no card or model code"):
        export_folder(run, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    fresh = export_folder(run, tmp_path / "fresh", replace_generated=True)
    assert (fresh / "favor.py").read_bytes() == (CODE_ROOT / "mimoformer" / "favor.py").read_bytes()


def test_export_never_overwrites_unless_told(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        export_folder(CONVERSION, target)
    assert (target / "notes.txt").read_text() == "keep me"
    export_folder(CONVERSION, target, overwrite=True)  # a training run replacing its own export
    assert not (target / "notes.txt").exists() and (target / "model.safetensors").is_file()
    with pytest.raises(ValueError, match="is its own source"):
        export_folder(target, target, overwrite=True, replace_generated=True)
    shutil.rmtree(target)
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        export_folder(tmp_path, tmp_path / "x")


def test_checkpoint_files_skip_generated_hidden_and_cache_files(tmp_path):
    # The zoo folder's own files only (a local export may have added a git-ignored onnx/ beside them).
    source = tmp_path / "source"
    source.mkdir()
    for path in CONVERSION.iterdir():
        if path.is_file():
            shutil.copy2(path, source / path.name)
    folder = export_folder(source, tmp_path / "hub", card="# card\n")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "x.json").write_text("{}")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model_k1.onnx").write_bytes(b"graph")  # sub-folders are checkpoint files too
    assert checkpoint_files(folder) == sorted([*(p.name for p in source.iterdir()), "onnx/model_k1.onnx"])


def test_save_hub_folder_writes_either_kind(tmp_path):
    from transformers import AutoModelForImageClassification

    from mimo_hf import MIMOConvConfig, MIMOConvForImageClassification

    model = MIMOConvForImageClassification(MIMOConvConfig(num_superpositions=2, depth=10, width=1, initial_width=1,
                                                          num_labels=3)).eval()
    hub = save_hub_folder(model, tmp_path / "hub")
    checkpoint = save_hub_folder(model, tmp_path / "checkpoint", code=False)
    assert sorted(_files(hub)) == sorted([*_files(checkpoint), *MODEL_CODE_FILES["mimoconv"]])
    assert "auto_map" not in json.loads((Path(checkpoint) / "config.json").read_text())
    assert json.loads((Path(hub) / "config.json").read_text())["auto_map"] == AUTO_MAPS["mimoconv"]
    with pytest.raises(FileExistsError):
        save_hub_folder(model, tmp_path / "hub")
    reloaded = AutoModelForImageClassification.from_pretrained(checkpoint, trust_remote_code=True)
    assert type(reloaded) is MIMOConvForImageClassification  # no auto_map: the registered package class
