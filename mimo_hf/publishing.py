"""Publish a Hub-ready folder with one `HfApi.create_commit` (the single seam tests mock).

Only what a Hub user needs is uploaded (weights as safetensors, config, code, image processor, model
card, results and plots); pickle files are refused, so nothing on the Hub ever needs unpickling.
"""

from pathlib import Path

ALLOWED_SUFFIXES = {".json", ".py", ".safetensors", ".md", ".png"}
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}
REQUIRED_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "README.md")


def files_to_publish(folder):
    """Paths (relative to `folder`) that go to the Hub; raises if the folder is incomplete or unsafe."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is missing {missing} (README.md comes from scripts/write_model_card.py)")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    pickles = [p.name for p in files if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise ValueError(f"{folder} holds pickle files {pickles}; publish safetensors only")
    return [p.name for p in files if p.suffix in ALLOWED_SUFFIXES]


def publish(api, repo_id, folder, revision="main", commit_message=None, private=False, create_pr=False):
    """Create the repo if needed and upload the folder in one commit. Returns the commit info."""
    from huggingface_hub import CommitOperationAdd

    names = files_to_publish(folder)
    api.create_repo(repo_id, private=private, exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(Path(folder) / name)) for name in names]
    return api.create_commit(
        repo_id=repo_id, operations=operations, revision=revision, create_pr=create_pr,
        commit_message=commit_message or f"Upload {Path(folder).name} from mimo-hf",
    )


def load_push_config(path):
    """A push config (YAML): repo_id, folder (relative to the config's repository root), optional
    revision, private, commit_message."""
    import yaml

    config = yaml.safe_load(Path(path).read_text())
    for key in ("repo_id", "folder"):
        if not config or key not in config:
            raise ValueError(f"{path}: push config needs '{key}'")
    return config
