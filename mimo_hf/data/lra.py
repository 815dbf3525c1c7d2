"""Long Range Arena (LRA, Tay et al. 2021) data: the ListOps generator, and every task as padded id tensors.

Tasks (`LRA_TASKS` holds the model-facing numbers):
- "listops": generated here with the published LRA rules (`generate_listops`, `write_listops_dataset`,
  `scripts/generate_listops.py`), then read back from parquet and tokenized with the ListOps tokenizer.
- "image": CIFAR-10 as 1024 grayscale pixels per image (`tf.image.rgb_to_grayscale`), token id = pixel value.
- "text": IMDB reviews as UTF-8 bytes (id = byte + 1), truncated to 4000 bytes. Truncation is part of the
  published task definition: LRA keeps the first 4000 bytes of every review.
- "retrieval" (AAN) and "pathfinder": their real data cannot be obtained here. `load_lra_task` reads them only
  from prepared parquet folders; `synthetic_retrieval` and `synthetic_pathfinder` give small look-alike sets
  with the same tensor layout for tests and smoke runs.

Like `data.py`, a split is encoded once, up front, into one int64 tensor per field (`SequenceTensors`), and
training reads batches by indexing. Decoding and tokenization stay out of the training loop.

Where this differs from the published LRA input pipelines (google-research/long-range-arena):
- Text: LRA validates IMDB on its test split; here "validation" is a seeded held-out part of train.
- Image: LRA validates on the last 10% of train in TFDS order; here it is data.train_validation_split's
  seeded 5000 (the same images the image classifiers of this package hold out).
- ListOps: the released LRA code tokenized with tfds' alphanumeric Tokenizer, which drops "[" and "]"; the
  LRA authors called that a bug (issue #14: the brackets are required). Here "]" is a token and only the
  parentheses of the raw tsv format are dropped, as in the whitespace tokenization the authors intended.
"""

import json
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm.auto import tqdm

from mimo_hf.data.images import _decode_images, label_tensor, parquet_shards, train_validation_split
from mimo_hf.data.tokenization import (
    BYTE_OFFSET,
    BYTE_VOCAB_SIZE,
    LISTOPS_DIGITS,
    LISTOPS_END,
    LISTOPS_OPERATORS,
    LISTOPS_VOCAB,
    listops_tokenizer,
)

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# Model-facing description of each task. "cls_token_id" is what the authors' CLS pooling prepends
# (vocab_size - 1). For the pixel tasks that id is also the pixel value 255: the authors' layout, kept as is.
LRA_TASKS = {
    "listops": {"num_labels": 10, "label_names": list(LISTOPS_DIGITS), "vocab_size": len(LISTOPS_VOCAB),
                "max_length": 2000, "pad_token_id": 0, "cls_token_id": len(LISTOPS_VOCAB) - 1,
                "tokenizer": "listops", "dual": False},
    "text": {"num_labels": 2, "label_names": ["neg", "pos"], "vocab_size": BYTE_VOCAB_SIZE,
             "max_length": 4000, "pad_token_id": 0, "cls_token_id": BYTE_VOCAB_SIZE - 1,
             "tokenizer": "byte", "dual": False},
    "retrieval": {"num_labels": 2, "label_names": ["unrelated", "related"], "vocab_size": BYTE_VOCAB_SIZE,
                  "max_length": 4000, "pad_token_id": 0, "cls_token_id": BYTE_VOCAB_SIZE - 1,
                  "tokenizer": "byte", "dual": True},  # max_length is per document; two documents per example
    "image": {"num_labels": 10, "label_names": list(CIFAR10_NAMES), "vocab_size": 256,
              "max_length": 1024, "pad_token_id": 0, "cls_token_id": 255, "tokenizer": "pixel", "dual": False},
    "pathfinder": {"num_labels": 2, "label_names": ["disconnected", "connected"], "vocab_size": 256,
                   "max_length": 1024, "pad_token_id": 0, "cls_token_id": 255, "tokenizer": "pixel",
                   "dual": False},  # Pathfinder-32: 32 x 32 pixels
}

