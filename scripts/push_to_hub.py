#!/usr/bin/env python
"""Publish checkpoint folders to the Hugging Face Hub, one repo per push config (push_configs/*.yaml).

Each push config's Hub folder is assembled in a temporary folder (the checkpoint folder's files, the
model code of mimo_hf/models/<architecture>/ with config.json's auto_map, and README.md rendered from
the card template) and validated before anything is uploaded: safetensors weights only, no token-like
string or absolute local path in any file, a model-index equal to the results JSON, and the folder
loads through the Auto classes with trust_remote_code=True in a fresh Python without mimo_hf. Then,
per config: create the repo if needed, upload what changed in one commit, tag it with the config's
revision. Unchanged content makes no commit. The dry run prints the assembled folder: every file
(path, size, sha256) and the card.

The token comes from huggingface_hub's usual sources (`hf auth login`, or the HF_TOKEN environment
variable); it is never printed, written or accepted on the command line.

Your own model: train it (its Hub-ready folder is <output-dir>/hub), evaluate it into a results JSON in
that folder, and write a push config anywhere (schema and where relative paths start:
mimo_hf/hub/push_config.py; `card_template` defaults to the architecture's template). Every config is
validated before anything is written or uploaded.

Examples:
    python scripts/push_to_hub.py push_configs/*.yaml --dry-run   # what would be uploaded, no network
    python scripts/push_to_hub.py push_configs/*.yaml             # publish the whole zoo
    python scripts/push_to_hub.py my-run/push.yaml --dry-run      # your own config, anywhere
"""

import argparse

from mimo_hf.hub.publishing import make_api, push_to_hub


def main(argv=None, api=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", help="push config YAML files (push_configs/*.yaml, or your own anywhere)")
    p.add_argument("--dry-run", action="store_true",
                   help="assemble and validate, then print the assembled folders' files (path, size, sha256) and "
                   "each card; no network")
    args = p.parse_args(argv)
    return push_to_hub(args.configs, dry_run=args.dry_run, api=api)


__all__ = ["main", "make_api"]

if __name__ == "__main__":
    main()
