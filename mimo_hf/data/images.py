"""Image classification data: load a Hub dataset (or a local parquet copy) into one uint8 tensor.

The datasets used here are small (CIFAR: 50k x 3 x 32 x 32 = 150 MB as uint8), so every image is decoded
once, up front, and training reads batches by indexing a tensor. That keeps JPEG/PNG decoding out of
the training loop and makes augmentation a batched tensor operation (see `data.augment`).
"""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from mimo_hf.data import DataError


@dataclass(frozen=True)
class DatasetInfo:
    """Column names and pixel mode of one image classification dataset on the Hub."""

    name: str  # short name, the key of `image_processing.DATASET_STATS`
    image_column: str
    label_column: str
    mode: str  # PIL mode every image is converted to: "RGB" (C=3) or "L" (C=1)


# The 1,000 CIFAR-10 test images shipped with the package (the offline default of evaluation and the
# source of the cards' widget images).
CIFAR10_SAMPLE_DIR = Path(__file__).resolve().parents[1] / "samples" / "cifar10"
CIFAR10_SAMPLE = CIFAR10_SAMPLE_DIR / "test-00000-of-00001.parquet"

# Hub id -> schema. A local `data_dir` must hold parquet shards in the same schema as the Hub id.
DATASETS = {
    "uoft-cs/cifar10": DatasetInfo("cifar10", "img", "label", "RGB"),
    "uoft-cs/cifar100": DatasetInfo("cifar100", "img", "fine_label", "RGB"),
    "ylecun/mnist": DatasetInfo("mnist", "image", "label", "L"),
}


@dataclass
class ImageTensors:
    """A decoded image classification split, ready for batched indexing."""

    images: torch.Tensor  # (n, C, H, W) uint8
    labels: torch.Tensor  # (n,) int64
    label_names: list  # list[str], index = label id
    dataset: str  # short name ("cifar10", ...), selects the normalisation statistics
    formats: tuple = ()  # the stored images' file formats (PIL names, e.g. ("JPEG",)): what results may say

    def __len__(self):
        """Number of examples."""
        return self.labels.shape[0]

    def tensors(self):
        """{"pixel_values": (n, C, H, W) uint8, "labels": (n,)}: what a batch dict holds (`data.batches`)."""
        return {"pixel_values": self.images, "labels": self.labels}

    def subset(self, indices):
        """A new ImageTensors holding the examples at `indices` (a 1-D index tensor)."""
        return ImageTensors(self.images[indices], self.labels[indices], list(self.label_names), self.dataset,
                            self.formats)


def dataset_info(dataset):
    """The `DatasetInfo` for a Hub id ("uoft-cs/cifar10") or a short name ("cifar10")."""
    if dataset in DATASETS:
        return DATASETS[dataset]
    for info in DATASETS.values():
        if info.name == dataset:
            return info
    known = sorted(DATASETS) + sorted(info.name for info in DATASETS.values())
    raise DataError(f"unknown dataset {dataset!r}: its image and label columns are not known; known: {known}")


def datasets_with_columns(columns):
    """The Hub ids of `DATASETS` whose image and label columns are all among `columns` (a data folder's schema)."""
    return [hub_id for hub_id, info in DATASETS.items()
            if info.image_column in columns and info.label_column in columns]


def detect_dataset(data_dir, split="train"):
    """The Hub id whose schema a local parquet folder has (read from its first `split` shard's schema,
    nothing decoded), or None when no known schema or several fit, or the folder has no such shard (then the
    loader's error says what is missing)."""
    import pyarrow.parquet as pq

    shards = sorted(Path(data_dir).glob(f"{split}-*.parquet"))
    if not shards:
        return None
    fitting = datasets_with_columns(pq.read_schema(shards[0]).names)
    return fitting[0] if len(fitting) == 1 else None


def label_tensor(table, column="label"):
    """(n,) int64 tensor of an Arrow table's label column."""
    return torch.from_numpy(table.column(column).to_numpy().astype(np.int64))


def download_split(hub_id, split):
    """`datasets.load_dataset(hub_id, split=split)`; offline (or the Hub unreachable) with the split not cached,
    a `DataError` that says how to use a local copy instead."""
    from datasets import load_dataset

    try:
        return load_dataset(hub_id, split=split)
    except ConnectionError as error:
        raise DataError(f"{hub_id} could not be downloaded ({error}); pass --data-dir with its "
                        f"{split}-*.parquet files (the Hub layout) to use a local copy") from None