# Where the offline copies live (relative to the working directory, i.e. the repository root) and the Hub ids
# used when that folder is absent. Validation is held out of the training split (LRA Image: 5000 = 10%).
DEFAULT_DATA_DIRS = {"image": "../shared/data/cifar10", "text": "../shared/data/imdb"}
HUB_IDS = {"image": "uoft-cs/cifar10", "text": "stanfordnlp/imdb"}
DEFAULT_VALIDATION_SIZES = {"image": 5000, "text": 2500}
SPLITS = ("train", "validation", "test")


# ----------------------------------------------------------------------------------------------------------
# Tensors
# ----------------------------------------------------------------------------------------------------------

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

    def subset(self, indices):
        """A new SequenceTensors holding the examples at `indices` (a 1-D index tensor)."""
        second = self.input_ids_2 is not None
        return SequenceTensors(
            self.input_ids[indices], self.attention_mask[indices], self.labels[indices], list(self.label_names),
            self.input_ids_2[indices] if second else None, self.attention_mask_2[indices] if second else None,
            self.task, dict(self.info))


# ----------------------------------------------------------------------------------------------------------
# ListOps generation (the LRA rules of lra_benchmarks/data/listops.py, re-implemented)
# ----------------------------------------------------------------------------------------------------------

VALUE_P = 0.25  # below max depth a node is an operator with probability VALUE_P, else a digit
LISTOPS_CHUNK_SIZE = 1000  # examples per seeded chunk: the unit of parallel work (fixed, so output ignores workers)


class _TooLong(Exception):
    """Raised inside the recursion once an expression reaches max_length tokens (it will be rejected)."""


def _random_tree(rng, depth, max_depth, max_args, tokens, max_tokens):
    """Append one random expression (LRA's `generate_tree`) to `tokens`; return its value.

    The random draws come in LRA's order: the node-type draw, the argument count, the arguments, then the
    operator. Stopping early (`_TooLong`) once an expression cannot be kept only skips work on a rejected
    sample: every sample uses fresh draws, so the kept samples have exactly LRA's distribution.
    """
    node = rng.random() if depth < max_depth else 1.0  # at max depth: always a digit
    if node > VALUE_P:
        value = rng.choice(range(10))
        tokens.append(LISTOPS_DIGITS[value])
        if len(tokens) >= max_tokens:
            raise _TooLong
        return value
    num_args = rng.randint(2, max_args)
    slot = len(tokens)
    tokens.append(None)  # the operator token, filled in once the operator is drawn (after its arguments)
    args = [_random_tree(rng, depth + 1, max_depth, max_args, tokens, max_tokens) for _ in range(num_args)]
    operator = rng.choice(LISTOPS_OPERATORS)
    tokens[slot] = operator
    tokens.append(LISTOPS_END)
    if len(tokens) >= max_tokens:
        raise _TooLong
    return apply_listops_operator(operator, args)


def apply_listops_operator(operator, args):
    """The value of `[OP args ]` as LRA computes it: MED = int(np.median) (floor of the mean of the middle two
    for an even count), SM = sum mod 10."""
    if operator == "[MAX":
        return max(args)
    if operator == "[MIN":
        return min(args)
    if operator == "[MED":
        ordered = sorted(args)
        middle = len(ordered) // 2
        # int() of a non-negative float truncates, i.e. floors: int(np.median([1, 2])) == 1.
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2
    if operator == "[SM":
        return sum(args) % 10
    raise ValueError(f"unknown ListOps operator {operator!r}")


def _possible_lengths(max_depth, max_args, limit):
    """Bit set (a Python int) of the token lengths below `limit` that an expression can have under the rules."""
    below = (1 << limit) - 1
    level = 1 << 1  # at max depth: a digit, 1 token
    for _ in range(max_depth - 1):  # one level up at a time, towards the root
        sums, operators = level, 0
        for _ in range(2, max_args + 1):  # lengths of k = 2..max_args arguments: k-fold sums of `level`
            shifted = 0
            for length in range(limit):
                if sums >> length & 1:
                    shifted |= level << length
            sums = shifted & below
            operators |= sums
        level = (1 << 1 | operators << 2) & below  # a digit, or "[OP" + arguments + "]"
    return level


