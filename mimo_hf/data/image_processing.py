"""Per-dataset normalisation and the stock image processor saved beside every checkpoint."""

# Channel mean and std of the training images (spec section 2; MNIST: the canonical values).
DATASET_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "mnist": ((0.1307,), (0.3081,)),
}


def dataset_stats(name):
    """(mean, std) for a dataset name such as "cifar10" or a Hub id such as "uoft-cs/cifar10"."""
    key = name.rsplit("/", 1)[-1].lower()
    if key not in DATASET_STATS:
        raise ValueError(f"no normalisation statistics for dataset {name!r}; known: {sorted(DATASET_STATS)}")
    return DATASET_STATS[key]


def make_image_processor(dataset="cifar10", image_size=32):
    """A `ViTImageProcessor` that converts to RGB, resizes to image_size x image_size, scales to [0, 1] and
    normalises (grayscale datasets: the same statistics on all three channels; see below).

    A built-in processor class keeps `preprocessor_config.json` loadable by stock `transformers`,
    which is what pipelines and Hub users need.
    """
    from transformers.utils import logging

    mean, std = dataset_stats(dataset)
    if len(mean) == 1:
        # A grayscale model: every picture (L, RGB, RGBA) becomes RGB, normalised with the dataset's one
        # mean and std on each channel; the model reduces the 3 channels to luminance (ITU-R 601-2,
        # PIL's "L" weights, summing to 1), which on these normalised channels is the normalised
        # luminance. A 1-channel processor would fail on RGB pictures ("mean must have 1 element").
        mean, std = mean * 3, std * 3
    # Let pipelines accept grayscale or RGBA pictures for RGB models, and RGB ones for grayscale models.
    extra = {"do_convert_rgb": True}
    # Without torchvision, transformers warns that it falls back to its PIL backend; the saved
    # `image_processor_type` stays "ViTImageProcessor", loadable everywhere, so the warning is noise.
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        from transformers import ViTImageProcessor

        processor = ViTImageProcessor(
            do_resize=True,
            size={"height": image_size, "width": image_size},
            resample=3,  # bicubic; a no-op for images that already have the target size
            do_rescale=True,
            rescale_factor=1 / 255,
            do_normalize=True,
            image_mean=list(mean),
            image_std=list(std),
            **extra,
        )
    finally:
        logging.set_verbosity(verbosity)
    return processor
