#!/usr/bin/env python
"""Train MIMOConv with the paper's recipe (see `--help`). Works under `accelerate launch`.

Examples:
    python scripts/train_mimoconv.py --data-dir ../shared/data/cifar10 --num-superpositions 4 \\
        --depth 16 --width 4 --epochs 30 --output-dir runs/mimoconv-16-4-n4
    accelerate launch --num_processes 2 scripts/train_mimoconv.py ... --resume latest
"""

import sys

from mimo_hf.data import DataError
from mimo_hf.training.engine import RunRefused
from mimo_hf.training.mimoconv import train
from mimo_hf.training.recipes import MIMOConvRecipe

if __name__ == "__main__":
    try:
        recipe = MIMOConvRecipe.from_flags()
    except (ValueError, FileNotFoundError) as error:  # flags that contradict each other, the data or the checkpoint
        MIMOConvRecipe.parser().error(str(error))
    try:
        train(recipe)
    # A previous run in --output-dir or a resume with other recipe flags; own data that cannot be used as given.
    except (RunRefused, DataError, FileNotFoundError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
