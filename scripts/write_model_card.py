#!/usr/bin/env python
"""Write README.md (the model card) into Hub-ready folders from their results and training JSON.

Example: python scripts/write_model_card.py zoo/*
"""

import argparse

from mimo_hf.model_card import write_model_card


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="Hub-ready folders holding config.json and eval_results.json")
    p.add_argument("--repo-id", default=None, help="Hub repo id to name in the card (only with one folder)")
    args = p.parse_args(argv)
    if args.repo_id and len(args.folders) != 1:
        p.error("--repo-id needs exactly one folder")
    for folder in args.folders:
        write_model_card(folder, repo_id=args.repo_id)
        print(f"wrote {folder}/README.md")


if __name__ == "__main__":
    main()