def _check_listops_args(min_length, max_length, max_depth, max_args):
    """Refuse settings under which no expression can be kept (the generator would loop forever)."""
    if max_depth < 1 or max_args < 2:
        raise ValueError(f"need max_depth >= 1 and max_args >= 2, got {max_depth} and {max_args}")
    window = ((1 << max(max_length, 0)) - 1) & ~((1 << max(min_length + 1, 0)) - 1)  # min < length < max
    if not _possible_lengths(max_depth, max_args, max(max_length, 1)) & window:
        raise ValueError(f"no ListOps expression has min_length < length < max_length for min_length={min_length}, "
                         f"max_length={max_length}, max_depth={max_depth}, max_args={max_args}")


def _generate_chunk(task):
    """Worker: `count` expressions (text, label) from the RNG of chunk `index`; duplicates are removed later."""
    seed, index, count, min_length, max_length, max_depth, max_args = task
    # A string seed is hashed with SHA-512 by `random`, so it gives the same stream in every process and run.
    rng = random.Random(f"listops-{seed}-{index}")
    examples = []
    while len(examples) < count:
        tokens = []
        try:
            value = _random_tree(rng, 1, max_depth, max_args, tokens, max_length)
        except _TooLong:
            continue
        if min_length < len(tokens) < max_length:
            examples.append((" ".join(tokens), value))
    return examples


def generate_listops(num_examples, min_length, max_length, seed, max_depth=10, max_args=10, workers=1,
                     progress=False):
    """`num_examples` distinct ListOps expressions with the LRA rules, as a list of (text, label).

    text: tokens joined by single spaces, without LRA's parentheses, e.g. "[MAX 2 9 [MIN 4 7 ] 0 ]".
    label: the expression's value, an int 0-9.
    Rules (LRA): operators MAX, MIN, MED, SM over digits 0-9; the root has depth 1, a node below max_depth is an
    operator with probability VALUE_P = 0.25 (else a digit) and a node at max_depth is a digit; an operator has
    2..max_args arguments; an expression is kept when min_length < number of tokens < max_length.
    Deterministic in `seed`: work is split into fixed chunks of LISTOPS_CHUNK_SIZE examples, chunk i drawing from
    its own RNG, and chunks are merged in order, so `workers` (processes) changes only the speed.
    """
    _check_listops_args(min_length, max_length, max_depth, max_args)
    found = {}  # text -> label; a dict keeps the first-seen order, so the merge is deterministic
    next_chunk = 0
    executor = None
    if workers > 1:
        # fork: workers inherit the imported modules instantly (spawn would re-import torch and transformers).
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        executor = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    bar = tqdm(total=num_examples, desc="ListOps", unit="expr", disable=not progress)
    try:
        while len(found) < num_examples:
            missing = num_examples - len(found)
            counts = [min(LISTOPS_CHUNK_SIZE, missing - start) for start in range(0, missing, LISTOPS_CHUNK_SIZE)]
            tasks = [(seed, next_chunk + i, count, min_length, max_length, max_depth, max_args)
                     for i, count in enumerate(counts)]
            next_chunk += len(tasks)
            chunks = executor.map(_generate_chunk, tasks) if executor else map(_generate_chunk, tasks)
            before = len(found)
            for chunk in chunks:  # in chunk order, whatever order the workers finish in
                size = len(found)
                for text, label in chunk:
                    found.setdefault(text, label)
                bar.update(min(len(found), num_examples) - min(size, num_examples))
            if len(found) == before:  # a whole round of draws gave nothing new: the space is exhausted
                raise ValueError(f"could not find {num_examples} distinct ListOps expressions with these settings "
                                 f"(found {len(found)}); widen the length range")
    finally:
        bar.close()
        if executor:
            executor.shutdown()
    return list(found.items())[:num_examples]


