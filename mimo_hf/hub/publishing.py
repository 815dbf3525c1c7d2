"""Publish Hub folders: assemble and validate everything locally, then one `HfApi.create_commit` per folder.

Order of a push (scripts/push_to_hub.py):
1. `validate(configs, staging)` for every config before anything is uploaded: each checkpoint folder is
   assembled into `staging` (`hub.export.assemble`: checkpoint files + model code + rendered card), then
   - the checkpoint folder holds no card or model code of its own (the export adds them);
   - the file set: safetensors weights only (pickle formats are refused), known file types only;
   - no file holds a token-like string (`hf_` + 30 alphanumerics) or an absolute local path;
   - the card: README.md's `model-index` equals the results JSON;
   - the folder loads through the Auto classes with `trust_remote_code=True` and runs its pipeline
     on the card's widget examples, in a fresh Python where `import mimo_hf` fails (a card whose
     pipeline tag is "other", i.e. no transformers pipeline serves the model, has no widget and
     no pipeline to run; its Auto classes are still loaded and checked).
2. `publish(api, config, files)`: create the repo (exist_ok), compare the assembled files with the
   branch's files by hash, upload what changed in ONE `create_commit` (deleting files the folder no
   longer has), and tag the commit with the config's revision. Unchanged content makes no commit.

`api` is passed in (the single seam tests mock with `create_autospec(HfApi, instance=True)`); it
authenticates from the usual huggingface_hub sources (HF_TOKEN or `hf auth login`), and nothing here
reads, prints or writes the token.
"""

import hashlib
import json
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# Uploaded file types; everything else in a folder is refused, so the dry run's list is the upload.
ALLOWED_SUFFIXES = {".json", ".py", ".safetensors", ".md", ".png", ".jpg", ".jpeg", ".txt"}
# Formats that can execute code when loaded (pickle); the Hub copy must never need unpickling.
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz"}
TOKEN = re.compile(rb"hf_[A-Za-z0-9]{30,}")
# An absolute path on a developer machine, e.g. "/work/main/zoo" or "C:\Users\me"; the look-behind
# keeps URL paths ("https://host/home/...") and relative paths ("runs/tmp/...") out.
LOCAL_PATH = re.compile(rb"(?<![\w.~-])(?:/(?:work|home|tmp|root|Users|private/var|var/folders)/|[A-Za-z]:\\Users\\)")
# The sub-folder of exported ONNX graphs (mimo_hf/deploy/hub.py); .onnx files are allowed only there.
ONNX_PREFIX = "onnx/"
# Remote files the Hub manages itself; never compared or deleted.
HUB_MANAGED = {".gitattributes"}


class ValidationError(ValueError):
    """A folder that must not be published; the message lists every problem found."""

    def __init__(self, problems_by_config):
        self.problems = problems_by_config
        lines = []
        for name, problems in problems_by_config.items():
            lines.append(f"{name}: {len(problems)} problem(s)")
            lines += [f"  - {problem}" for problem in problems]
        super().__init__("refusing to publish:\n" + "\n".join(lines))


@dataclass(frozen=True)
class LocalFile:
    """One file to upload, with the hashes the Hub reports for its files (LFS sha256, git blob id)."""

    path_in_repo: str
    local_path: Path
    size: int
    sha256: str
    git_oid: str


@dataclass
class PublishResult:
    repo_id: str
    revision: str
    commit: str | None  # the commit the tag points to
    committed: bool  # whether a new commit was made
    added: list = field(default_factory=list)
    deleted: list = field(default_factory=list)


def hash_file(path, path_in_repo):
    data = Path(path).read_bytes()
    git_oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return LocalFile(path_in_repo, Path(path), len(data), hashlib.sha256(data).hexdigest(), git_oid)


