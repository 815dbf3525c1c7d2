#!/usr/bin/env python
"""Assemble Hub folders from checkpoint folders: exactly what scripts/push_to_hub.py uploads, written to disk.

A Hub folder is the checkpoint folder's files (zoo/<name>/: weights, config, preprocessor, results,
records, plot, widget images) plus the model code of mimo_hf/models/<architecture>/ (config.json gets
its auto_map) plus README.md, the card rendered from the push config's template. Targets are push
config files (the zoo's push_configs/*.yaml, or your own anywhere: see mimo_hf/hub/push_config.py for
the schema and where relative paths start), or checkpoint folders that a config in --configs publishes.
Every target is assembled and validated (the checks of push_to_hub.py) before anything is written.

--checkpoint-only turns a Hub-ready folder (e.g. a training run's <output-dir>/hub, which carries a copy
of the code) into a checkpoint folder for zoo/: its files without model code, card or auto_map.
--widget-images rewrites the images the cards show (taken from the shipped CIFAR-10 sample) in the
checkpoint folders themselves (they are committed, so their bytes never change between exports).

Examples:
    python scripts/export_hub_folder.py --all --output runs/hub                     # every push config
    python scripts/export_hub_folder.py zoo/mimoconv16-2-n4 --output runs/hub        # one folder
    python scripts/export_hub_folder.py my-run/push.yaml --output runs/my-hub        # your own config
    python scripts/export_hub_folder.py runs/x/hub --checkpoint-only --output zoo/x  # a run into the zoo
    python scripts/export_hub_folder.py --all --widget-images                        # refresh zoo/*/example_*.png
"""

import argparse
from pathlib import Path

from mimo_hf.hub.export import export_targets

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("targets", nargs="*", help="push configs or checkpoint folders (with --checkpoint-only: one folder)")
    p.add_argument("--all", action="store_true", help="every push config in --configs")
    p.add_argument("--configs", default=str(ROOT / "push_configs"), help="folder of push configs (default: push_configs/)")
    p.add_argument("--output", default=None,
                   help="where to write: a new folder holding one Hub folder per target (named like its repo); "
                   "with --checkpoint-only the new checkpoint folder itself")
    p.add_argument("--checkpoint-only", action="store_true",
                   help="write the target's checkpoint files only (no model code, card or auto_map), e.g. into zoo/")
    p.add_argument("--widget-images", action="store_true", help="rewrite the cards' widget images in the checkpoint folders")
    p.add_argument("--skip-load-check", action="store_true",
                   help="skip loading each assembled folder in a fresh Python without mimo_hf (the static checks "
                   "still run); push_to_hub.py never skips it")
    args = p.parse_args(argv)
    if args.all == bool(args.targets):
        p.error("name push configs or folders, or pass --all")
    if (args.output is None) == (not args.widget_images):
        p.error("pass --output DIR (assemble) or --widget-images (refresh the checkpoint folders' images)")
    return export_targets(args.targets, args.configs, output=args.output, every=args.all,
                          checkpoint_only=args.checkpoint_only, widget_images=args.widget_images,
                          load_check=not args.skip_load_check)


if __name__ == "__main__":
    main()
