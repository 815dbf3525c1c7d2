"""A user's own classification data: image folders, parquet/CSV/JSON files or any Hub dataset, as
labelled `datasets.Dataset` splits with checked columns and labels (what fine-tuning reads).

Sources (the conventions of transformers' `run_image_classification.py` / `run_classification.py`):
- an image folder: one sub-folder per class, its name is the label (`image_folder`);
- parquet, CSV or JSON(L) files, chosen by extension (`read_file`);
- a Hub dataset id (`load_dataset(id)`; offline: from the local `datasets` cache).

Labels: a `ClassLabel` column keeps its names; string or integer labels become the sorted set of the
training split's values (integers named by their decimal text). Every validation label must be a
training label and every training label must occur in validation (else a score per class is
meaningless): both are errors that name the labels; a validation split held out of the training data
is stratified, so it holds every class. Nothing is dropped: a file in an image folder
that is not an image (by extension), a row without a label or an image that does not decode is an
error naming the file.
"""

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mimo_hf.data import DataError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
FILE_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}


def image_folder(folder):
    """A `datasets.Dataset` of an image folder: columns image (paths, undecoded) and label (ClassLabel of the
    sub-folder names, sorted). Hidden files are skipped; any other non-image file is an error naming it."""
    from datasets import ClassLabel, Dataset, Features, Image

    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class sub-folders: an image folder holds one sub-folder per class "
                         f"(e.g. {root}/cat/1.png); found files {loose[:5]}")
    if loose:
        raise DataError(f"{root} holds files outside the class sub-folders ({loose[:5]}): move them into a class "
                         "folder or elsewhere")
    paths, labels, other = [], [], []
    for label, name in enumerate(classes):
        for path in sorted(p for p in (root / name).rglob("*") if p.is_file()):
            if any(part.startswith(".") for part in path.relative_to(root).parts):
                continue
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                other.append(str(path))
                continue
            paths.append(str(path))
            labels.append(label)
    if other:
        raise DataError(f"{len(other)} files in {root} are not images (by extension), e.g. {other[:3]}: remove them "
                         f"(image extensions: {sorted(IMAGE_EXTENSIONS)})")
    empty = [name for label, name in enumerate(classes) if label not in set(labels)]
    if empty:
        raise DataError(f"class folders without images in {root}: {empty}")
    features = Features({"image": Image(decode=False), "label": ClassLabel(names=classes)})
    return Dataset.from_dict({"image": [{"bytes": None, "path": p} for p in paths], "label": labels},
                             features=features)


def read_file(path):
    """A `datasets.Dataset` of one parquet, CSV/TSV or JSON(L) file (by extension)."""
    from datasets import load_dataset

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    builder = FILE_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use one of {sorted(FILE_BUILDERS)}")
    extra = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
    return load_dataset(builder, data_files={"train": str(path)}, split="train", **extra)


def hub_splits(dataset_id):
    """{split name: Dataset} of a Hub dataset (offline: the local `datasets` cache)."""
    from datasets import load_dataset

    return dict(load_dataset(dataset_id))


def check_columns(ds, columns, where, flag_of):
    """Every column in `columns` exists in `ds`, else an error naming the flag, the source and the columns there."""
    for column in columns:
        if column not in ds.column_names:
            raise DataError(f"{where} has no column {column!r} ({flag_of[column]}); its columns: {ds.column_names}")


def _label_values(ds, column):
    feature = ds.features[column]
    values = list(ds[column])
    if any(v is None for v in values):
        rows = [i for i, v in enumerate(values) if v is None][:5]
        raise DataError(f"column {column!r} has rows without a label (rows {rows}): label or remove them")
    if hasattr(feature, "names"):
        return [feature.names[v] for v in values]
    return values


def label_names_of(ds, column):
    """Class names of the training split: a ClassLabel's names, else the sorted distinct values."""
    feature = ds.features[column]
    if hasattr(feature, "names"):
        return list(feature.names)
    values = set(_label_values(ds, column))
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return [str(v) for v in sorted(values)]
    if all(isinstance(v, str) for v in values):
        return sorted(values)
    kinds = sorted({type(v).__name__ for v in values})
    raise DataError(f"label column {column!r} mixes or has unsupported value types {kinds}: use strings or integers")


def label_ids(ds, column, names, where):
    """(n,) int64 label ids of `ds[column]` in the order of `names`; an unknown label is an error."""
    index = {name: i for i, name in enumerate(names)}
    values = [str(v) for v in _label_values(ds, column)]
    unknown = sorted(set(values) - set(index))
    if unknown:
        raise DataError(f"{where} has labels the training data does not have: {unknown[:10]}; training labels: "
                         f"{names[:20]}")
    return torch.tensor([index[v] for v in values], dtype=torch.int64)


def check_validation_labels(train_names, validation_ids, where):
    """Every training class occurs in the validation split (else its validation score says nothing)."""
    seen = set(validation_ids.tolist())
    missing = [name for i, name in enumerate(train_names) if i not in seen]
    if missing:
        raise DataError(f"labels missing from the validation split ({where}): {missing[:10]}; give a validation "
                         "split with every class, or hold out more training data (--validation-size)")


