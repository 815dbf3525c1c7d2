"""Every zoo checkpoint loads the way its users load it, on whichever transformers runs.

Two kinds of user, two children (tests/helpers/hub_loading_child.py):
- a Hub user, on the Hub folder that scripts/push_to_hub.py would upload (assembled here with
  `mimo_hf.hub.export`: checkpoint files, model code, card), with `import mimo_hf` blocked, so the
  folder's remote code is what runs;
- a user of a clone with the package installed, on the zoo/ folder itself (no model code, no
  auto_map): `import mimo_hf` registers the model types and the package's code runs.
Generic over the folders: each is checked through AutoConfig, every Auto class (the Hub folder's
`auto_map`), the task's pipeline, its image processor or tokenizer, every operating point, and by Hub
id from a pre-filled offline Hugging Face cache (HF_HUB_OFFLINE=1, by branch and by commit); both
children must give the same logits (remote code vs package). No conftest fixtures here: this is also
the transformers-4.57 leg's test suite (.ci/test_transformers4.sh runs it with --noconftest).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hub_testing import prefill_hub_cache

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "zoo"
PUSH_CONFIGS = REPO / "push_configs"
CHILD = Path(__file__).resolve().parents[1] / "helpers" / "hub_loading_child.py"
HUB_ORG = "mimo-hf-test"
FOLDERS = sorted(path for path in ZOO.iterdir() if (path / "config.json").is_file()) if ZOO.is_dir() else []
NAMES = [folder.name for folder in FOLDERS]


def _raw_config(name):
    return json.loads((ZOO / name / "config.json").read_text())


def _hub_config(name):
    """config.json as the Hub folder has it: the zoo's plus the export's auto_map and custom_pipelines."""
    from mimo_hf.hub.export import AUTO_MAPS, CUSTOM_PIPELINES

    raw = _raw_config(name)
    return {**raw, "auto_map": AUTO_MAPS[raw["model_type"]], "custom_pipelines": CUSTOM_PIPELINES[raw["model_type"]]}


def _load(tmp, folders, package):
    """Run the child on {name: folder}: with `import mimo_hf` blocked, or (package=True) imported first."""
    hub_cache = tmp / "hf_home" / "hub"
    entries = []
    for name, folder in folders.items():
        repo_id = f"{HUB_ORG}/{name}"
        commit = prefill_hub_cache(folder, hub_cache, repo_id)
        entries.append({"name": name, "folder": str(folder), "repo_id": repo_id, "commit": commit})
    output = tmp / "result.pt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "PYTHON"))}
    env.update(
        HF_HUB_OFFLINE="1",  # nothing may come from the network: the cache is the Hub
        HF_DATASETS_OFFLINE="1",
        HF_HOME=str(tmp / "hf_home"),
        HF_HUB_CACHE=str(hub_cache),
        HF_MODULES_CACHE=str(tmp / "modules"),  # fresh remote-code modules, nothing stale
        HF_HUB_DISABLE_TELEMETRY="1",
        OMP_NUM_THREADS="1",
        PYTHONNOUSERSITE="1",
    )
    if package:  # the clone's package (the 4.57 leg has no install of it: the repository is the path)
        env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, str(CHILD), json.dumps({"folders": entries, "output": str(output), "package": package})],
        cwd=str(tmp),  # not the repository: nothing importable from the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"child failed\nSTDOUT:\n{proc.stdout[-3000:]}\nSTDERR:\n{proc.stderr[-6000:]}"
    result = torch.load(output, weights_only=True)
    result["entries"] = {entry["name"]: entry for entry in entries}
    return result


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """What a Hub user gets from each Hub folder (mimo_hf blocked)."""
    from mimo_hf.hub.export import assemble_all

    tmp = tmp_path_factory.mktemp("hub_loading")
    assembled = assemble_all(PUSH_CONFIGS, tmp / "assembled")
    return _load(tmp, {name: assembled[name] for name in NAMES}, package=False)


@pytest.fixture(scope="module")
def from_clone(tmp_path_factory):
    """What a user of a clone gets from each zoo/ folder with the package installed."""
    return _load(tmp_path_factory.mktemp("clone_loading"), {folder.name: folder for folder in FOLDERS}, package=True)


def _folder(loaded, name, *steps):
    """The child's record for `name`, failing with the child's traceback if any of `steps` failed."""
    record = loaded["folders"][name]
    errors = record["errors"]
    failed = [step for step in errors if not steps or any(step.startswith(s) for s in steps)]
    assert not failed, "\n".join(f"--- {step} ---\n{errors[step]}" for step in failed)
    return record


def test_zoo_has_folders():
    assert FOLDERS, f"no Hub-ready folder (with config.json) under {ZOO}"


def test_child_had_no_mimo_hf(loaded):
    assert loaded["mimo_hf_modules"] == []


def test_every_zoo_folder_is_published_and_holds_no_code():
    """Model code lives once, in mimo_hf/models/: a zoo folder has no copy, no card, no auto_map."""
    code = sorted(path.name for folder in FOLDERS for path in folder.iterdir()
                  if path.suffix == ".py" or path.name == "README.md")
    assert code == []
    assert [name for name in NAMES if "auto_map" in _raw_config(name)] == []
    published = {folder.name for folder in FOLDERS}
    assert published <= {Path(line.split(":", 1)[1].strip()).name for config in PUSH_CONFIGS.glob("*.yaml")
                         for line in config.read_text().splitlines() if line.startswith("folder:")}


@pytest.mark.parametrize("name", NAMES)
def test_zoo_folder_loads_from_a_clone_with_the_package(from_clone, loaded, name):
    """The zoo folder itself, with mimo_hf imported: the package's classes, its weights unchanged, the same
    logits at every operating point as the Hub folder's remote code, pipelines included."""
    clone, hub = _folder(from_clone, name), _folder(loaded, name)
    assert from_clone["mimo_hf_modules"], "the clone child did not import mimo_hf"
    assert clone["config_class"].startswith("mimo_hf.models."), clone["config_class"]
    assert all(cls.startswith("mimo_hf.models.") for cls in clone["auto_classes"].values()), clone["auto_classes"]
    assert set(clone["auto_classes"]) == set(hub["auto_classes"])
    assert clone["missing_keys"] == clone["unexpected_keys"] == clone["changed_keys"] == []
    assert clone["operating_points"] == hub["operating_points"]
    for point in hub["operating_points"]:
        assert torch.equal(clone["logits"][point], hub["logits"][point]), point
    if _has_preprocessor(name):
        assert clone["pipeline"] == hub["pipeline"]


