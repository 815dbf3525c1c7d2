"""Publishing: push-config schema, the assembled folder, refusals, the dry run, and the one create_commit
(autospec'd HfApi).

Most tests stage a copy of the zoo's baseline folder (its card links no other repo) with its push
config and the card template in a temporary repository root, then break one thing at a time; the Hub
folder is assembled from it into a staging folder, as scripts/push_to_hub.py does.
"""

import hashlib
import importlib.util
import json
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import create_autospec

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.hf_api import GitRefInfo, GitRefs, RepoFile

from mimo_hf.hub import publishing
from mimo_hf.hub.publishing import ValidationError, collect_files, publish, validate
from mimo_hf.hub.push_config import PushConfigError, load_push_config, load_push_configs

ROOT = Path(__file__).resolve().parents[2]
NAME = "wrn16-2-baseline"
REVISION = load_push_config(ROOT / "push_configs" / f"{NAME}.yaml").revision  # the tag its push config names
HEAD = "a" * 40
NEW_COMMIT = "b" * 40


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def staged(tmp_path):
    """A repository root with push_configs/, model_cards/ and zoo/<NAME>; returns its PushConfig."""
    shutil.copytree(ROOT / "zoo" / NAME, tmp_path / "zoo" / NAME)
    shutil.copytree(ROOT / "model_cards", tmp_path / "model_cards")
    (tmp_path / "push_configs").mkdir()
    shutil.copy(ROOT / "push_configs" / f"{NAME}.yaml", tmp_path / "push_configs")
    return load_push_config(tmp_path / "push_configs" / f"{NAME}.yaml")


@pytest.fixture
def no_load_check(monkeypatch):
    """Skip the subprocess load check where a test is about something else (it has its own tests)."""
    calls = []
    monkeypatch.setattr(publishing, "load_problems", lambda pushes, folders: calls.append(pushes) or {})
    return calls


def _assembled_names(push):
    """The files of the push config's Hub folder: its checkpoint files, the model code, the card."""
    from mimo_hf.hub.export import MODEL_CODE_FILES, checkpoint_files, model_type_of

    # A local onnx/ export (git-ignored) is uploaded only with `onnx: true`; tests/deploy covers that.
    files = [name for name in checkpoint_files(push.folder_path) if push.onnx or not name.startswith("onnx/")]
    return sorted([*files, *MODEL_CODE_FILES[model_type_of(push.folder_path)], "README.md"])


def _api(tags=(), tree=()):
    api = create_autospec(HfApi, instance=True)
    api.list_repo_refs.return_value = GitRefs(
        branches=[GitRefInfo(name="main", ref="refs/heads/main", target_commit=HEAD)], converts=[],
        tags=[GitRefInfo(name=name, ref=f"refs/tags/{name}", target_commit=commit) for name, commit in tags])
    api.list_repo_tree.return_value = list(tree)
    api.create_commit.return_value = SimpleNamespace(oid=NEW_COMMIT, commit_url="https://huggingface.co/x")
    return api


def _remote(files, lfs_suffixes=(".safetensors", ".png")):
    """The Hub's view of `files`: LFS files carry the sha256, the others their git blob id."""
    tree = [RepoFile(path=".gitattributes", size=1519, oid="c" * 40)]
    for f in files:
        lfs = {"size": f.size, "oid": f.sha256, "pointerSize": 134} if f.path_in_repo.endswith(lfs_suffixes) else None
        tree.append(RepoFile(path=f.path_in_repo, size=f.size, oid=f.git_oid if lfs is None else "d" * 40, lfs=lfs))
    return tree