def write_listops_dataset(out_dir, train_size=96000, validation_size=2000, test_size=2000, min_length=500,
                          max_length=2000, seed=0, max_depth=10, max_args=10, workers=1, progress=True):
    """Generate ListOps and write `{train,validation,test}-00000-of-00001.parquet` + `generation.json` to `out_dir`.

    The parquet files have columns text (str) and label (ClassLabel "0".."9", stored as int64) and load with
    `datasets.load_dataset("parquet", ...)`. The splits are consecutive slices of one duplicate-free draw, so
    no expression is in two splits. Defaults are the LRA sizes (96k/2k/2k, 500 < length < 2000).
    Returns the generation record that is also written to generation.json.
    """
    from datasets import ClassLabel, Dataset, Features, Value

    sizes = {"train": train_size, "validation": validation_size, "test": test_size}
    examples = generate_listops(sum(sizes.values()), min_length, max_length, seed, max_depth, max_args,
                                workers=workers, progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(LISTOPS_DIGITS))})
    start = 0
    lengths = {}
    for split, size in sizes.items():
        part = examples[start:start + size]
        start += size
        texts = [text for text, _ in part]
        Dataset.from_dict({"text": texts, "label": [label for _, label in part]}, features=features).to_parquet(
            str(out / f"{split}-00000-of-00001.parquet"))
        counts = [text.count(" ") + 1 for text in texts]
        lengths[split] = {"min": min(counts, default=0), "max": max(counts, default=0),
                          "mean": round(sum(counts) / len(counts), 1) if counts else 0}
    record = {
        "task": "listops",
        "generator": "mimo_hf.lra_data.generate_listops (LRA rules of lra_benchmarks/data/listops.py)",
        "format": "tokens separated by single spaces, no parentheses; label = value of the expression",
        "seed": seed, "min_length": min_length, "max_length": max_length, "max_depth": max_depth,
        "max_args": max_args, "value_p": VALUE_P, "chunk_size": LISTOPS_CHUNK_SIZE,
        "operators": list(LISTOPS_OPERATORS), "splits": sizes, "token_lengths": lengths,
    }
    (out / "generation.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


# ----------------------------------------------------------------------------------------------------------
# Encoding helpers
# ----------------------------------------------------------------------------------------------------------

def encode_bytes(texts, max_length):
    """Byte-level ids (byte + 1, pad 0) of `texts` (str as UTF-8, or bytes), truncated and padded to max_length.

    The same ids as `tokenization.byte_tokenizer`, computed with numpy in one pass (the tokenizer takes ~1 us
    per byte; this is ~100x faster). Returns input_ids (n, max_length) and attention_mask (n, max_length), int64.
    """
    blobs = [(text.encode("utf-8") if isinstance(text, str) else bytes(text))[:max_length] for text in texts]
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))  # (n,)
    flat = np.frombuffer(b"".join(blobs), dtype=np.uint8)  # (sum of lengths,)
    mask = np.arange(max_length) < lengths[:, None]  # (n, max_length) bool
    ids = np.zeros(mask.shape, dtype=np.int64)
    ids[mask] = flat.astype(np.int64) + BYTE_OFFSET  # boolean assignment fills row by row, i.e. in byte order
    return torch.from_numpy(ids), torch.from_numpy(mask.astype(np.int64))


# Bytes that end a ListOps token: ASCII whitespace (what the tokenizer's WhitespaceSplit splits on) and the
# parentheses that its normalizer turns into spaces.
_LISTOPS_SEPARATOR = np.zeros(256, dtype=bool)
_LISTOPS_SEPARATOR[[9, 10, 11, 12, 13, 32, ord("("), ord(")")]] = True
_KEY_BYTES = 8  # a token is looked up by its first 8 bytes; every vocab entry is shorter
# _BYTE_MASKS[k] keeps the low k bytes of a uint64 (k = 0..8).
_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(_KEY_BYTES)] + [2 ** 64 - 1], dtype=np.uint64)


