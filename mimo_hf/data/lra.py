"""Long Range Arena (LRA, Tay et al. 2021) tasks as padded id tensors: the task registry and the loaders.

Tasks (`LRA_TASKS` holds the model-facing numbers):
- "listops": generated with the published LRA rules (`data.listops`, `scripts/generate_listops.py`), read
  back from parquet and tokenized with the ListOps tokenizer.
- "image": CIFAR-10 as 1024 grayscale pixels per image (`tf.image.rgb_to_grayscale`), token id = pixel value.
- "text": IMDB reviews as UTF-8 bytes (id = byte + 1), truncated to 4000 bytes. Truncation is part of the
  published task definition: LRA keeps the first 4000 bytes of every review.
- "retrieval" (AAN) and "pathfinder": their real data cannot be obtained here. `load_lra_task` reads them only
  from prepared parquet folders; `data.synthetic` gives small look-alike sets with the same tensor layout
  for tests and smoke runs.

Like `data.images`, a split is encoded once, up front, into one int64 tensor per field (`SequenceTensors`),
and training reads batches by indexing. Decoding and tokenization stay out of the training loop.

Where this differs from the published LRA input pipelines (google-research/long-range-arena):
- Text: LRA validates IMDB on its test split; here "validation" is a seeded held-out part of train.
- Image: LRA validates on the last 10% of train in TFDS order; here it is data.images.train_validation_split's
  seeded 5000 (the same images the image classifiers of this package hold out).
- ListOps: the released LRA code tokenized with tfds' alphanumeric Tokenizer, which drops "[" and "]"; the
  LRA authors called that a bug (issue #14: the brackets are required). Here "]" is a token and only the
  parentheses of the raw tsv format are dropped, as in the whitespace tokenization the authors intended.
"""

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from mimo_hf.data import DataError, labels
from mimo_hf.data.images import decode_images, download_split, label_tensor, parquet_shards, rgb_to_grayscale, train_validation_split
from mimo_hf.data.tokenization import BYTE_VOCAB_SIZE, LISTOPS_VOCAB, encode

# Model-facing description of each task. "cls_token_id" is what the authors' CLS pooling prepends
# (vocab_size - 1). For the pixel tasks that id is also the pixel value 255: the authors' layout, kept as is.
# "tokenizer" names the tokenizer of `data.tokenization` ("pixel": the pixel value is the id, no tokenizer).
LRA_TASKS = {
    "listops": {"num_labels": 10, "label_names": list(labels.DIGITS), "vocab_size": len(LISTOPS_VOCAB),
                "max_length": 2000, "pad_token_id": 0, "cls_token_id": len(LISTOPS_VOCAB) - 1,
                "tokenizer": "listops", "dual": False},
    "text": {"num_labels": 2, "label_names": list(labels.IMDB), "vocab_size": BYTE_VOCAB_SIZE,
             "max_length": 4000, "pad_token_id": 0, "cls_token_id": BYTE_VOCAB_SIZE - 1,
             "tokenizer": "byte", "dual": False},
    "retrieval": {"num_labels": 2, "label_names": list(labels.RETRIEVAL), "vocab_size": BYTE_VOCAB_SIZE,
                  "max_length": 4000, "pad_token_id": 0, "cls_token_id": BYTE_VOCAB_SIZE - 1,
                  "tokenizer": "byte", "dual": True},  # max_length is per document; two documents per example
    "image": {"num_labels": 10, "label_names": list(labels.CIFAR10), "vocab_size": 256,
              "max_length": 1024, "pad_token_id": 0, "cls_token_id": 255, "tokenizer": "pixel", "dual": False},
    "pathfinder": {"num_labels": 2, "label_names": list(labels.PATHFINDER), "vocab_size": 256,
                   "max_length": 1024, "pad_token_id": 0, "cls_token_id": 255, "tokenizer": "pixel",
                   "dual": False},  # Pathfinder-32: 32 x 32 pixels
}

