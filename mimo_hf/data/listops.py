"""ListOps (Long Range Arena): the generator with the published LRA rules, its presets, and its parquet files.

`generate_listops` re-implements the rules of lra_benchmarks/data/listops.py; `write_listops_dataset`
(and `scripts/generate_listops.py`) writes the train/validation/test splits that `data.lra.load_lra_task`
reads back. `LISTOPS_PRESETS` are the two sizes this project uses: the LRA task itself and the shorter
ListOps-CPU for CPU-only runs; the generator script, the evaluation's dataset names and the model cards
all read them from here.
"""

import json
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from mimo_hf.data.tokenization import LISTOPS_DIGITS, LISTOPS_END, LISTOPS_OPERATORS


@dataclass(frozen=True)
class ListOpsPreset:
    """Split sizes and token-length window (min_length < tokens < max_length) of one generated ListOps."""

    title: str
    train_size: int
    validation_size: int
    test_size: int
    min_length: int
    max_length: int

    def matches(self, generation):
        """Whether a generation.json record was written with this preset's sizes and lengths."""
        splits = generation.get("splits", {})
        return (generation.get("min_length"), generation.get("max_length")) == (self.min_length, self.max_length) \
            and [splits.get(s) for s in ("train", "validation", "test")] == \
            [self.train_size, self.validation_size, self.test_size]


LISTOPS_PRESETS = {
    # The LRA ListOps task: 96000 / 2000 / 2000 expressions with 500 < tokens < 2000.
    "lra": ListOpsPreset("LRA ListOps", 96000, 2000, 2000, 500, 2000),
    # ListOps-CPU: smaller and shorter for CPU-only runs, same rules; not comparable with LRA ListOps scores.
    "cpu": ListOpsPreset("ListOps-CPU", 20000, 1000, 1000, 100, 500),
}


def preset_of(generation):
    """The name of the preset a generation.json record matches, or None."""
    return next((name for name, preset in LISTOPS_PRESETS.items() if preset.matches(generation)), None)


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
        "generator": "mimo_hf.data.listops.generate_listops (LRA rules of lra_benchmarks/data/listops.py)",
        "format": "tokens separated by single spaces, no parentheses; label = value of the expression",
        "seed": seed, "min_length": min_length, "max_length": max_length, "max_depth": max_depth,
        "max_args": max_args, "value_p": VALUE_P, "chunk_size": LISTOPS_CHUNK_SIZE,
        "operators": list(LISTOPS_OPERATORS), "splits": sizes, "token_lengths": lengths,
    }
    (out / "generation.json").write_text(json.dumps(record, indent=2) + "\n")
    return record