@pytest.mark.parametrize("name", NAMES)
def test_config_from_remote_code(loaded, name):
    record = _folder(loaded, name, "config")
    raw = _hub_config(name)
    assert record["config_class"].startswith("transformers_modules."), record["config_class"]
    assert record["config_class"].endswith("." + raw["auto_map"]["AutoConfig"].split(".")[-1])
    assert record["model_type"] == raw["model_type"]
    assert record["id2label"] == {int(k): v for k, v in raw["id2label"].items()}
    assert record["task"] in ("image-classification", "text-classification"), raw["auto_map"]


@pytest.mark.parametrize("name", NAMES)
def test_every_auto_class_in_auto_map(loaded, name):
    record = _folder(loaded, name, "load ")
    auto_map = _hub_config(name)["auto_map"]
    # Users call AutoModel too (feature extraction); save_pretrained alone does not list it.
    assert "AutoModel" in auto_map, auto_map
    for auto_name, reference in auto_map.items():
        if auto_name == "AutoConfig":
            continue
        loaded_class = record["auto_classes"][auto_name]
        assert loaded_class.startswith("transformers_modules."), (auto_name, loaded_class)
        assert loaded_class.endswith("." + reference.split(".")[-1]), (auto_name, loaded_class)


@pytest.mark.parametrize("name", NAMES)
def test_weights_arrive_unchanged(loaded, name):
    record = _folder(loaded, name, "load ")
    assert record["missing_keys"] == [], "left at their initial values"
    assert record["unexpected_keys"] == []
    assert record["changed_keys"] == []