# Where the offline copies live (relative to the working directory, i.e. the repository root) and the Hub ids
# used when that folder is absent. Validation is held out of the training split (LRA Image: 5000 = 10%).
DEFAULT_DATA_DIRS = {"image": "../shared/data/cifar10", "text": "../shared/data/imdb"}
HUB_IDS = {"image": "uoft-cs/cifar10", "text": "stanfordnlp/imdb"}
DEFAULT_VALIDATION_SIZES = {"image": 5000, "text": 2500}
SPLITS = ("train", "validation", "test")


@dataclass
class SequenceTensors:
    """One tokenized LRA split, padded to a fixed length, ready for batched indexing.

    Retrieval examples are document pairs: the second document sits in `input_ids_2`/`attention_mask_2`
    (None for every other task).
    """

    input_ids: torch.Tensor  # (n, L) int64, padded with the task's pad id
    attention_mask: torch.Tensor  # (n, L) int64, 1 = real token, 0 = padding
    labels: torch.Tensor  # (n,) int64
    label_names: list  # list[str], index = label id
    input_ids_2: torch.Tensor | None = None  # (n, L2) int64, retrieval only
    attention_mask_2: torch.Tensor | None = None  # (n, L2) int64, retrieval only
    task: str | None = None  # key of LRA_TASKS
    info: dict = field(default_factory=dict)  # provenance (source folder, split, seed, ...)

    def __len__(self):
        """Number of examples."""
        return self.labels.shape[0]

    def tensors(self):
        """{model input name: (n, ...) tensor} plus "labels": what a batch dict holds (`data.batches`)."""
        names = ("input_ids", "attention_mask", "input_ids_2", "attention_mask_2", "labels")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def subset(self, indices):
        """A new SequenceTensors holding the examples at `indices` (a 1-D index tensor)."""
        second = self.input_ids_2 is not None
        return SequenceTensors(
            self.input_ids[indices], self.attention_mask[indices], self.labels[indices], list(self.label_names),
            self.input_ids_2[indices] if second else None, self.attention_mask_2[indices] if second else None,
            self.task, dict(self.info))


def read_split(data_dir, hub_id, split, columns):
    """One split as a pyarrow Table plus its `datasets.Features`: from `{split}-*.parquet` in data_dir, or the Hub.

    columns: the columns the task reads; a split without one of them is a `DataError` naming what it has.
    """
    from datasets import Features

    if data_dir is None:
        ds = download_split(hub_id, split)
        table, features = ds.data.table, ds.features
    else:
        shards = parquet_shards(data_dir, split)
        table = pa.concat_tables([pq.read_table(shard) for shard in shards])
        features = Features.from_arrow_schema(table.schema)
    missing = [column for column in columns if column not in table.column_names]
    if missing:
        raise DataError(f"{data_dir or hub_id} split {split!r} has no column {missing[0]!r} "
                        f"(this task reads {', '.join(columns)}); its columns: {table.column_names}")
    return table, features


def _resolve_source(task, data_dir):
    """(data_dir or None, hub id): the given folder; else the default offline copy if present; else the Hub."""
    if data_dir is not None:
        return data_dir, None
    default = Path(DEFAULT_DATA_DIRS[task])
    return (default, None) if default.is_dir() else (None, HUB_IDS[task])


class _Rows:
    """Row indices that `data.train_validation_split` can split like a dataset (it needs len and subset)."""

    def __init__(self, indices):
        self.indices = indices

    def __len__(self):
        return len(self.indices)

    def subset(self, positions):
        return _Rows(self.indices[positions])


def _split_rows(n, split, validation_size, seed):
    """Row indices of `split` in a table of n training rows (or n test rows for "test"), as a 1-D int64 tensor.

    "train"/"validation" are the two parts of `data.train_validation_split` with this seed, so the LRA Image
    validation images are the same ones the image classifiers of this package hold out.
    """
    rows = _Rows(torch.arange(n))
    if split == "test":
        return rows.indices
    train, validation = train_validation_split(rows, validation_size, seed)
    return (train if split == "train" else validation).indices


