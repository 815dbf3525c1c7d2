"""Helpers for tests that load Hub-ready folders as a Hub user does. No mimo_hf, torch or
transformers import here: the transformers-4.x leg and the mimo_hf-free child processes use it too.

Hub-id loading offline: with HF_HUB_OFFLINE=1, `from_pretrained("org/name", revision=...)` resolves `revision` (a branch
through refs/<branch>, or a commit hash directly) to `<cache>/models--org--name/snapshots/<commit>/`
and reads the files there, exactly as it would after a real download. No mimo_hf import here: the
transformers-4.x leg uses this helper too.
"""

import hashlib
import importlib.abc
import shutil
from pathlib import Path


class BlockMimoHf(importlib.abc.MetaPathFinder):
    """A new user's machine: `import mimo_hf` fails. Install with sys.meta_path.insert(0, ...)."""

    def find_spec(self, name, path=None, target=None):
        if name == "mimo_hf" or name.startswith("mimo_hf."):
            raise ImportError(f"blocked for this test: {name}")
        return None


def operating_point_kwargs(config):
    """{name: per-call kwargs} of every operating point of a loaded config.

    MIMOConv: k inputs per bundle, `num_superpositions=k` for every divisor k of N.
    MIMOFormer: an (m, n) grid, `mimo_grid=(m, n)`, m <= M, n <= N.
    Anything else: one point, the plain call.
    """
    if hasattr(config, "mimo_m") and hasattr(config, "mimo_n"):
        return {f"grid={m}x{n}": {"mimo_grid": (m, n)} for m, n in config.operating_points}
    if hasattr(config, "operating_points") and hasattr(config, "num_superpositions"):
        return {f"k={k}": {"num_superpositions": k} for k in config.operating_points}
    return {"default": {}}


def folder_commit(folder):
    """A stable 40-hex 'commit' for a folder's content (what a Hub commit hash looks like)."""
    digest = hashlib.sha1()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def prefill_hub_cache(folder, hub_cache, repo_id, commit=None, branch="main"):
    """Copy `folder` to `hub_cache` as snapshot `commit` of model repo `repo_id`; return the commit.

    `hub_cache` is what HF_HUB_CACHE points at (HF_HOME/hub by default). `branch` gets a ref file
    naming the commit, so loading without a revision (or with revision=branch) finds it too.
    """
    commit = commit or folder_commit(folder)
    repo_dir = Path(hub_cache) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    if snapshot.exists():
        shutil.rmtree(snapshot)
    shutil.copytree(folder, snapshot)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / branch).write_text(commit)
    return commit