def parquet_shards(data_dir, split):
    """The `{split}-*.parquet` shards of a local folder in the Hub layout, sorted; clear errors if there are none."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"data directory {str(folder)!r} does not exist")
    shards = sorted(folder.glob(f"{split}-*.parquet"))
    if not shards:
        found = sorted(p.name for p in folder.glob("*.parquet"))
        raise FileNotFoundError(f"no parquet shards {split}-*.parquet in {str(folder)!r}; found: {found}")
    return shards


def load_image_dataset(dataset="uoft-cs/cifar10", data_dir=None, split="train"):
    """Load one split as an `ImageTensors`, every image decoded once.

    dataset: a Hub id or short name from `DATASETS` (it fixes the column names and the pixel mode).
    data_dir: optional local folder of parquet shards named `{split}-*.parquet` in the Hub schema
      (e.g. `shared/data/cifar10`); without it the Hub id is loaded with `datasets.load_dataset`.
    """
    from datasets import ClassLabel, Image, load_dataset

    info = dataset_info(dataset)
    if data_dir is None:
        hub_id = next(key for key, value in DATASETS.items() if value is info)
        ds = download_split(hub_id, split)
    else:
        shards = parquet_shards(data_dir, split)
        # Only this split's files are given, so `datasets` prepares (caches) only this split.
        ds = load_dataset("parquet", data_files={split: [str(p) for p in shards]}, split=split)

    for column in (info.image_column, info.label_column):
        if column not in ds.column_names:
            fitting = datasets_with_columns(ds.column_names)
            hint = (f"; these columns are the schema of {' or '.join(fitting)}: pass --dataset {fitting[0]}"
                    if fitting else "")
            raise DataError(f"{dataset!r} split {split!r} has no column {column!r}; columns: {ds.column_names}{hint}")

    label_feature = ds.features[info.label_column]
    labels = label_tensor(ds.data, info.label_column)  # (n,)
    if isinstance(label_feature, ClassLabel):
        label_names = list(label_feature.names)
    else:  # plain integer labels: name them by their id
        label_names = [str(i) for i in range(int(labels.max()) + 1 if len(labels) else 0)]

    # Read the encoded bytes straight from Arrow: decode=False skips datasets' per-row PIL objects.
    column = ds.cast_column(info.image_column, Image(decode=False)).data.column(info.image_column)
    formats = []
    images = decode_images(column.combine_chunks(), info.mode, formats)
    return ImageTensors(images, labels, label_names, info.name, tuple(sorted(set(formats))))


def decode_images(column, mode, formats=None):
    """Decode an Arrow struct<bytes, path> column into one (n, C, H, W) uint8 tensor in PIL `mode`;
    `formats` (a list), when given, receives each image's stored file format."""
    blobs = column.field("bytes").to_pylist()
    paths = column.field("path").to_pylist()
    n = len(blobs)
    channels = {"RGB": 3, "L": 1}[mode]
    out = None  # (n, H, W, C) uint8, allocated once the first image gives H and W
    for i, (blob, path) in enumerate(zip(blobs, paths)):
        image = PIL.Image.open(io.BytesIO(blob) if blob is not None else path)
        if formats is not None:
            formats.append(image.format)
        if image.mode != mode:
            image = image.convert(mode)
        array = np.asarray(image).reshape(image.height, image.width, channels)  # (H, W, C)
        if out is None:
            out = np.empty((n, *array.shape), dtype=np.uint8)
        elif array.shape != out.shape[1:]:
            raise DataError(f"image {i} has shape {array.shape}, expected {out.shape[1:]} like image 0")
        out[i] = array
    if out is None:
        raise DataError("the split has no images")
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # (n, C, H, W)


def train_validation_split(data, validation_size=5000, seed=0):
    """Split a training set into disjoint (train, validation) parts with a seeded permutation.

    Hyper-parameters are tuned on this held-out part of the training data, never on the test split.
    """
    n = len(data)
    if not 0 < validation_size < n:
        raise DataError(f"validation_size must be in [1, {n - 1}] for {n} examples, got {validation_size}")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    # Sorting each part keeps the stored row order, which makes the split easy to inspect.
    validation = order[:validation_size].sort().values
    train = order[validation_size:].sort().values
    return data.subset(train), data.subset(validation)


def rgb_to_grayscale(images):
    """uint8 grayscale of uint8 RGB images, computed the way `tf.image.rgb_to_grayscale` does (LRA Image).

    images: (n, 3, H, W) uint8 tensor -> (n, H, W) uint8 tensor. TF converts to float32 in [0, 1] (x * 1/255),
    takes 0.2989 R + 0.5870 G + 0.1140 B in float32, then converts back by multiplying with 255.5 and
    truncating (`convert_image_dtype`); this does the same steps in float32. (Pillow's "L" mode rounds
    differently and disagrees on ~16% of CIFAR pixels.) TF's tensordot may add the three terms in another
    order; that can only matter for a pixel whose value lies within float32 rounding of an integer.
    """
    x = images.numpy().astype(np.float32) * np.float32(1.0 / 255)  # (n, 3, H, W)
    weights = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)
    gray = x[:, 0] * weights[0] + x[:, 1] * weights[1] + x[:, 2] * weights[2]  # (n, H, W) float32
    return torch.from_numpy((gray * np.float32(255.5)).astype(np.uint8))