def _label_names(features, column, default):
    """Class names from a ClassLabel feature, else `default`."""
    feature = features.get(column) if features is not None else None
    return list(feature.names) if hasattr(feature, "names") else list(default)


def _check_split(split):
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}, got {split!r}")


def load_lra_task(task, split, data_dir=None, max_length=None, seed=0, validation_size=None, max_examples=None):
    """Load one LRA split as a `SequenceTensors`.

    task: a key of LRA_TASKS. split: "train", "validation" or "test".
    data_dir: folder of `{split}-*.parquet` shards. listops: required (write it with scripts/generate_listops.py);
      image/text: defaults to DEFAULT_DATA_DIRS if that folder exists, else the Hub id in HUB_IDS;
      retrieval/pathfinder: required, a prepared folder (see below), since the real data is not available here.
    max_length: padded length; default LRA_TASKS[task]["max_length"]. ListOps raises if an example is longer,
      Text/Retrieval truncate to it (the LRA definition: first 4000 bytes), Image/Pathfinder must equal H*W.
    seed, validation_size: image/text only; "validation" is a seeded held-out part of the training split
      (default size DEFAULT_VALIDATION_SIZES) and "train" the rest. Text rows are also shuffled with the seed,
      because the IMDB copy is sorted by label.
    max_examples: keep only the first max_examples examples of the split (for tests and smoke runs); image
      and text then decode only those.
    Prepared folders: retrieval = columns text1, text2 (str), label (0/1); pathfinder = columns image
      (struct{bytes: PNG/JPEG, path}), label (0/1); splits train/validation/test.
    """
    if task not in LRA_TASKS:
        raise DataError(f"unknown LRA task {task!r}; known: {sorted(LRA_TASKS)}")
    _check_split(split)
    max_length = LRA_TASKS[task]["max_length"] if max_length is None else max_length
    loaders = {"listops": _load_listops, "image": _load_image, "text": _load_text,
               "retrieval": _load_retrieval, "pathfinder": _load_pathfinder}
    data = loaders[task](split, data_dir, max_length, seed, validation_size, max_examples)
    data.task = task
    data.info.update({"split": split, "max_length": data.input_ids.shape[1]})
    return data


def _load_listops(split, data_dir, max_length, seed, validation_size, max_examples):
    if data_dir is None:
        raise DataError("ListOps is generated locally: run `python scripts/generate_listops.py --output-dir DIR` "
                         "(see --help for the LRA and CPU presets) and pass data_dir=DIR")
    table, features = read_split(data_dir, None, split, ("text", "label"))
    if max_examples is not None:
        table = table.slice(0, max_examples)
    input_ids, attention_mask = encode(LRA_TASKS["listops"]["tokenizer"], table.column("text").to_pylist(), max_length)
    names = _label_names(features, "label", LRA_TASKS["listops"]["label_names"])
    return SequenceTensors(input_ids, attention_mask, label_tensor(table), names, info={"source": str(data_dir)})


def _load_image(split, data_dir, max_length, seed, validation_size, max_examples):
    if max_length != 1024:
        raise DataError(f"LRA Image sequences are 32 x 32 = 1024 pixels; max_length={max_length} is not supported")
    folder, hub_id = _resolve_source("image", data_dir)
    table, features = read_split(folder, hub_id, "test" if split == "test" else "train", ("img", "label"))
    validation_size = DEFAULT_VALIDATION_SIZES["image"] if validation_size is None else validation_size
    rows = _split_rows(len(table), split, validation_size, seed)
    if max_examples is not None:
        rows = rows[:max_examples]
    table = table.take(pa.array(rows.numpy()))
    column = table.column("img").combine_chunks()  # struct<bytes, path>
    gray = rgb_to_grayscale(decode_images(column, "RGB"))  # (n, 32, 32) uint8
    input_ids = gray.reshape(len(table), -1).long()  # (n, 1024) row-major pixels, id = intensity
    names = _label_names(features, "label", LRA_TASKS["image"]["label_names"])
    info = {"source": str(folder or hub_id), "seed": seed, "validation_size": validation_size}
    return SequenceTensors(input_ids, torch.ones_like(input_ids), label_tensor(table), names, info=info)