def _pack_tokens(data, starts, lengths):
    """uint64 key per token: its first _KEY_BYTES bytes, little-endian, zero-filled. data: (B,) uint8."""
    padded = np.concatenate([data, np.zeros(_KEY_BYTES, dtype=np.uint8)])
    # A (B + 1,) view whose element i is the (unaligned) little-endian uint64 in bytes i..i+7: no copy.
    words = np.ndarray((len(data) + 1,), dtype="<u8", buffer=padded, strides=(1,))
    return words[starts] & _BYTE_MASKS[np.minimum(lengths, _KEY_BYTES)]  # (T,), bytes after the token zeroed


class _ListOpsLookup:
    """The ListOps tokenizer's vocabulary as sorted uint64 keys, for a vectorized lookup."""

    def __init__(self, tokenizer):
        vocab = tokenizer.get_vocab()  # token -> id, the tokenizer's own table
        tokens = [token.encode("ascii") for token in vocab]
        data = np.frombuffer(b"".join(tokens), dtype=np.uint8)
        lengths = np.array([len(token) for token in tokens])
        assert lengths.max() < _KEY_BYTES, "a vocab entry must fit in a key with a byte to spare"
        keys = _pack_tokens(data, np.cumsum(lengths) - lengths, lengths)
        order = np.argsort(keys)
        self.keys = keys[order]
        self.ids = np.array([vocab[token.decode()] for token in tokens], dtype=np.int64)[order]
        self.unk_id = tokenizer.unk_token_id

    def __call__(self, keys, lengths):
        slot = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        known = (self.keys[slot] == keys) & (lengths < _KEY_BYTES)
        return np.where(known, self.ids[slot], self.unk_id)


def encode_listops(texts, max_length=2000):
    """ListOps ids of `texts`, exactly as `tokenization.listops_tokenizer` gives them, padded with 0 to max_length.

    The tokenizer's rules (parentheses dropped, whitespace split, WordLevel over its vocab, [UNK] otherwise)
    are applied with numpy over whole batches of ASCII text, ~15x faster than the tokenizer itself (LRA size,
    96k x ~1000 tokens: ~10 s instead of ~150 s of CPU); a batch with non-ASCII text goes through the tokenizer.
    Tests check that both give the same ids.
    Raises ValueError when an expression has more than max_length tokens: cutting a ListOps expression changes
    its value, so it is never truncated. Returns input_ids and attention_mask, (n, max_length) int64.
    """
    tokenizer = listops_tokenizer(max_length)
    lookup = _ListOpsLookup(tokenizer)
    ids = np.zeros((len(texts), max_length), dtype=np.int64)
    lengths = np.zeros(len(texts), dtype=np.int64)
    batch = 4096  # bounds the per-token work arrays (~4096 x 1000 tokens)
    for first in range(0, len(texts), batch):
        blobs = [text.encode("utf-8") for text in texts[first:first + batch]]
        if all(blob.isascii() for blob in blobs):
            rows, positions, tokens = _split_listops(blobs, lookup)
        else:  # Unicode whitespace rules: leave it to the tokenizer
            rows, positions, tokens = _split_with_tokenizer(blobs, tokenizer)
        counts = np.bincount(rows, minlength=len(blobs))  # (batch,) tokens per text
        if counts.max(initial=0) > max_length:
            row = first + int(np.argmax(counts))
            raise ValueError(f"ListOps example {row} has {counts.max()} tokens, more than max_length={max_length}; "
                             "ListOps is never truncated (it would change the answer): raise max_length")
        ids[first + rows, positions] = tokens
        lengths[first:first + len(blobs)] = counts
    mask = (np.arange(max_length) < lengths[:, None]).astype(np.int64)  # (n, max_length)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def _split_listops(blobs, lookup):
    """Tokens of ASCII texts: (row, position in row, id) per token, each a (T,) int64 array."""
    data = np.frombuffer(b"\n".join(blobs), dtype=np.uint8)  # (B,) all texts, newline-separated
    inside = ~_LISTOPS_SEPARATOR[data]  # (B,) True on token bytes
    edges = np.diff(np.concatenate([[False], inside, [False]]).astype(np.int8))  # +1 at a start, -1 after an end
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # (T,), (T,)
    tokens = lookup(_pack_tokens(data, starts, ends - starts), ends - starts)
    row_of_byte = np.repeat(np.arange(len(blobs)), [len(blob) + 1 for blob in blobs])[:len(data)]  # (B,)
    rows = row_of_byte[starts]  # (T,) which text each token is in
    first_token = np.searchsorted(rows, np.arange(len(blobs)))  # rows is sorted: index of each text's first token
    return rows, np.arange(len(rows)) - first_token[rows], tokens


