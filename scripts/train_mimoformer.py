#!/usr/bin/env python
"""Train MIMOFormer on a Long Range Arena task with the authors' recipe (see `--help`). Works under `accelerate launch`.

Examples:
    python scripts/generate_listops.py --preset cpu --output-dir data/listops-cpu
    python scripts/train_mimoformer.py --task listops --data-dir data/listops-cpu --max-length 512 \\
        --attention-type mimo_att --mimo-m 4 --mimo-n 4 --output-dir runs/listops-att
    python scripts/train_mimoformer.py --task image --attention-type performer --output-dir runs/image-performer
    accelerate launch --num_processes 2 scripts/train_mimoformer.py ... --resume latest
"""

import sys

from mimo_hf.data import DataError
from mimo_hf.training.engine import RunRefused
from mimo_hf.training.mimoformer import train
from mimo_hf.training.recipes import MIMOFormerRecipe

if __name__ == "__main__":
    try:
        recipe = MIMOFormerRecipe.from_flags()
    except (ValueError, FileNotFoundError) as error:  # flags that contradict each other, the data or the checkpoint
        MIMOFormerRecipe.parser().error(str(error))
    try:
        train(recipe)
    # A previous run in --output-dir or a resume with other recipe flags; own data that cannot be used as given.
    except (RunRefused, DataError, FileNotFoundError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
