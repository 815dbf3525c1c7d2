#!/usr/bin/env python
"""Generate the ListOps dataset of the Long Range Arena with the published LRA rules.

Writes {train,validation,test}-00000-of-00001.parquet (columns text, label) and generation.json into
--output-dir; load it with mimo_hf.data.lra.load_lra_task("listops", split, data_dir=OUTPUT_DIR).
The output depends only on the settings and --seed, never on --workers.

Presets (mimo_hf.data.listops.LISTOPS_PRESETS; explicit flags override a preset's values):
  lra  the LRA ListOps task: 96000 / 2000 / 2000 expressions with 500 < tokens < 2000
  cpu  "ListOps-CPU", a smaller and shorter variant for CPU-only runs: 20000 / 1000 / 1000 expressions with
       100 < tokens < 500 (same rules otherwise; its scores are not comparable with LRA ListOps scores)

Examples:
    python scripts/generate_listops.py --output-dir data/listops-lra                 # LRA size
    python scripts/generate_listops.py --preset cpu --output-dir data/listops-cpu
    python scripts/generate_listops.py --preset cpu --train-size 2000 --output-dir data/listops-tiny
"""

import argparse
import os
import time

from mimo_hf.data.listops import LISTOPS_PRESETS, write_listops_dataset
from mimo_hf.settings import HelpFormatter


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--output-dir", required=True, default=argparse.SUPPRESS,
                   help="folder to write the parquet splits and generation.json into")
    p.add_argument("--preset", choices=sorted(LISTOPS_PRESETS), default="lra", help="sizes and length range to start from")
    # default=SUPPRESS: the attribute is absent unless given, so the preset fills it (and --help shows no "None").
    preset_flag = {"default": argparse.SUPPRESS, "type": int}
    p.add_argument("--train-size", help="training expressions (default: from --preset)", **preset_flag)
    p.add_argument("--validation-size", help="validation expressions (default: from --preset)", **preset_flag)
    p.add_argument("--test-size", help="test expressions (default: from --preset)", **preset_flag)
    p.add_argument("--min-length", help="keep expressions with more than this many tokens (default: from --preset)",
                   **preset_flag)
    p.add_argument("--max-length", help="keep expressions with fewer than this many tokens (default: from --preset)",
                   **preset_flag)
    p.add_argument("--max-depth", type=int, default=10, help="deepest nesting; the root is depth 1 (LRA: 10)")
    p.add_argument("--max-args", type=int, default=10, help="most arguments of one operator (LRA: 10)")
    p.add_argument("--seed", type=int, default=0, help="the data depend only on this and the settings above")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="generator processes (changes the speed only, never the data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    preset = LISTOPS_PRESETS[args.preset]
    for key in ("train_size", "validation_size", "test_size", "min_length", "max_length"):
        if not hasattr(args, key):
            setattr(args, key, getattr(preset, key))
    return args


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    record = write_listops_dataset(
        args.output_dir, args.train_size, args.validation_size, args.test_size, args.min_length, args.max_length,
        args.seed, max_depth=args.max_depth, max_args=args.max_args, workers=args.workers,
        progress=not args.no_progress)
    seconds = time.perf_counter() - start
    sizes = "/".join(str(size) for size in record["splits"].values())
    print(f"wrote {sizes} (train/validation/test) ListOps expressions with {args.min_length} < tokens < "
          f"{args.max_length} to {args.output_dir} in {seconds:.1f} s using {args.workers} worker(s)")
    return record


if __name__ == "__main__":
    main()