def _split_with_tokenizer(blobs, tokenizer):
    """Same output as `_split_listops`, from the tokenizer itself."""
    encodings = tokenizer.backend_tokenizer.encode_batch([blob.decode("utf-8") for blob in blobs],
                                                        add_special_tokens=False)
    per_row = [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]
    rows = np.repeat(np.arange(len(per_row)), [len(row) for row in per_row])
    positions = np.concatenate([np.arange(len(row)) for row in per_row]) if per_row else np.zeros(0, np.int64)
    tokens = np.concatenate(per_row) if per_row else np.zeros(0, np.int64)
    return rows, positions.astype(np.int64), tokens


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


# ----------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------

def _read_split(data_dir, hub_id, split):
    """One split as a pyarrow Table plus its `datasets.Features`: from `{split}-*.parquet` in data_dir, or the Hub."""
    from datasets import Features, load_dataset

    if data_dir is None:
        ds = load_dataset(hub_id, split=split)
        return ds.data.table, ds.features
    shards = parquet_shards(data_dir, split)
    table = pa.concat_tables([pq.read_table(shard) for shard in shards])
    return table, Features.from_arrow_schema(table.schema)


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
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


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
        raise ValueError(f"unknown LRA task {task!r}; known: {sorted(LRA_TASKS)}")
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
        raise ValueError("ListOps is generated locally: run `python scripts/generate_listops.py --output-dir DIR` "
                         "(see --help for the LRA and CPU presets) and pass data_dir=DIR")
    table, features = _read_split(data_dir, None, split)
    if max_examples is not None:
        table = table.slice(0, max_examples)
    input_ids, attention_mask = encode_listops(table.column("text").to_pylist(), max_length)
    names = _label_names(features, "label", LISTOPS_DIGITS)
    return SequenceTensors(input_ids, attention_mask, label_tensor(table), names, info={"source": str(data_dir)})


def _load_image(split, data_dir, max_length, seed, validation_size, max_examples):
    if max_length != 1024:
        raise ValueError(f"LRA Image sequences are 32 x 32 = 1024 pixels; max_length={max_length} is not supported")
    folder, hub_id = _resolve_source("image", data_dir)
    table, features = _read_split(folder, hub_id, "test" if split == "test" else "train")
    validation_size = DEFAULT_VALIDATION_SIZES["image"] if validation_size is None else validation_size
    rows = _split_rows(len(table), split, validation_size, seed)
    if max_examples is not None:
        rows = rows[:max_examples]
    table = table.take(pa.array(rows.numpy()))
    column = table.column("img").combine_chunks()  # struct<bytes, path>
    gray = rgb_to_grayscale(_decode_images(column, "RGB"))  # (n, 32, 32) uint8
    input_ids = gray.reshape(len(table), -1).long()  # (n, 1024) row-major pixels, id = intensity
    names = _label_names(features, "label", CIFAR10_NAMES)
    info = {"source": str(folder or hub_id), "seed": seed, "validation_size": validation_size}
    return SequenceTensors(input_ids, torch.ones_like(input_ids), label_tensor(table), names, info=info)


