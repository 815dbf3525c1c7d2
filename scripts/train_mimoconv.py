#!/usr/bin/env python
"""Train MIMOConv with the paper's recipe (see `--help`). Works under `accelerate launch`.

Examples:
    python scripts/train_mimoconv.py --data-dir ../shared/data/cifar10 --num-superpositions 4 \\
        --depth 16 --width 4 --epochs 30 --output-dir runs/mimoconv-16-4-n4
    accelerate launch --num_processes 2 scripts/train_mimoconv.py ... --resume latest
"""

from mimo_hf.training.engine import run_training_script
from mimo_hf.training.mimoconv import train
from mimo_hf.training.recipes import MIMOConvRecipe

if __name__ == "__main__":
    run_training_script(MIMOConvRecipe, train)
