"""Push configs: `push_configs/<repo-name>.yaml`, one per published checkpoint.

A push config says where a Hub-ready folder goes and what its card declares:

    repo_id: mimo-hf/mimoconv16-2-n4-cifar10   # owner/name on the Hub
    folder: zoo/mimoconv16-2-n4                 # checkpoint folder (or a training run's <output-dir>/hub)
    card_template: model_cards/mimoconv.md      # optional: Jinja template of the model card (README.md)
    dataset: uoft-cs/cifar10                    # Hub dataset id; must match the results JSON
    license: apache-2.0                         # Hub license id (the project's license, pyproject.toml)
    tags: [cifar10]                             # extra card tags (the architecture adds its own)
    results: eval_results.json                  # results JSON inside the folder (model-index source)
    private: false
    revision: v0.1.0                            # tag put on the pushed commit; the card pins it

Optional: `card_template` (default: the architecture's template, model_cards/<model_type>.md of this
checkout), `branch` (default `main`), `commit_message`, `onnx` (default false: upload the folder's `onnx/`
sub-folder of exported graphs, see mimo_hf/deploy/hub.py; without it that sub-folder stays local).
Unknown keys are errors, so a typo never passes silently.

Where paths start: `folder` and `card_template` may be absolute. A relative path starts from the
config's base folder: the folder holding the config file, except for a config inside a folder named
`push_configs/` (the zoo's layout), whose base is that folder's parent (the repository root). So a
config next to your own run (`my-run/push.yaml` with `folder: hub`) works as well as the zoo's.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED = {
    "repo_id": str,
    "folder": str,
    "dataset": str,
    "license": str,
    "tags": list,
    "results": str,
    "private": bool,
    "revision": str,
}
OPTIONAL = {"card_template": str, "branch": str, "commit_message": str, "onnx": bool}
# The architectures' card templates (model_cards/<model_type>.md), the default `card_template`.
TEMPLATES = Path(__file__).resolve().parents[2] / "model_cards"

# Hub repo names: owner/name, letters, digits, '-', '_', '.' (no '--' or '..', as the Hub requires).
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")
# Git ref names we accept for tags and branches: plain, no spaces, no '..', not a commit-like hex.
REF_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")
TAG = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


class PushConfigError(ValueError):
    """A push config that does not follow the schema; the message names the file and the key."""


@dataclass(frozen=True)
class PushConfig:
    """One validated push config; `root` is the base folder its relative paths start from."""

    path: Path
    root: Path
    repo_id: str
    folder: str
    card_template: str
    dataset: str
    license: str
    results: str
    private: bool
    revision: str
    tags: tuple = field(default_factory=tuple)
    branch: str = "main"
    commit_message: str | None = None
    onnx: bool = False

    @property
    def folder_path(self):
        return self.root / self.folder  # an absolute `folder` stays as it is

    @property
    def template_path(self):
        return self.root / self.card_template

    @property
    def folder_label(self):
        """How commit messages and the dry run name the folder: as written when relative, else its name
        (an absolute local path never goes into a Hub commit)."""
        return Path(self.folder).name if Path(self.folder).is_absolute() else self.folder

    @property
    def template_label(self):
        path = self.template_path.resolve()
        return path.relative_to(TEMPLATES.parent).as_posix() if TEMPLATES.parent in path.parents else path.name

    @property
    def results_path(self):
        return self.folder_path / self.results

    @property
    def repo_name(self):
        return self.repo_id.split("/", 1)[1]


def base_folder(path):
    """Where a push config's relative paths start (see the module docstring)."""
    folder = Path(path).resolve().parent
    return folder.parent if folder.name == "push_configs" else folder


def load_push_config(path, root=None):
    """Read and validate one push config; raises `PushConfigError` listing every problem found."""
    import yaml

    path = Path(path)
    root = Path(root) if root is not None else base_folder(path)
    if not path.is_file():
        raise PushConfigError(f"{path}: no such push config file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise PushConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise PushConfigError(f"{path}: a push config is a YAML mapping of keys {sorted(REQUIRED)}")

    problems = []
    for key in sorted(set(raw) - set(REQUIRED) - set(OPTIONAL)):
        problems.append(f"unknown key '{key}' (allowed: {', '.join([*REQUIRED, *OPTIONAL])})")
    for key, kind in REQUIRED.items():
        if key not in raw:
            problems.append(f"missing key '{key}' ({kind.__name__})")
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if key in raw and not isinstance(raw[key], kind):
            problems.append(f"'{key}' must be a {kind.__name__}, got {type(raw[key]).__name__} {raw[key]!r}")
    if problems:
        raise PushConfigError(f"{path}:\n  - " + "\n  - ".join(problems))

    problems += _check_values(raw, root)
    if not problems and "card_template" not in raw:
        raw["card_template"], found = _default_template(root / raw["folder"])
        problems += found
    if problems:
        raise PushConfigError(f"{path}:\n  - " + "\n  - ".join(problems))
    return PushConfig(path=path, root=root, tags=tuple(raw.pop("tags")), **raw)


def _check_values(raw, root):
    problems = []
    if not REPO_ID.match(raw["repo_id"]) or "--" in raw["repo_id"] or ".." in raw["repo_id"]:
        problems.append(f"'repo_id' must look like owner/name, got {raw['repo_id']!r}")
    for key in ("revision", "branch"):
        if key in raw and not REF_NAME.match(raw[key]):
            problems.append(f"'{key}' must be a plain git ref name (letters, digits, '.', '_', '-'), got {raw[key]!r}")
    if raw["revision"] == raw.get("branch", "main"):
        problems.append(f"'revision' is the tag put on the pushed commit; it cannot be the branch name "
                        f"{raw['revision']!r}")
    if not LICENSE_ID.match(raw["license"]):
        problems.append(f"'license' must be a Hub license id such as apache-2.0, got {raw['license']!r}")
    bad_tags = [tag for tag in raw["tags"] if not isinstance(tag, str) or not TAG.match(tag)]
    if bad_tags:
        problems.append(f"'tags' must be lowercase strings, got {bad_tags!r}")
    where = "" if Path(raw["folder"]).is_absolute() else f" (relative paths start from {root})"
    if not (root / raw["folder"]).is_dir():
        problems.append(f"'folder' {raw['folder']!r} is not a folder{where}")
    if "card_template" in raw and not (root / raw["card_template"]).is_file():
        where = "" if Path(raw["card_template"]).is_absolute() else f" (relative paths start from {root})"
        problems.append(f"'card_template' {raw['card_template']!r} does not exist{where}")
    if not problems:
        if "/" in raw["results"] or "\\" in raw["results"]:
            problems.append(f"'results' is a file name inside the folder, got {raw['results']!r}")
    return problems


def _default_template(folder):
    """(absolute path of the architecture's template, problems) for a folder without `card_template`."""
    import json

    config = folder / "config.json"
    if not config.is_file():
        return "", [f"'folder' {str(folder)!r} has no config.json: it is not a checkpoint folder"]
    model_type = json.loads(config.read_text()).get("model_type")
    template = TEMPLATES / f"{model_type}.md"
    if not template.is_file():
        return "", [f"no card template for model_type {model_type!r} in {TEMPLATES}; set 'card_template'"]
    return str(template), []


def load_push_configs(directory):
    """Every `*.yaml` push config in `directory`, sorted by file name."""
    return [load_push_config(path) for path in sorted(Path(directory).glob("*.yaml"))]