def collect_files(folder, onnx=False):
    """(files, problems): every file under `folder` as a LocalFile, and what is wrong with the set.

    The `onnx/` sub-folder of exported graphs (mimo_hf/deploy/hub.py) is part of the set only with
    `onnx=True` (the push config's `onnx: true`); `describe` names it when it stays local."""
    folder = Path(folder)
    files, problems = [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(ONNX_PREFIX):
            if not onnx:
                continue
            if path.suffix.lower() == ".onnx":
                files.append(hash_file(path, rel))
                continue
        if path.suffix.lower() in PICKLE_SUFFIXES:
            problems.append(f"{rel}: pickle-based file; publish weights as safetensors only")
        elif any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(folder).parts):
            problems.append(f"{rel}: hidden or cache file; remove it from the folder")
        elif path.suffix.lower() not in ALLOWED_SUFFIXES:
            problems.append(f"{rel}: unexpected file type (allowed: {', '.join(sorted(ALLOWED_SUFFIXES))})")
        else:
            files.append(hash_file(path, rel))
    return files, problems


def _scanned_bytes(path):
    """The bytes to scan: a safetensors file's JSON header only (its tensor data holds no text)."""
    data = Path(path).read_bytes()
    if path.suffix == ".safetensors" and len(data) >= 8:
        return data[8:8 + int.from_bytes(data[:8], "little")]
    return data


def secret_and_path_problems(files):
    """Token-like strings and absolute local paths in any file (the token is never echoed)."""
    problems = []
    for file in files:
        data = _scanned_bytes(file.local_path)
        for pattern, what in ((TOKEN, "a token-like string (hf_...)"), (LOCAL_PATH, "an absolute local path")):
            match = pattern.search(data)
            if match:
                line = data.count(b"\n", 0, match.start()) + 1
                shown = "hf_***" if pattern is TOKEN else match.group().decode(errors="replace")
                problems.append(f"{file.path_in_repo}:{line}: holds {what} ({shown})")
    return problems


def card_problems(push, folder, files):
    """The assembled README.md against the results JSON; the widget files."""
    from huggingface_hub import ModelCard

    from mimo_hf.hub.cards import NO_PIPELINE, check_model_index

    names = {file.path_in_repo for file in files}
    if "README.md" not in names or push.results not in names:
        return []  # reported as missing files
    problems = []
    try:
        card = ModelCard.load(Path(folder) / "README.md")
    except Exception as error:  # a card the Hub could not parse either
        return [f"README.md: the YAML metadata does not parse: {error}"]
    results = json.loads(push.results_path.read_text())
    problems += [f"README.md: {problem}" for problem in check_model_index(card, results)]
    if card.data.pipeline_tag == NO_PIPELINE:
        if card.data.to_dict().get("widget"):
            problems.append(f"README.md declares widget examples, but its pipeline tag {NO_PIPELINE!r} has no widget")
    # No widget examples is allowed (e.g. an MNIST model: the widget images are CIFAR-10 samples); the
    # load check then runs the pipeline on a synthetic input instead.
    for example in card.data.to_dict().get("widget") or []:
        if "src" in example and widget_file(push, example["src"]) not in names:
            problems.append(f"widget image {example['src']} is not a file of the folder")
    return problems


def widget_file(push, src):
    """The path in the repo of a widget `src` URL of this repo (…/resolve/<branch>/<path>)."""
    prefix = f"/{push.repo_id}/resolve/{push.branch}/"
    return src.split(prefix, 1)[1] if prefix in src else src


def generated_problems(folder):
    """[(file, why)] of the generated files a folder to publish holds. A card is always refused (the
    export renders it); model code copies are accepted only when they are the package's code byte for
    byte (a training run's Hub-ready folder `<output-dir>/hub` carries such copies), since the
    export uploads the package's code, not the folder's."""
    from mimo_hf.hub.export import CARD, CODE_ROOT, generated_files, model_type_of

    found = []
    for name in generated_files(folder):
        if name == CARD:
            found.append((name, "a hand-written card; the export renders README.md from the card template and "
                                "the folder's records, so remove it (or keep it outside the folder)"))
            continue
        try:
            package = CODE_ROOT / model_type_of(folder) / name
        except ValueError:
            package = None
        if package is None or not package.is_file() or package.read_bytes() != (Path(folder) / name).read_bytes():
            found.append((name, f"a model code copy that differs from the package's ({CODE_ROOT.name}/"
                                "<model_type>/); the export uploads the package's code, so remove the copy (a "
                                "checkpoint folder holds no model code) or re-export the run with this checkout"))
    return found


