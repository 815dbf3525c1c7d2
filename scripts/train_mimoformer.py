#!/usr/bin/env python
"""Train MIMOFormer on a Long Range Arena task with the authors' recipe (see `--help`). Works under `accelerate launch`.

Examples:
    python scripts/generate_listops.py --preset cpu --output-dir data/listops-cpu
    python scripts/train_mimoformer.py --task listops --data-dir data/listops-cpu --max-length 512 \\
        --attention-type mimo_att --mimo-m 4 --mimo-n 4 --output-dir runs/listops-att
    python scripts/train_mimoformer.py --task image --attention-type performer --output-dir runs/image-performer
    accelerate launch --num_processes 2 scripts/train_mimoformer.py ... --resume latest
"""

from mimo_hf.training.engine import run_training_script
from mimo_hf.training.mimoformer import train
from mimo_hf.training.recipes import MIMOFormerRecipe

if __name__ == "__main__":
    run_training_script(MIMOFormerRecipe, train)
