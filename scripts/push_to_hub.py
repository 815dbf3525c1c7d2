#!/usr/bin/env python
"""Publish Hub-ready folders to the Hugging Face Hub, one repo per push config (push_configs/*.yaml).

Every folder is validated before anything is uploaded: safetensors weights only, no token-like string
or absolute local path in any file, README.md is the card rendered from the template with a
model-index equal to the results JSON, and the folder loads through the Auto classes with
trust_remote_code=True in a fresh Python without mimo_hf. Then, per config: create the repo if
needed, upload what changed in one commit, tag it with the config's revision. Unchanged content
makes no commit.

The token comes from huggingface_hub's usual sources (`hf auth login`, or the HF_TOKEN environment
variable); it is never printed, written or accepted on the command line.

Examples:
    python scripts/push_to_hub.py push_configs/*.yaml --dry-run   # what would be uploaded, no network
    python scripts/push_to_hub.py push_configs/*.yaml             # publish the whole zoo
"""

import argparse
import sys

from mimo_hf.hub.publishing import ValidationError, describe, publish, validate
from mimo_hf.hub.push_config import PushConfigError, load_push_config


def make_api():
    """An HfApi that authenticates from the usual sources; exits early when there is no token."""
    from huggingface_hub import HfApi, get_token

    if get_token() is None:
        sys.exit("no Hugging Face token found: run `hf auth login` or set HF_TOKEN")
    return HfApi(library_name="mimo-hf")


def main(argv=None, api=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", help="push config YAML files (push_configs/*.yaml)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate, then print the exact files (path, size, sha256) and each card; no network")
    args = p.parse_args(argv)
    try:
        pushes = [load_push_config(path) for path in args.configs]
        files = validate(pushes)
    except (PushConfigError, ValidationError) as error:
        sys.exit(str(error))
    if args.dry_run:
        for push in pushes:
            # validate() has just checked that README.md is exactly the rendered card.
            print(describe(push, files[str(push.path)], (push.folder_path / "README.md").read_text(encoding="utf-8")))
        print(f"dry run: {len(pushes)} repo(s) validated, nothing uploaded")
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


if __name__ == "__main__":
    main()
