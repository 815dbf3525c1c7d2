#!/usr/bin/env python
"""Rebuild Hub-ready folders from their committed checkpoints: model card (README.md), widget images, code.

The folder's copies of the model code are refreshed from mimo_hf/<architecture>/ (a Hub user runs
those copies as remote code).

The card comes from the push config's template (model_cards/<architecture>.md) and the folder's JSON
files (config.json, the results JSON, training_args.json, metrics_history.json); never edit README.md
by hand. Folders are named by push config or by folder (the push config whose 'folder' it is).

Examples:
    python scripts/write_model_card.py --all                 # every push_configs/*.yaml
    python scripts/write_model_card.py zoo/mimoconv16-2-n4   # one folder
    python scripts/write_model_card.py --all --check         # exit 1 if any card is out of date
"""

import argparse
import sys
from pathlib import Path

from mimo_hf.hub.export import sync_model_code
from mimo_hf.hub.cards import render_card, write_card
from mimo_hf.hub.push_config import load_push_configs

ROOT = Path(__file__).resolve().parents[1]


def select(configs, names):
    """The push configs named by config path or folder; exits with the names no config matches."""
    by_key = {}
    for push in configs:
        by_key[push.path.resolve()] = push
        by_key[push.folder_path.resolve()] = push
    missing = [name for name in names if Path(name).resolve() not in by_key]
    if missing:
        sys.exit(f"no push config in {ROOT / 'push_configs'} names {missing}; add push_configs/<repo-name>.yaml")
    return [by_key[Path(name).resolve()] for name in names]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("targets", nargs="*", help="push configs or Hub-ready folders")
    p.add_argument("--all", action="store_true", help="every push config in push_configs/")
    p.add_argument("--configs", default=str(ROOT / "push_configs"),
                   help="folder of push configs (default: push_configs/)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a card is not the rendered one")
    args = p.parse_args(argv)
    if args.all == bool(args.targets):
        p.error("name push configs or folders, or pass --all")
    configs = load_push_configs(args.configs)
    pushes = configs if args.all else select(configs, args.targets)
    stale = []
    for push in pushes:
        if args.check:
            readme = push.folder_path / "README.md"
            if not readme.is_file() or readme.read_text(encoding="utf-8") != str(render_card(push)):
                stale.append(push.folder)
            elif sync_model_code(push.folder_path, check=True):
                stale.append(push.folder)
            continue
        written = [Path(name) for name in sync_model_code(push.folder_path)] + list(write_card(push))
        print(f"{push.folder}: " + (", ".join(path.name for path in written) if written else "up to date"))
    if stale:
        sys.exit(f"out of date card or code (run python scripts/write_model_card.py --all): {', '.join(stale)}")


if __name__ == "__main__":
    main()