def static_problems(push, staging):
    """(assembled folder, files, problems): the push config's Hub folder assembled under `staging`, and
    everything that can be checked without running the model."""
    from mimo_hf.hub.export import assemble, generated_files

    if not push.folder_path.is_dir():
        return None, [], [f"{push.folder_label} is not a folder"]
    if not (push.folder_path / "config.json").is_file():
        return None, [], [f"{push.folder_label}: missing config.json (not a checkpoint folder)"]
    problems = [f"{push.folder_label}/{name}: {why}" for name, why in generated_problems(push.folder_path)]
    if problems:
        return None, [], problems
    folder = Path(staging) / push.repo_name
    try:
        assemble(push, folder, replace_generated=True)  # only identical code copies are left to replace
    except (ValueError, FileNotFoundError) as error:
        return None, [], problems + [f"cannot assemble the Hub folder: {error}"]
    files, found = collect_files(folder, onnx=push.onnx)
    problems += found
    if push.onnx:
        from mimo_hf.deploy.hub import onnx_problems

        problems += onnx_problems(push.folder_path)
    names = {file.path_in_repo for file in files}
    if push.results not in names:
        problems.append(f"missing {push.results}")
    if not any(name.endswith(".safetensors") for name in names):
        problems.append("missing weights: no *.safetensors file")
    problems += secret_and_path_problems(files)
    problems += card_problems(push, folder, files)
    return folder, files, problems


def synthetic_input(task, folder, directory):
    """One pipeline input for a card without widget examples: a mid-grey image of the model's size
    (written under `directory`) or a short text."""
    if task != "image-classification":
        return "a short example text"
    from PIL import Image

    config = json.loads((Path(folder) / "config.json").read_text())
    size, mode = config.get("image_size", 32), "RGB" if config.get("num_channels", 3) == 3 else "L"
    path = Path(directory) / f"{Path(folder).name}.png"
    Image.new(mode, (size, size), 128 if mode == "L" else (128, 128, 128)).save(path)
    return str(path)


def load_problems(pushes, folders):
    """Load every assembled folder in ONE fresh Python without mimo_hf (AutoConfig, every AutoModel*
    class of its auto_map, its pipeline on the widget examples); returns {config path: [problems]}."""
    from huggingface_hub import ModelCard

    from mimo_hf.hub.cards import NO_PIPELINE
    from mimo_hf.hub.isolation import run_isolated

    spec = []
    for push in pushes:
        folder = Path(folders[str(push.path)])
        card = ModelCard.load(folder / "README.md")
        inputs = [str(folder / widget_file(push, example["src"])) if "src" in example else example["text"]
                  for example in card.data.to_dict().get("widget") or []]
        task = None if card.data.pipeline_tag == NO_PIPELINE else card.data.pipeline_tag  # None: no pipeline to run
        if task and not inputs:
            inputs = [synthetic_input(task, folder, folder.parent)]  # the staging folder, beside the Hub folder
        spec.append({"folder": str(folder.resolve()), "task": task, "inputs": inputs})
    with tempfile.TemporaryDirectory(prefix="mimo-hf-load-check-") as tmp:
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        proc = run_isolated(["check", "spec.json", "reports.json"], tmp)
        if proc.returncode != 0:
            error = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit code {proc.returncode}"
            return {str(push.path): [f"does not load without mimo_hf through the Auto classes: {error}"]
                    for push in pushes}
        reports = json.loads((Path(tmp) / "reports.json").read_text())
    problems = {}
    leaked = reports.pop()["mimo_hf_modules"]
    for push, report in zip(pushes, reports):
        found = problems.setdefault(str(push.path), [])
        if leaked:
            found.append(f"loading imported mimo_hf modules {leaked}")
        if "AutoModel" not in report["auto_classes"] or len(report["models"]) < 2:
            found.append(f"config.json auto_map lists {report['auto_classes']}; it needs AutoConfig, AutoModel "
                         "and the task's AutoModelFor* class")
        for auto_name, model in report["models"].items():
            if not model["module"].startswith("transformers_modules."):
                found.append(f"{auto_name} loaded {model['class']} from {model['module']}, not from the folder's code")
            for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
                # The bare AutoModel legitimately leaves the task head's weights unused.
                if model[kind] and not (auto_name == "AutoModel" and kind == "unexpected_keys"):
                    found.append(f"{auto_name}: {kind} {model[kind][:5]}")
        for labels in report["pipeline_labels"]:
            if not set(labels) <= set(report["labels"]):
                found.append(f"the pipeline returned labels {labels} outside config.id2label")
    return problems