# --- push configs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted((ROOT / "push_configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_committed_push_configs_follow_the_schema(path):
    push = load_push_config(path)
    assert path.stem == push.folder_path.name and push.repo_id.split("/")[1].startswith(push.folder_path.name)
    model_type = json.loads((push.folder_path / "config.json").read_text())["model_type"]
    assert push.card_template == f"model_cards/{model_type}.md" and push.results_path.is_file()
    assert push.license == "apache-2.0" and push.revision and not push.private


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.pop("repo_id"), "missing key 'repo_id'"),
    (lambda c: c.update(privat=True), "unknown key 'privat'"),
    (lambda c: c.update(private="no"), "'private' must be a bool"),
    (lambda c: c.update(tags="cifar10"), "'tags' must be a list"),
    (lambda c: c.update(repo_id="no-owner"), "owner/name"),
    (lambda c: c.update(folder="/nonexistent/zoo/x"), "'/nonexistent/zoo/x' is not a folder$"),
    (lambda c: c.update(folder="zoo/missing"), "is not a folder \\(relative paths start from "),
    (lambda c: c.update(revision="main"), "cannot be the branch name"),
    (lambda c: c.update(card_template="model_cards/nothing.md"), "does not exist"),
])
def test_push_config_errors_name_the_key(staged, edit, message):
    import yaml

    raw = yaml.safe_load(staged.path.read_text())
    edit(raw)
    staged.path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PushConfigError, match=message) as error:
        load_push_config(staged.path)
    assert str(staged.path) in str(error.value)


# --- validation -----------------------------------------------------------------------------------

def test_the_zoo_validates_and_loads_without_mimo_hf(tmp_path):
    """The real check, subprocess included: every committed folder's Hub folder is publishable."""
    pushes = load_push_configs(ROOT / "push_configs")
    files = validate(pushes, tmp_path)
    for push in pushes:
        names = [f.path_in_repo for f in files[str(push.path)]]
        assert {"README.md", "config.json", "model.safetensors", push.results} <= set(names)
        assert any(name.startswith("modeling_") for name in names)
        assert names == _assembled_names(push)  # everything, nothing else
        assert all(tmp_path in f.local_path.parents for f in files[str(push.path)])  # uploaded from the staging copy