@pytest.mark.parametrize("name", NAMES)
def test_preprocessor(loaded, name):
    record = _folder(loaded, name, "preprocessor")
    folder = ZOO / name
    if record["task"] == "image-classification":
        assert record["preprocessor_class"].startswith("ViTImageProcessor"), record["preprocessor_class"]
        return
    if record["preprocessor_class"] is None:  # pixel-id sequences (LRA Image): the card shows how to make them
        assert not (folder / "tokenizer.json").is_file() and record["input_ids"].shape[0] == 5
        return
    # Text: a fast tokenizer that 4.x can load too (v5 writes "TokenizersBackend", which 4.x lacks).
    assert (folder / "tokenizer.json").is_file()
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast", tokenizer_config["tokenizer_class"]
    assert record["tokenizer_pad_token_id"] == record["config_pad_token_id"]
    assert record["input_ids"].shape[0] == 5


@pytest.mark.parametrize("name", NAMES)
def test_every_operating_point_runs(loaded, name):
    record = _folder(loaded, name, "forward")
    num_labels = len(record["id2label"])
    assert record["operating_points"], "no operating point"
    for point in record["operating_points"]:
        logits = record["logits"][point]
        assert logits.shape == (5, num_labels), (point, logits.shape)
        assert torch.isfinite(logits).all(), point
    # The call without an operating point is the config's default one, which is one of them.
    assert any(torch.equal(record["default_logits"], record["logits"][p]) for p in record["operating_points"])


@pytest.mark.parametrize("name", NAMES)
def test_pipeline_matches_direct_call(loaded, name):
    if not _has_preprocessor(name):
        pytest.skip("takes pixel-id sequences: no tokenizer, so no text-classification pipeline")
    record = _folder(loaded, name, "pipeline", "forward default")
    assert record["pipeline_module"].startswith("transformers_modules."), record["pipeline_module"]
    # The folder's own pipeline class (config.json's custom_pipelines), which takes the operating point per call.
    assert record["pipeline_class"].startswith("transformers_modules."), record["pipeline_class"]
    assert record["pipeline_class"].endswith(("MIMOConvImageClassificationPipeline",
                                              "MIMOFormerTextClassificationPipeline")), record["pipeline_class"]
    probs = record["default_logits"].softmax(-1)
    labels = record["id2label"]
    assert len(record["pipeline"]) == 5
    for row, per_input in enumerate(record["pipeline"]):
        assert {item["label"] for item in per_input} == set(labels.values())
        for item in per_input:
            label_id = next(i for i, label in labels.items() if label == item["label"])
            assert item["score"] == pytest.approx(probs[row, label_id].item(), abs=1e-5), (row, item)


@pytest.mark.parametrize("name", NAMES)
def test_hub_id_from_offline_cache(loaded, name):
    record = _folder(loaded, name, "hub")
    commit = loaded["entries"][name]["commit"]
    # Loaded from the cache snapshot (its module path names the commit), not from the folder.
    assert commit in record["hub_config_class"], record["hub_config_class"]
    for label in ("main", "commit"):
        assert commit in record[f"hub_module_{label}"], record[f"hub_module_{label}"]
        for point in record["operating_points"]:
            assert torch.equal(record[f"hub_logits_{label}"][point], record["logits"][point]), (label, point)
    if _has_preprocessor(name):
        assert commit in record["hub_pipeline_module"], record["hub_pipeline_module"]
        assert record["hub_pipeline"] == record["pipeline"]


def _has_preprocessor(name):
    return any((ZOO / name / f).is_file() for f in ("tokenizer.json", "preprocessor_config.json"))
