#!/usr/bin/env python
"""Write small example datasets in the formats users bring, for the README's "Fine-tune on your data".

Examples:
    python scripts/write_example_data.py image-folder --data-dir ../shared/data/mnist --per-class 30 \\
        --output data/mnist-folder/train
    python scripts/write_example_data.py text-csv --data-dir ../shared/data/imdb --per-class 50 \\
        --output data/imdb-reviews/train.csv

image-folder: <output>/<class name>/<split>-<row>.png, `--per-class` images of every class (rows `--skip`
onwards of each class, in file order: a second call with --skip writes disjoint images, e.g. a validation
folder). text-csv: a CSV with columns `review`, `sentiment` (the class names). Nothing is overwritten.
"""

import argparse

from mimo_hf.data.examples import write_image_folder, write_text_csv

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["image-folder", "text-csv"])
    parser.add_argument("--data-dir", required=True, help="folder of {split}-*.parquet shards in the Hub schema")
    parser.add_argument("--split", default="train", help="split to read (default: train)")
    parser.add_argument("--per-class", type=int, default=20, help="examples of every class (default: 20)")
    parser.add_argument("--skip", type=int, default=0, help="skip the first N rows of every class (default: 0)")
    parser.add_argument("--output", required=True, help="new folder (image-folder) or .csv file (text-csv)")
    args = parser.parse_args()
    write = write_image_folder if args.kind == "image-folder" else write_text_csv
    count = write(args.data_dir, args.output, split=args.split, per_class=args.per_class, skip=args.skip)
    print(f"wrote {count} examples to {args.output}")