def _break(push, how):
    folder = push.folder_path
    if how == "missing weights":
        (folder / "model.safetensors").unlink()
    elif how == "pickle":
        (folder / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    elif how == "hand-written card":
        (folder / "README.md").write_text("# my card\n")
    elif how == "model code copy":
        (folder / "modeling_mimoconv.py").write_text("# an old copy\n")
    elif how == "token":
        (folder / "notes.txt").write_text("pushed with\nhub_token=hf_" + "Ab1" * 12 + "\n")
    elif how == "local path":
        args = json.loads((folder / "training_args.json").read_text())
        (folder / "training_args.json").write_text(json.dumps({**args, "output_dir": "/work/main/runs/x"}))
    elif how == "unknown file":
        (folder / "notes.csv").write_text("a,b\n")


@pytest.mark.parametrize("how, message", [
    ("missing weights", "missing weights: no \\*.safetensors"),
    ("pickle", "pytorch_model.bin: pickle-based file"),
    ("hand-written card", "README.md: a hand-written card; the export renders README.md"),
    ("model code copy", "modeling_mimoconv.py: a model code copy that differs from the package's"),
    ("token", "notes.txt:2: holds a token-like string"),
    ("local path", "training_args.json:1: holds an absolute local path \\(/work/\\)"),
    ("unknown file", "notes.csv: unexpected file type"),
])
def test_refusals(staged, no_load_check, how, message, tmp_path):
    _break(staged, how)
    with pytest.raises(ValidationError, match=message) as error:
        validate([staged], tmp_path / "staging")
    assert "hf_Ab1" not in str(error.value)  # a leaked token is never echoed
    assert no_load_check == []  # nothing runs the model of a folder that fails the static checks


def test_refuses_a_card_whose_numbers_disagree_with_the_results(staged, no_load_check, monkeypatch, tmp_path):
    """The model-index check guards the upload even if the card's renderer got a number wrong."""
    from mimo_hf.hub import cards

    real = cards.operating_point_results

    def off_by_one_point(ctx, *args):
        results = real(ctx, *args)
        results[0].metric_value = round(results[0].metric_value + 0.01, 4)
        return results

    monkeypatch.setattr(cards, "operating_point_results", off_by_one_point)
    monkeypatch.setattr("mimo_hf.hub.card_mimoconv.operating_point_results", off_by_one_point)
    stored = json.loads((ROOT / "zoo" / NAME / "eval_results.json").read_text())["results"][0]["accuracy"]
    with pytest.raises(ValidationError, match=f"k=1 accuracy is {stored + 0.01:.4f}, the results JSON says {stored:.4f}"):
        validate([staged], tmp_path)


def test_refuses_a_folder_that_needs_mimo_hf(staged, monkeypatch, tmp_path):
    """Remote code importing the package works here but not for a Hub user: the load check catches it."""
    from mimo_hf.hub import export

    code_root = tmp_path / "models"
    shutil.copytree(export.CODE_ROOT, code_root)
    code = code_root / "mimoconv" / "modeling_mimoconv.py"
    code.write_text("import mimo_hf  # noqa\n" + code.read_text())
    monkeypatch.setattr(export, "CODE_ROOT", code_root)
    with pytest.raises(ValidationError, match="does not load without mimo_hf.*mimo_hf is blocked"):
        validate([staged], tmp_path / "staging")


def test_scans_skip_urls_and_relative_paths(tmp_path):
    (tmp_path / "a.md").write_text("see https://huggingface.co/home/x and runs/tmp/x and ../work/y and hf_short\n")
    (tmp_path / "b.json").write_text('{"dir": "/home/me/data"}')
    files, problems = collect_files(tmp_path)
    assert problems == []
    found = publishing.secret_and_path_problems(files)
    assert found == ["b.json:1: holds an absolute local path (/home/)"]


# --- publish through an autospec'd HfApi ----------------------------------------------------------

def test_first_push_uploads_every_file_in_one_commit_and_tags_it(staged, no_load_check, tmp_path):
    files = validate([staged], tmp_path)[str(staged.path)]
    api = _api(tree=[RepoFile(path=".gitattributes", size=1519, oid="c" * 40)])  # a new repo
    result = publish(api, staged, files)

    api.create_repo.assert_called_once_with(staged.repo_id, repo_type="model", private=False, exist_ok=True)
    api.create_commit.assert_called_once()
    kwargs = api.create_commit.call_args.kwargs
    assert kwargs["repo_id"] == staged.repo_id and kwargs["revision"] == "main" and kwargs["parent_commit"] == HEAD
    operations = kwargs["operations"]
    assert all(isinstance(op, CommitOperationAdd) for op in operations)
    assert [op.path_in_repo for op in operations] == _assembled_names(staged)
    for op in operations:
        assert Path(op.path_or_fileobj) == tmp_path / staged.repo_name / op.path_in_repo
    assert "model.safetensors" in [op.path_in_repo for op in operations]
    assert kwargs["commit_message"] == f"Publish zoo/{NAME} {REVISION} ({len(operations)} added or updated, 0 deleted)"
    api.create_tag.assert_called_once_with(staged.repo_id, repo_type="model", tag=REVISION, revision=NEW_COMMIT,
                                           exist_ok=True, tag_message=api.create_tag.call_args.kwargs["tag_message"])
    assert result.committed and result.commit == NEW_COMMIT


def test_unchanged_content_makes_no_commit(staged, no_load_check, tmp_path):
    files = validate([staged], tmp_path)[str(staged.path)]
    api = _api(tree=_remote(files))
    result = publish(api, staged, files)
    api.create_commit.assert_not_called()
    api.list_repo_tree.assert_called_once_with(staged.repo_id, recursive=True, revision=HEAD)
    api.create_tag.assert_called_once()
    assert api.create_tag.call_args.kwargs["revision"] == HEAD and not result.committed


def test_changed_and_stale_files_make_one_commit_with_only_those(staged, no_load_check, tmp_path):
    files = validate([staged], tmp_path)[str(staged.path)]
    tree = [f for f in _remote(files) if f.path != "config.json"]  # config.json is new on the Hub
    tree = [RepoFile(path="README.md", size=5, oid="e" * 40) if f.path == "README.md" else f for f in tree]
    tree.append(RepoFile(path="pytorch_model.bin", size=9, oid="f" * 40))  # no longer in the folder
    api = _api(tree=tree)
    publish(api, staged, files)
    operations = api.create_commit.call_args.kwargs["operations"]
    assert [(type(op).__name__, op.path_in_repo) for op in operations] == [
        ("CommitOperationAdd", "README.md"), ("CommitOperationAdd", "config.json"),
        ("CommitOperationDelete", "pytorch_model.bin")]
    assert isinstance(operations[-1], CommitOperationDelete)


def test_an_existing_tag_is_never_moved(staged, no_load_check, tmp_path):
    files = validate([staged], tmp_path)[str(staged.path)]
    api = _api(tags=[(REVISION, "9" * 40)], tree=_remote(files))
    assert publish(api, staged, files).commit == "9" * 40  # same content: nothing to do
    api.create_commit.assert_not_called()
    api.create_tag.assert_not_called()

    api = _api(tags=[(REVISION, "9" * 40)], tree=_remote(files)[:-1])
    with pytest.raises(ValueError, match=f"tag {REVISION} already exists .* set a new 'revision'"):
        publish(api, staged, files)
    api.create_commit.assert_not_called()


def test_local_hashes_match_the_hub_conventions(tmp_path):
    (tmp_path / "x.txt").write_bytes(b"hello\n")
    (local,) = collect_files(tmp_path)[0]
    assert local.git_oid == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object x.txt`
    assert local.sha256 == hashlib.sha256(b"hello\n").hexdigest() and local.size == 6


# --- the command line -----------------------------------------------------------------------------

def export_hub_folder(push, output):
    """scripts/export_hub_folder.py for one push config; returns its assembled folder."""
    (folder,) = _script("export_hub_folder").main([str(push.path), "--output", str(output), "--skip-load-check"])
    return folder


def test_dry_run_prints_the_assembled_folder_and_the_card_without_network(staged, no_load_check, monkeypatch, capsys,
                                                                           tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("the dry run touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(HfApi, "__init__", no_network)
    assert _script("push_to_hub").main([str(staged.path), "--dry-run"]) == []
    out = capsys.readouterr().out
    assert len(no_load_check) == 1  # the dry run validates exactly like a push
    assert f"== {staged.repo_id} <- zoo/{NAME} (branch main, tag {REVISION}, public, license apache-2.0)" in out
    assert f"assembled from zoo/{NAME} (checkpoint files), mimo_hf/models/mimoconv (model code" in out
    # The assembled folder, exactly as it is uploaded: the same assembly written to disk.
    folder = export_hub_folder(staged, tmp_path / "hub")
    files = sorted(p for p in folder.iterdir() if p.name != "onnx")  # a local onnx/ export stays local (no onnx: true)
    assert [path.name for path in files] == _assembled_names(staged)
    assert f"{len(files)} files, {sum(p.stat().st_size for p in files)} bytes; after the push" in out
    for path in files:
        row = next(line for line in out.splitlines() if line.strip().startswith(path.name + " "))
        assert row.split() == [path.name, str(path.stat().st_size),
                               "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()]
    assert (folder / "README.md").read_text().rstrip() in out
    assert out.rstrip().endswith("dry run: 1 repo(s) assembled and validated, nothing uploaded")


def test_push_command_validates_then_publishes_through_the_api(staged, no_load_check, capsys):
    api = _api(tree=[])
    (result,) = _script("push_to_hub").main([str(staged.path)], api=api)
    assert result.committed and api.create_commit.call_count == 1
    assert f"{staged.repo_id}: committed" in capsys.readouterr().out


def test_push_command_refuses_before_any_upload(staged, no_load_check):
    (staged.folder_path / "model.safetensors").unlink()
    api = _api()
    with pytest.raises(SystemExit, match="missing weights"):
        _script("push_to_hub").main([str(staged.path)], api=api)
    assert api.mock_calls == []


def test_push_without_a_token_stops_early(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(SystemExit, match="hf auth login"):
        _script("push_to_hub").make_api()


def test_export_writes_the_hub_folder_and_turns_a_run_folder_into_a_checkpoint_folder(staged, tmp_path, capsys):
    """export_hub_folder.py: the Hub folder on disk (refusing to write into a non-empty folder); a
    Hub-ready run folder back to a checkpoint folder (its code copies and auto_map dropped)."""
    folder = export_hub_folder(staged, tmp_path / "hub")
    assert folder == tmp_path / "hub" / staged.repo_name and (folder / "modeling_mimoconv.py").is_file()
    with pytest.raises(SystemExit, match="exists and is not empty"):
        export_hub_folder(staged, tmp_path / "hub")
    script = _script("export_hub_folder")
    (checkpoint,) = script.main([str(folder), "--checkpoint-only", "--output", str(tmp_path / "zoo" / "x")])
    assert sorted(p.name for p in checkpoint.iterdir()) == sorted(p.name for p in staged.folder_path.iterdir())
    assert json.loads((checkpoint / "config.json").read_text()) == json.loads((staged.folder_path / "config.json").read_text())
    # Widget images: rewritten from the shipped sample only when their pixels differ.
    (staged.folder_path / "example_cat.png").unlink()
    script.main([str(staged.path), "--configs", str(staged.path.parent), "--widget-images"])
    assert (staged.folder_path / "example_cat.png").is_file() and "example_cat.png" in capsys.readouterr().out


# --- your own model: a push config anywhere, nothing written before everything is valid ---------------

def _own_run(tmp_path, name="my-run"):
    """A user's training run outside the repository: its Hub-ready folder `<run>/hub` (as train_*.py
    writes it: model code copies and auto_map included, no card) and a push config next to it, with
    an unrelated YAML file beside it and no card_template (the architecture's default)."""
    from mimo_hf.hub.export import export_folder

    run = tmp_path / name
    export_folder(ROOT / "zoo" / NAME, run / "hub")
    (run / "push.yaml").write_text(f"repo_id: someone/{name}\nfolder: hub\ndataset: uoft-cs/cifar10\n"
                                   "license: apache-2.0\ntags: []\nresults: eval_results.json\nprivate: true\n"
                                   "revision: v1\n")
    (run / "accelerate.yaml").write_text("mixed_precision: 'no'\n")  # not a push config: ignored
    return run


def test_a_push_config_anywhere_publishes_its_own_folder(no_load_check, capsys, tmp_path, monkeypatch):
    run = _own_run(tmp_path)
    push = load_push_config(run / "push.yaml")
    assert push.folder_path == run / "hub" and push.template_path == ROOT / "model_cards" / "mimoconv.md"
    monkeypatch.chdir(tmp_path)  # relative paths start from the config's folder, not the working directory
    assert _script("push_to_hub").main(["my-run/push.yaml", "--dry-run"]) == []
    out = capsys.readouterr().out
    assert "== someone/my-run <- hub (branch main, tag v1, private" in out and "model_cards/mimoconv.md (README.md)" in out
    (folder,) = _script("export_hub_folder").main(["my-run/push.yaml", "--output", "out"])
    assert folder == Path("out") / "my-run" and (folder / "README.md").is_file()
    assert (folder / "modeling_mimoconv.py").read_bytes() == (ROOT / "mimo_hf/models/mimoconv/modeling_mimoconv.py").read_bytes()
    # An absolute folder works too; the Hub commit names it by its name only (no local path uploaded).
    (run / "abs.yaml").write_text((run / "push.yaml").read_text().replace("folder: hub", f"folder: {run / 'hub'}"))
    api = _api(tree=[])
    _script("push_to_hub").main([str(run / "abs.yaml")], api=api)
    kwargs = api.create_commit.call_args.kwargs
    assert kwargs["commit_message"].startswith("Publish hub v1 (") and str(tmp_path) not in kwargs["commit_description"]


def test_export_and_push_write_nothing_unless_every_target_is_valid(staged, no_load_check, tmp_path):
    good = _own_run(tmp_path, "good")
    bad = _own_run(tmp_path, "bad")
    (bad / "hub" / "modeling_mimoconv.py").write_text("# an old copy\n")  # differs from the package's code
    output = tmp_path / "out"
    with pytest.raises(SystemExit, match="modeling_mimoconv.py: a model code copy that differs") as error:
        _script("export_hub_folder").main([str(good / "push.yaml"), str(bad / "push.yaml"), "--output", str(output)])
    assert "bad/push.yaml" in str(error.value) and "good" not in str(error.value).split("refusing")[1]
    assert not output.exists()  # the valid target was not written either
    (bad / "push.yaml").write_text("repo_id: x/y\n")  # a broken config: refused before any assembly
    with pytest.raises(SystemExit, match="missing key 'folder'"):
        _script("export_hub_folder").main([str(good / "push.yaml"), str(bad / "push.yaml"), "--output", str(output)])
    assert not output.exists()
    api = _api(tree=[])
    with pytest.raises(SystemExit, match="missing key 'folder'"):
        _script("push_to_hub").main([str(good / "push.yaml"), str(bad / "push.yaml")], api=api)
    assert api.mock_calls == []
    # A target that is nothing on disk: named as what it could have been.
    with pytest.raises(SystemExit, match=r"no-such-run/hub: no such push config file nor checkpoint folder"):
        _script("export_hub_folder").main([str(good / "push.yaml"), str(tmp_path / "no-such-run" / "hub"), "--output", str(output)])
    assert not output.exists()