def _load_text(split, data_dir, max_length, seed, validation_size, max_examples):
    folder, hub_id = _resolve_source("text", data_dir)
    table, features = _read_split(folder, hub_id, "test" if split == "test" else "train")
    validation_size = DEFAULT_VALIDATION_SIZES["text"] if validation_size is None else validation_size
    rows = _split_rows(len(table), split, validation_size, seed)
    # Shuffle (seed + 1: a stream apart from the split's): the copy is sorted by label, and a prefix
    # (max_examples, or a quick look at the first batch) must not be all one class.
    rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed + 1))]
    if max_examples is not None:
        rows = rows[:max_examples]
    table = table.take(pa.array(rows.numpy()))
    input_ids, attention_mask = encode_bytes(table.column("text").to_pylist(), max_length)
    names = _label_names(features, "label", LRA_TASKS["text"]["label_names"])
    info = {"source": str(folder or hub_id), "seed": seed, "validation_size": validation_size}
    return SequenceTensors(input_ids, attention_mask, label_tensor(table), names, info=info)


_MISSING = ("The real LRA {name} data ({what}) cannot be obtained in this environment. Pass data_dir= a folder "
            "of prepared {{train,validation,test}}-*.parquet files with columns {columns}, or use "
            "mimo_hf.lra_data.synthetic_{task}() for tests and smoke runs.")


def _load_retrieval(split, data_dir, max_length, seed, validation_size, max_examples):
    if data_dir is None:
        raise ValueError(_MISSING.format(name="Retrieval", what="ACL Anthology Network citation pairs",
                                         columns="text1, text2, label", task="retrieval"))
    table, features = _read_split(data_dir, None, split)
    if max_examples is not None:
        table = table.slice(0, max_examples)
    ids_1, mask_1 = encode_bytes(table.column("text1").to_pylist(), max_length)
    ids_2, mask_2 = encode_bytes(table.column("text2").to_pylist(), max_length)
    names = _label_names(features, "label", LRA_TASKS["retrieval"]["label_names"])
    return SequenceTensors(ids_1, mask_1, label_tensor(table), names, ids_2, mask_2, info={"source": str(data_dir)})


def _load_pathfinder(split, data_dir, max_length, seed, validation_size, max_examples):
    if data_dir is None:
        raise ValueError(_MISSING.format(name="Pathfinder", what="the Pathfinder-32 images",
                                         columns="image (PNG bytes), label", task="pathfinder"))
    table, features = _read_split(data_dir, None, split)
    if max_examples is not None:
        table = table.slice(0, max_examples)
    images = _decode_images(table.column("image").combine_chunks(), "L")  # (n, 1, H, W) uint8
    input_ids = images.reshape(len(table), -1).long()  # (n, H*W)
    if input_ids.shape[1] != max_length:
        raise ValueError(f"Pathfinder images have {input_ids.shape[1]} pixels, but max_length={max_length}")
    names = _label_names(features, "label", LRA_TASKS["pathfinder"]["label_names"])
    return SequenceTensors(input_ids, torch.ones_like(input_ids), label_tensor(table), names,
                           info={"source": str(data_dir)})


# ----------------------------------------------------------------------------------------------------------
# Synthetic stand-ins for Retrieval and Pathfinder (tests and smoke runs only)
# ----------------------------------------------------------------------------------------------------------