def validate(pushes, staging, load_check=True):
    """Assemble every push config's Hub folder under `staging` and validate it; returns
    {config path: [LocalFile]} (the files to upload, inside `staging`) or raises ValidationError."""
    repo_ids = [push.repo_id for push in pushes]
    duplicates = sorted({repo_id for repo_id in repo_ids if repo_ids.count(repo_id) > 1})
    files, problems, folders = {}, {}, {}
    for push in pushes:
        key = str(push.path)
        folders[key], files[key], problems[key] = static_problems(push, staging)
        if push.repo_id in duplicates:
            problems[key].append(f"another push config also publishes {push.repo_id}")
    if not any(problems.values()) and load_check:
        problems = load_problems(pushes, folders)
    if any(problems.values()):
        raise ValidationError({name: found for name, found in problems.items() if found})
    return files


def describe(push, files, card_text):
    """The dry run's report of one config: the assembled folder's files (path, size, sha256), i.e. the
    exact upload, and the card."""
    from mimo_hf.hub.export import CODE_ROOT

    total = sum(file.size for file in files)
    model_type = json.loads((push.folder_path / "config.json").read_text())["model_type"]
    code = (CODE_ROOT / model_type).relative_to(CODE_ROOT.parents[1])
    lines = [f"== {push.repo_id} <- {push.folder_label} (branch {push.branch}, tag {push.revision}, "
             f"{'private' if push.private else 'public'}, license {push.license})",
             f"assembled from {push.folder_label} (checkpoint files), {code.as_posix()} (model code, config.json "
             f"auto_map) and {push.template_label} (README.md)",
             f"{len(files)} files, {total} bytes; after the push the repo holds exactly these "
             "(one commit; files the Hub already has unchanged are not sent):"]
    width = max(len(file.path_in_repo) for file in files)
    lines += [f"  {file.path_in_repo:<{width}}  {file.size:>10}  sha256:{file.sha256}" for file in files]
    if not push.onnx and (push.folder_path / ONNX_PREFIX).is_dir():
        lines.append(f"  not uploaded: {ONNX_PREFIX} (exported graphs; set 'onnx: true' in {push.path.name} to publish them)")
    lines += ["--- README.md (rendered card) ---", card_text.rstrip(), f"--- end of {push.repo_id} ---", ""]
    return "\n".join(lines)


def remote_files(api, repo_id, revision):
    """{path: RepoFile} of a Hub revision (files only), from one recursive list_repo_tree."""
    return {item.path: item for item in api.list_repo_tree(repo_id, recursive=True, revision=revision)
            if hasattr(item, "blob_id") and item.path not in HUB_MANAGED}


def is_same(local, remote):
    """Whether a Hub file has the local content: LFS files by sha256, regular files by git blob id."""
    if remote is None:
        return False
    lfs = getattr(remote, "lfs", None)
    if lfs is not None:
        return lfs.sha256 == local.sha256
    return remote.blob_id == local.git_oid


