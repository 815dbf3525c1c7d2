#!/usr/bin/env python
"""Publish zoo folders to the Hugging Face Hub as described by push configs.

Each config (push_configs/*.yaml) names the Hub repo and the folder; the folder must hold a model card
(scripts/write_model_card.py) and safetensors weights. Needs a token (`hf auth login` or HF_TOKEN).

Example: python scripts/push_to_hub.py push_configs/*.yaml --dry-run
"""

import argparse
from pathlib import Path

from mimo_hf.publishing import files_to_publish, load_push_config, publish

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", help="push config YAML files")
    p.add_argument("--dry-run", action="store_true", help="list what would be uploaded, upload nothing")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing to the revision")
    args = p.parse_args(argv)
    api = None
    for path in args.configs:
        config = load_push_config(path)
        folder = ROOT / config["folder"]
        if args.dry_run:
            print(f"{config['repo_id']}@{config.get('revision', 'main')}: {', '.join(files_to_publish(folder))}")
            continue
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi(library_name="mimo-hf")
        info = publish(api, config["repo_id"], folder, revision=config.get("revision", "main"),
                       commit_message=config.get("commit_message"), private=config.get("private", False),
                       create_pr=args.create_pr)
        print(f"{config['repo_id']}: {getattr(info, 'commit_url', info)}")


if __name__ == "__main__":
    main()