def held_out_rows(labels, validation_size, seed):
    """(train rows, validation rows), sorted, of a seeded split of training rows stratified by `labels` ((n,)
    ids): every class gives its share of `validation_size` (None: 10% of the rows, at least one per class) and
    keeps at least one training row, so both splits hold every class. A class with one example is an error."""
    n = len(labels)
    counts = torch.bincount(labels)
    present = torch.nonzero(counts).flatten().tolist()
    total = max(len(present), n // 10) if validation_size is None else validation_size
    if not 0 < total < n:
        raise DataError(f"--validation-size must be in [1, {n - 1}] for {n} training examples, got {total}")
    single = [c for c in present if counts[c] < 2]
    if single:
        raise DataError(f"classes {single} have one training example: a held-out validation split cannot hold them "
                         "too; add examples or give a validation split (--validation-dir / --validation-file)")
    generator = torch.Generator().manual_seed(seed)
    train, validation = [], []
    for c in present:
        rows = torch.nonzero(labels == c).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        share = min(max(1, round(total * len(rows) / n)), len(rows) - 1)
        validation.append(rows[:share])
        train.append(rows[share:])
    return torch.cat(train).sort().values, torch.cat(validation).sort().values


@dataclass
class LabelledSplits:
    """Training and validation rows of one source, their label ids and where they came from."""

    train: object  # datasets.Dataset
    validation: object
    train_labels: torch.Tensor
    validation_labels: torch.Tensor
    label_names: list
    info: dict = field(default_factory=dict)


def labelled_splits(train, validation, label_column, validation_size, seed, where):
    """`LabelledSplits` of a training Dataset and a validation Dataset (None: held out of training)."""
    names = label_names_of(train, label_column)
    info = {"train_source": where["train"]}
    train_ids = label_ids(train, label_column, names, where["train"])
    if validation is None:
        train_rows, val_rows = held_out_rows(train_ids, validation_size, seed)
        validation, val_ids = train.select(val_rows.tolist()), train_ids[val_rows]
        train, train_ids = train.select(train_rows.tolist()), train_ids[train_rows]
        info["validation_source"] = (f"{len(val_rows)} examples held out of {where['train']} (every class in "
                                     f"proportion, seed {seed})")
    else:
        info["validation_source"] = where["validation"]
        val_ids = label_ids(validation, label_column, names, info["validation_source"])
    check_validation_labels(names, val_ids, info["validation_source"])
    info.update(train_examples=len(train), validation_examples=len(validation), labels=list(names))
    return LabelledSplits(train, validation, train_ids, val_ids, names, info)


def open_image(blob, path, where):
    """A decoded PIL image from bytes or a path; an image that cannot be decoded is an error naming the file."""
    import PIL.Image

    try:
        image = PIL.Image.open(io.BytesIO(blob) if blob is not None else path)
        image.load()
    except Exception as error:  # PIL raises several types (UnidentifiedImageError, OSError, ...)
        raise DataError(f"cannot decode image {path or where}: {type(error).__name__}: {error}") from None
    return image


class ImageConverter:
    """PIL images -> (C, H, W) uint8 tensors the way the checkpoint's image processor prepares them in a
    pipeline: converted to the model's mode (RGB, or L for one channel) and resized with the processor's own
    `resize` (size and resampling); the rescale and normalisation the processor then applies are done on
    the batch by the training loop (`augment.normalize`, the same formula), so the model sees in training
    exactly what the pipeline gives it."""

    def __init__(self, processor, num_channels):
        if num_channels not in (1, 3):
            raise DataError(f"models with {num_channels} input channels are not supported (1 or 3)")
        self.processor, self.mode = processor, "RGB" if num_channels == 3 else "L"
        size = processor.size
        self.size = (size["height"], size["width"]) if "height" in size else (size["shortest_edge"],) * 2
        self.mean, self.std = tuple(processor.image_mean), tuple(processor.image_std)

    def __call__(self, image):
        if image.mode != self.mode:
            image = image.convert(self.mode)
        if (image.height, image.width) != self.size:
            resized = self.processor(image, do_rescale=False, do_normalize=False, return_tensors="np")["pixel_values"]
            array = np.clip(np.rint(resized[0]), 0, 255).astype(np.uint8)  # (C, H, W)
            if self.mode == "L":
                array = array[:1]
            return torch.from_numpy(array)
        array = np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, -1)  # (H, W, C)
        return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()

    def column(self, ds, image_column, where):
        """Every image of a Dataset column, decoded and converted: (n, C, H, W) uint8."""
        from datasets import Image

        column = ds.cast_column(image_column, Image(decode=False))[image_column]
        out = torch.empty((len(column), 3 if self.mode == "RGB" else 1, *self.size), dtype=torch.uint8)
        for i, item in enumerate(column):
            item = item if isinstance(item, dict) else {"bytes": None, "path": item}
            out[i] = self(open_image(item.get("bytes"), item.get("path"), f"row {i} of {where}"))
        return out


class StreamedImages(torch.utils.data.Dataset):
    """Rows of a `datasets.Dataset` decoded on access through a `datasets` transform (for data too large to
    decode into memory at once): item i is {"pixel_values": (C, H, W) uint8, "labels": id[, "index": i]}."""

    def __init__(self, ds, image_column, labels, converter, where, with_index=True):
        from datasets import Image

        self.labels, self.with_index, self.where, self.converter = labels, with_index, where, converter
        self.ds = ds.cast_column(image_column, Image(decode=False)).select_columns([image_column])
        self.ds.set_transform(self._decode)
        self.column = image_column

    def _decode(self, batch):
        items = batch[self.column]
        return {"pixel_values": [self.converter(open_image(item.get("bytes"), item.get("path"), self.where))
                                 for item in items]}

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, index):
        index = int(index)
        item = {"pixel_values": self.ds[index]["pixel_values"], "labels": self.labels[index]}
        if self.with_index:
            item["index"] = torch.tensor(index)
        return item
