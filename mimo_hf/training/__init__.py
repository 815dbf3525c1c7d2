"""Stage 2, training: typed recipes, the shared run/checkpoint engine, and one training loop per architecture."""
