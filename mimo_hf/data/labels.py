"""Class names of the datasets and tasks this package knows, in label order: the one place they are written.

Loaders take the names from the data where it has them (a ClassLabel feature); these are for what
has no data at hand: converted checkpoints, the LRA task registry, the cards' widget examples.
"""

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DIGITS = tuple(str(d) for d in range(10))  # MNIST classes, and ListOps values
IMDB = ("neg", "pos")
RETRIEVAL = ("unrelated", "related")
PATHFINDER = ("disconnected", "connected")

# Short dataset name -> class names (the image datasets with fixed names; CIFAR-100 has none here).
BY_DATASET = {"cifar10": CIFAR10, "mnist": DIGITS}
