"""The flags of the zoo's CIFAR-10 runs (scripts/train_zoo.py) and of the recipe study's trunk
(scripts/recipe_study.py): one place, so the study's proxies and the zoo train the same models."""

TRUNK = ["--depth", "16", "--width", "2"]
# The Wide ResNet baseline: no binding, plain ReLU, no MIMO regularisers.
BASELINE = ["--num-superpositions", "1", "--binding", "none", "--initial-width", "1", "--activation", "relu",
            "--isometry-coef", "0", "--binding-coef", "0"]
# MIMOConv with the zoo's 32-channel stem (initial width 2).
MIMOCONV = ["--binding", "hrr", "--activation", "prelu", "--initial-width", "2"]

ZOO_RUNS = {
    "wrn16-2-baseline": ["--preset", "fast", *BASELINE],
    "mimoconv16-2-n4": ["--preset", "fast", "--num-superpositions", "4", *MIMOCONV],
    "mimoconv16-2-n2": ["--preset", "fast", "--num-superpositions", "2", *MIMOCONV],
    # k = 4 on 80% of the steps, k = 1 on the rest (the paper's dynamic recipe).
    "mimoconv16-2-n4-dynamic": ["--preset", "fast", "--num-superpositions", "4", *MIMOCONV,
                                "--full-capacity-prob", "0.8", "--low-superpositions", "1"],
}