def _load_text(split, data_dir, max_length, seed, validation_size, max_examples):
    folder, hub_id = _resolve_source("text", data_dir)
    table, features = read_split(folder, hub_id, "test" if split == "test" else "train", ("text", "label"))
    names, values = _label_names(features, "label", LRA_TASKS["text"]["label_names"]), label_tensor(table)
    if len(values) and (int(values.min()) < 0 or int(values.max()) >= len(names)):
        raise DataError(f"{folder or hub_id}: labels {sorted(set(values.tolist()))[:10]} are not LRA Text's "
                         f"{len(names)} classes {names}; to train on your own text data fine-tune a checkpoint: "
                         "scripts/train_mimoformer.py --model-name-or-path M --train-file F --text-column C "
                         "--label-column C (README: Fine-tune on your data)")
    validation_size = DEFAULT_VALIDATION_SIZES["text"] if validation_size is None else validation_size
    rows = _split_rows(len(table), split, validation_size, seed)
    # Shuffle (seed + 1: a stream apart from the split's): the copy is sorted by label, and a prefix
    # (max_examples, or a quick look at the first batch) must not be all one class.
    rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed + 1))]
    if max_examples is not None:
        rows = rows[:max_examples]
    table = table.take(pa.array(rows.numpy()))
    input_ids, attention_mask = encode(LRA_TASKS["text"]["tokenizer"], table.column("text").to_pylist(), max_length)
    names = _label_names(features, "label", LRA_TASKS["text"]["label_names"])
    info = {"source": str(folder or hub_id), "seed": seed, "validation_size": validation_size}
    return SequenceTensors(input_ids, attention_mask, label_tensor(table), names, info=info)


_MISSING = ("The real LRA {name} data ({what}) cannot be obtained in this environment. Pass data_dir= a folder "
            "of prepared {{train,validation,test}}-*.parquet files with columns {columns}, or use "
            "mimo_hf.data.synthetic.synthetic_{task}() for tests and smoke runs.")


def _load_retrieval(split, data_dir, max_length, seed, validation_size, max_examples):
    if data_dir is None:
        raise DataError(_MISSING.format(name="Retrieval", what="ACL Anthology Network citation pairs",
                                         columns="text1, text2, label", task="retrieval"))
    table, features = read_split(data_dir, None, split, ("text1", "text2", "label"))
    if max_examples is not None:
        table = table.slice(0, max_examples)
    kind = LRA_TASKS["retrieval"]["tokenizer"]
    ids_1, mask_1 = encode(kind, table.column("text1").to_pylist(), max_length)
    ids_2, mask_2 = encode(kind, table.column("text2").to_pylist(), max_length)
    names = _label_names(features, "label", LRA_TASKS["retrieval"]["label_names"])
    return SequenceTensors(ids_1, mask_1, label_tensor(table), names, ids_2, mask_2, info={"source": str(data_dir)})


def _load_pathfinder(split, data_dir, max_length, seed, validation_size, max_examples):
    if data_dir is None:
        raise DataError(_MISSING.format(name="Pathfinder", what="the Pathfinder-32 images",
                                         columns="image (PNG bytes), label", task="pathfinder"))
    table, features = read_split(data_dir, None, split, ("image", "label"))
    if max_examples is not None:
        table = table.slice(0, max_examples)
    images = decode_images(table.column("image").combine_chunks(), "L")  # (n, 1, H, W) uint8
    input_ids = images.reshape(len(table), -1).long()  # (n, H*W)
    if input_ids.shape[1] != max_length:
        raise DataError(f"Pathfinder images have {input_ids.shape[1]} pixels, but max_length={max_length}")
    names = _label_names(features, "label", LRA_TASKS["pathfinder"]["label_names"])
    return SequenceTensors(input_ids, torch.ones_like(input_ids), label_tensor(table), names,
                           info={"source": str(data_dir)})