def publish(api, push, files):
    """Bring the repo's branch to exactly `files` in at most one commit and tag it `push.revision`."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    api.create_repo(push.repo_id, repo_type="model", private=push.private, exist_ok=True)
    refs = api.list_repo_refs(push.repo_id, repo_type="model")
    tag = next((ref for ref in refs.tags if ref.name == push.revision), None)
    if tag is not None:
        # A published tag is a promise (cards and users pin it): it may only ever name this content.
        changed = _diff(files, remote_files(api, push.repo_id, tag.target_commit))
        if any(changed):
            raise ValueError(f"{push.repo_id}: tag {push.revision} already exists at {tag.target_commit[:12]} with "
                             f"different files ({_summary(*changed)}); set a new 'revision' in {push.path}")
        return PublishResult(push.repo_id, push.revision, tag.target_commit, committed=False)

    head = next((ref.target_commit for ref in refs.branches if ref.name == push.branch), None)
    remote = remote_files(api, push.repo_id, head) if head else {}
    added, deleted = _diff(files, remote)
    commit = head
    if added or deleted:
        operations = [CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local_path)) for f in added]
        operations += [CommitOperationDelete(path_in_repo=path) for path in deleted]
        info = api.create_commit(
            repo_id=push.repo_id, repo_type="model", operations=operations, revision=push.branch,
            parent_commit=head,  # optimistic lock: fail rather than overwrite a concurrent push
            commit_message=push.commit_message or f"Publish {push.folder_label} {push.revision} ({_summary(added, deleted)})",
            commit_description=_description(push, files),
        )
        commit = info.oid
    api.create_tag(push.repo_id, repo_type="model", tag=push.revision, revision=commit, exist_ok=True,
                   tag_message=f"{push.repo_name} {push.revision}, published from {push.folder_label} by mimo-hf")
    return PublishResult(push.repo_id, push.revision, commit, committed=bool(added or deleted),
                         added=[f.path_in_repo for f in added], deleted=deleted)


def _diff(files, remote):
    local = {f.path_in_repo for f in files}
    return [f for f in files if not is_same(f, remote.get(f.path_in_repo))], sorted(set(remote) - local)


def _summary(added, deleted):
    return f"{len(added)} added or updated, {len(deleted)} deleted"


def _description(push, files):
    lines = [f"Hub-ready folder `{push.folder_label}` of mimo-hf, validated by scripts/push_to_hub.py: safetensors "
             "weights only, no tokens or local paths, model-index equal to the results JSON, card rendered from "
             f"`{push.template_label}`, loads with trust_remote_code=True without mimo_hf.", "", "Files (sha256):"]
    return "\n".join(lines + [f"- {f.path_in_repo} {f.sha256}" for f in files])


def make_api():
    """An HfApi that authenticates from the usual sources; exits early when there is no token."""
    from huggingface_hub import HfApi, get_token

    if get_token() is None:
        sys.exit("no Hugging Face token found: run `hf auth login` or set HF_TOKEN")
    return HfApi(library_name="mimo-hf")


def push_to_hub(config_paths, dry_run=False, api=None):
    """scripts/push_to_hub.py: assemble and validate every push config's folder, then print them (dry
    run) or publish them through `api` (default: `make_api()`); exits with the problems on failure."""
    from mimo_hf.hub.push_config import PushConfigError, load_push_config

    with tempfile.TemporaryDirectory(prefix="mimo-hf-push-") as staging:
        try:
            pushes = [load_push_config(path) for path in config_paths]
            files = validate(pushes, staging)
        except (PushConfigError, ValidationError) as error:
            sys.exit(str(error))
        if dry_run:
            for push in pushes:
                card = next(file for file in files[str(push.path)] if file.path_in_repo == "README.md")
                print(describe(push, files[str(push.path)], card.local_path.read_text(encoding="utf-8")))
            print(f"dry run: {len(pushes)} repo(s) assembled and validated, nothing uploaded")
            return []
        api = api or make_api()
        results = []
        for push in pushes:
            result = publish(api, push, files[str(push.path)])
            action = (f"committed {len(result.added)} file(s), deleted {len(result.deleted)}" if result.committed
                      else "unchanged, no commit")
            print(f"{push.repo_id}: {action}; tag {result.revision} -> {result.commit}")
            results.append(result)
        return results