def synthetic_retrieval(num_examples, length=4000, seed=0):
    """Document pairs in the Retrieval layout; label 1 if the second document is derived from the first.

    First document: random lowercase words, length/2..length bytes. A related second document is a suffix of
    the first with 10% of its bytes replaced; an unrelated one is an independent random document.
    Returns a SequenceTensors with input_ids/input_ids_2 of shape (n, length) (byte + 1, padded with 0).
    """
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz     ", dtype=np.uint8)  # ~1 space per 5 letters

    def document(size):
        return alphabet[rng.integers(0, len(alphabet), size)]

    first, second = [], []
    labels = rng.integers(0, 2, num_examples)  # (n,)
    for label in labels:
        doc = document(rng.integers(max(length // 2, 1), length + 1))
        if label:
            derived = doc[rng.integers(0, len(doc) // 4 + 1):].copy()
            changed = rng.random(len(derived)) < 0.1
            derived[changed] = document(int(changed.sum()))
        else:
            derived = document(rng.integers(max(length // 2, 1), length + 1))
        first.append(doc.tobytes())
        second.append(derived.tobytes())
    ids_1, mask_1 = encode_bytes(first, length)
    ids_2, mask_2 = encode_bytes(second, length)
    return SequenceTensors(ids_1, mask_1, torch.from_numpy(labels.astype(np.int64)),
                           list(LRA_TASKS["retrieval"]["label_names"]), ids_2, mask_2, task="retrieval",
                           info={"source": "synthetic_retrieval", "seed": seed})


PATH_VALUE = 128  # pixel value of drawn paths in synthetic_pathfinder
MARKER_VALUE = 255  # pixel value of the two end-point markers


def _random_walk(rng, image, start, steps):
    """Draw a 4-connected walk with some momentum from `start` into `image` (H, W); return its last point."""
    size = image.shape[0]
    moves = ((0, 1), (1, 0), (0, -1), (-1, 0))
    y, x = start
    direction = rng.integers(4)
    image[y, x] = PATH_VALUE
    for _ in range(steps):
        if rng.random() < 0.3:  # turn now and then, so paths curve
            direction = rng.integers(4)
        dy, dx = moves[direction]
        if not (0 <= y + dy < size and 0 <= x + dx < size):  # bounce off the border
            direction = (direction + 2) % 4
            dy, dx = moves[direction]
        y, x = y + dy, x + dx
        image[y, x] = PATH_VALUE
    return y, x


def _connected(mask, a, b):
    """Whether pixels a and b are joined through True pixels of mask (H, W), 4-neighbourhood flood fill."""
    seen = np.zeros_like(mask)
    stack = [a]
    seen[a] = True
    while stack:
        y, x = stack.pop()
        if (y, x) == b:
            return True
        for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
            if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                seen[ny, nx] = True
                stack.append((ny, nx))
    return False


def synthetic_pathfinder(num_examples, image_size=32, seed=0):
    """Small Pathfinder look-alikes as pixel sequences; label 1 if the two markers are joined by a drawn path.

    Each image (image_size x image_size, background 0) has paths (value 128) drawn as random walks, one
    distractor walk, and exactly two markers (value 255). Positives: the markers are the two ends of one walk;
    negatives: they start two separate walks. The label is checked by a flood fill, and a draw whose
    connectivity differs from the intended label is redrawn. Returns a SequenceTensors with input_ids
    (n, image_size**2), row-major pixel values.
    """
    rng = np.random.default_rng(seed)
    images = np.zeros((num_examples, image_size, image_size), dtype=np.uint8)  # (n, S, S)
    labels = rng.integers(0, 2, num_examples)  # (n,)
    steps = (image_size, 3 * image_size)
    for i, wanted in enumerate(labels):
        while True:
            image = np.zeros((image_size, image_size), dtype=np.uint8)
            first = tuple(rng.integers(0, image_size, 2))
            if wanted:
                second = _random_walk(rng, image, first, rng.integers(*steps))
            else:
                second = tuple(rng.integers(0, image_size, 2))
                _random_walk(rng, image, first, rng.integers(*steps))
                _random_walk(rng, image, second, rng.integers(*steps))
            _random_walk(rng, image, tuple(rng.integers(0, image_size, 2)), rng.integers(*steps))  # distractor
            if first == second or _connected(image > 0, first, second) != bool(wanted):
                continue  # a walk that returned to its start, or paths that touched: draw again
            image[first] = image[second] = MARKER_VALUE
            images[i] = image
            break
    input_ids = torch.from_numpy(images.reshape(num_examples, -1).astype(np.int64))  # (n, S*S)
    return SequenceTensors(input_ids, torch.ones_like(input_ids), torch.from_numpy(labels.astype(np.int64)),
                           list(LRA_TASKS["pathfinder"]["label_names"]), task="pathfinder",
                           info={"source": "synthetic_pathfinder", "seed": seed})
