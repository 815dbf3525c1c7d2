"""Long Range Arena data: ListOps rules and determinism, the loaders' encodings, the synthetic stand-ins."""

import io
import json
import random
from collections import deque
from pathlib import Path

import numpy as np
import PIL.Image
import pyarrow.parquet as pq
import pytest
import torch

from mimo_hf.data import lra as lra_data
from mimo_hf.data.lra import (
    LRA_TASKS,
    SequenceTensors,
    apply_listops_operator,
    encode_bytes,
    encode_listops,
    generate_listops,
    load_lra_task,
    synthetic_pathfinder,
    synthetic_retrieval,
    write_listops_dataset,
)
from mimo_hf.data.tokenization import byte_tokenizer, listops_tokenizer

# The offline copies live beside the repository: <repo>/../shared/data/<name>.
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CIFAR10 = DATA / "cifar10"
IMDB = DATA / "imdb"
needs_cifar = pytest.mark.skipif(not CIFAR10.is_dir(), reason=f"no offline CIFAR-10 in {DATA}")
needs_imdb = pytest.mark.skipif(not IMDB.is_dir(), reason=f"no offline IMDB in {DATA}")

OPERATORS = {"[MAX", "[MIN", "[MED", "[SM"}


# ---------------------------------------------------------------------------------------------- ListOps

def parse(text):
    """Independent reading of a generated expression: (tree, value, depth, arg counts).

    tree: a digit int or (operator, [children]); value uses numpy like LRA's `to_value`; depth counts the root
    as 1 and includes the digits (LRA's `generate_tree` depth); arg counts lists every operator's argument count.
    """
    stack = [("root", [])]
    for token in text.split():
        if token in OPERATORS:
            stack.append((token, []))
        elif token == "]":
            node = stack.pop()
            stack[-1][1].append(node)
        else:
            assert token.isdigit() and len(token) == 1, token
            stack[-1][1].append(int(token))
    assert len(stack) == 1 and len(stack[0][1]) == 1, "unbalanced expression"
    tree = stack[0][1][0]
    args = []

    def walk(node):  # -> (value, depth)
        if isinstance(node, int):
            return node, 1
        operator, children = node
        args.append(len(children))
        results = [walk(child) for child in children]
        values = [value for value, _ in results]
        value = {"[MAX": max, "[MIN": min, "[MED": lambda v: int(np.median(v)),
                 "[SM": lambda v: int(np.sum(v)) % 10}[operator](values)
        return value, 1 + max(depth for _, depth in results)

    value, depth = walk(tree)
    return tree, value, depth, args


def lra_string(tree):
    """The expression as LRA's raw tsv writes it: nested ( left right ) pairs, as its `to_string` does."""
    def nest(node):
        if isinstance(node, int):
            return node
        operator, children = node
        pair = (operator, nest(children[0]))
        for child in children[1:]:
            pair = (pair, nest(child))
        return (pair, "]")

    def render(t):
        return str(t) if not isinstance(t, tuple) else f"( {render(t[0])} {render(t[1])} )"

    return render(nest(tree))


@pytest.fixture(scope="module")
def small_listops():
    """600 expressions of 20..199 tokens (seed 3), generated once."""
    return generate_listops(600, 20, 200, seed=3)


def test_listops_rules_and_labels(small_listops):
    """Labels equal an independent evaluator; length bounds, depth <= 10 and 2..10 args per operator hold."""
    depths = []
    for text, label in small_listops:
        _, value, depth, args = parse(text)
        assert label == value and isinstance(label, int) and 0 <= label <= 9
        assert 20 < len(text.split()) < 200
        assert "(" not in text and ")" not in text and "  " not in text
        assert depth <= 10 and all(2 <= count <= 10 for count in args)
        depths.append(depth)
    assert len({text for text, _ in small_listops}) == 600
    assert max(depths) == 10  # the depth limit is reached, not just respected
    assert len({label for _, label in small_listops}) == 10


def test_listops_operator_values_follow_lra():
    """MED is int(np.median(...)) (floor of the middle pair's mean), SM is the sum mod 10."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        args = rng.integers(0, 10, rng.integers(2, 11)).tolist()
        assert apply_listops_operator("[MED", args) == int(np.median(args))
        assert apply_listops_operator("[SM", args) == sum(args) % 10
        assert apply_listops_operator("[MAX", args) == max(args) and apply_listops_operator("[MIN", args) == min(args)
    assert apply_listops_operator("[MED", [3, 8]) == 5 and apply_listops_operator("[MED", [1, 2]) == 1


def test_listops_value_probability_rule():
    """Unfiltered trees: a node below max depth is an operator with probability 0.25; args uniform on 2..max_args."""
    rng = random.Random(0)
    roots, args = [], []
    for _ in range(4000):
        tokens = []
        lra_data._random_tree(rng, 1, 10, 10, tokens, 10 ** 9)
        roots.append(tokens[0] in OPERATORS)
        if tokens[0] in OPERATORS:
            args.extend(parse(" ".join(tokens))[3][:1])  # the root's argument count
    assert abs(np.mean(roots) - 0.25) < 0.03
    assert abs(np.mean(args) - 6.0) < 0.3 and set(args) == set(range(2, 11))
    tokens = []  # at max_depth=2 every argument of the root is a digit
    while not tokens or tokens[0] not in OPERATORS:
        tokens = []
        lra_data._random_tree(rng, 1, 2, 10, tokens, 10 ** 9)
    assert all(token.isdigit() for token in tokens[1:-1])


def test_listops_deterministic_for_seed_and_workers(monkeypatch, small_listops):
    """Same seed, same data; another seed, other data; 1 or 3 worker processes, the same data."""
    assert generate_listops(600, 20, 200, seed=3) == small_listops
    assert generate_listops(50, 20, 200, seed=4)[:5] != small_listops[:5]
    monkeypatch.setattr(lra_data, "LISTOPS_CHUNK_SIZE", 40)  # several chunks, so the merge order matters
    serial = generate_listops(230, 20, 200, seed=5)
    assert generate_listops(230, 20, 200, seed=5, workers=3) == serial
    assert len({text for text, _ in serial}) == 230


def test_listops_duplicates_are_removed_and_exhaustion_detected():
    """A tiny space (lengths 4..5) is full of repeats: results stay distinct; impossible settings raise."""
    examples = generate_listops(300, 3, 6, seed=0)  # "[OP d d ]" and "[OP d d d ]": 4 * (100 + 1000) exist
    assert len({text for text, _ in examples}) == 300
    with pytest.raises(ValueError, match="distinct"):
        generate_listops(500, 3, 5, seed=0)  # only 4 * 100 expressions of 4 tokens exist
    with pytest.raises(ValueError, match="no ListOps expression"):
        generate_listops(10, 12, 13, seed=0, max_depth=2)  # depth 2 gives at most 12 tokens


def test_write_and_load_listops(tmp_path):
    """Parquet splits load with `datasets`, are disjoint, and tokenize to padded ids; too long raises."""
    from datasets import load_dataset

    record = write_listops_dataset(tmp_path, 120, 30, 30, min_length=10, max_length=120, seed=7, progress=False)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["generation.json", "test-00000-of-00001.parquet", "train-00000-of-00001.parquet",
                     "validation-00000-of-00001.parquet"]
    assert json.loads((tmp_path / "generation.json").read_text()) == record
    assert record["splits"] == {"train": 120, "validation": 30, "test": 30} and record["seed"] == 7
    files = {split: str(tmp_path / f"{split}-00000-of-00001.parquet") for split in ("train", "validation", "test")}
    ds = load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf-cache"))
    assert ds["train"].column_names == ["text", "label"] and ds["train"].features["label"].names[3] == "3"
    columns = {split: (list(ds[split]["text"]), list(ds[split]["label"])) for split in files}  # Column -> list
    texts = {split: set(columns[split][0]) for split in files}
    assert not (texts["train"] & texts["validation"] or texts["train"] & texts["test"]
                or texts["validation"] & texts["test"])
    assert list(zip(*columns["train"])) == \
        generate_listops(180, 10, 120, seed=7)[:120]

    data = load_lra_task("listops", "validation", data_dir=tmp_path, max_length=128)
    assert data.input_ids.shape == (30, 128) and data.input_ids.dtype == torch.int64
    assert data.attention_mask.dtype == torch.int64 and data.labels.tolist() == columns["validation"][1]
    assert data.label_names == [str(d) for d in range(10)] and data.task == "listops" and data.input_ids_2 is None
    tokenizer = listops_tokenizer()
    expected = tokenizer(columns["validation"][0], padding="max_length", max_length=128)
    assert data.input_ids.tolist() == expected["input_ids"]
    assert data.attention_mask.tolist() == expected["attention_mask"]
    few = load_lra_task("listops", "test", data_dir=tmp_path, max_length=128, max_examples=5)
    assert few.input_ids.shape == (5, 128)

    longest = max(len(text.split()) for text in columns["validation"][0])
    with pytest.raises(ValueError, match="never truncated"):
        load_lra_task("listops", "validation", data_dir=tmp_path, max_length=longest - 1)
    with pytest.raises(ValueError, match="generate_listops"):
        load_lra_task("listops", "train")


def test_listops_raw_lra_lines_encode_identically(small_listops):
    """LRA's raw tsv form (with parentheses) of the same trees gives exactly our ids."""
    texts = [text for text, _ in small_listops[:50]]
    raw = [lra_string(parse(text)[0]) for text in texts]
    assert "(" in raw[0] and raw[0].replace("(", "").replace(")", "").split() == texts[0].split()
    ours_ids, ours_mask = encode_listops(texts, 200)
    raw_ids, raw_mask = encode_listops(raw, 200)
    assert torch.equal(ours_ids, raw_ids) and torch.equal(ours_mask, raw_mask)


def test_encode_listops_matches_the_tokenizer_on_odd_input():
    """The vectorized encoder reproduces the tokenizer: any whitespace, glued parentheses, unknown and special
    words, empty texts; a batch with non-ASCII text (tokenizer fallback) gives the same ids."""
    odd = ["", "   ", "7", "( ( [MAX 2 ) 9 ) ] )", "[FIRST 3 ]\t[CLS]\n[PAD] [UNK] 12 x ((8))", " [SM 1 2 ] ",
           "[MAXIMUMS 1 ]", "\x0b[MED\x0c4\r5 ]", "a\x1fb", "[MAX" * 3]
    expected = listops_tokenizer()(odd, padding="max_length", max_length=12)
    ids, mask = encode_listops(odd, 12)
    assert ids.tolist() == expected["input_ids"] and mask.tolist() == expected["attention_mask"]
    ids, mask = encode_listops(odd + ["[MAX 1 é ]"], 12)
    assert ids[:-1].tolist() == expected["input_ids"] and ids[-1, :5].tolist() == [2, 8, 1, 6, 0]
    with pytest.raises(ValueError, match="example 4 has 9 tokens"):
        encode_listops(odd, 8)


def test_generate_listops_script(tmp_path, capsys):
    """The CLI writes a loadable folder; flags override the preset; --help shows the presets."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "generate_listops.py"
    spec = importlib.util.spec_from_file_location("generate_listops", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    record = script.main(["--preset", "cpu", "--train-size", "40", "--validation-size", "5", "--test-size", "5",
                          "--min-length", "10", "--max-length", "60", "--seed", "2", "--workers", "1",
                          "--output-dir", str(tmp_path), "--no-progress"])
    assert record["splits"] == {"train": 40, "validation": 5, "test": 5} and record["max_length"] == 60
    assert script.parse_args(["--preset", "cpu", "--output-dir", "x"]).train_size == 20000
    assert vars(script.parse_args(["--output-dir", "x"]))["min_length"] == 500
    assert load_lra_task("listops", "test", data_dir=tmp_path, max_length=60).input_ids.shape == (5, 60)
    with pytest.raises(SystemExit):
        script.main(["--help"])
    assert "ListOps-CPU" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- Image

@needs_cifar
def test_image_grayscale_matches_hand_computation():
    """Pixels of a real CIFAR-10 test image: TF's 0.2989 R + 0.5870 G + 0.1140 B, then x / 255 * 255.5 truncated."""
    data = load_lra_task("image", "test", data_dir=CIFAR10, max_examples=3)
    assert data.input_ids.shape == (3, 1024) and data.input_ids.dtype == torch.int64
    assert torch.equal(data.attention_mask, torch.ones(3, 1024, dtype=torch.int64))
    table = pq.read_table(CIFAR10 / "test-00000-of-00001.parquet").slice(0, 3)
    assert data.labels.tolist() == table.column("label").to_pylist()
    assert data.label_names[:3] == ["airplane", "automobile", "bird"]
    for row in range(3):
        rgb = np.asarray(PIL.Image.open(io.BytesIO(table.column("img")[row]["bytes"].as_py())).convert("RGB"))
        gray = (0.2989 * rgb[..., 0] + 0.5870 * rgb[..., 1] + 0.1140 * rgb[..., 2]) / 255 * 255.5  # (32, 32)
        expected = np.floor(gray).astype(np.int64).reshape(-1)
        got = data.input_ids[row].numpy()
        # float32 (as in TF) may land on the other side of an integer only within rounding distance of it.
        clear = np.abs(gray - np.round(gray)).reshape(-1) > 1e-3
        assert np.array_equal(got[clear], expected[clear]) and np.abs(got - expected).max() <= 1
        assert got.min() >= 0 and got.max() <= 255 and got.std() > 10  # a real picture, not a fill


@needs_cifar
def test_image_validation_is_a_seeded_held_out_part_of_train():
    """validation = data.train_validation_split's held-out rows of the train parquet; train is the rest."""
    rows = {split: lra_data._split_rows(50000, split, 5000, seed=0) for split in ("train", "validation")}
    assert len(rows["train"]) == 45000 and len(rows["validation"]) == 5000
    assert torch.cat([rows["train"], rows["validation"]]).unique().numel() == 50000
    assert not torch.equal(rows["validation"], lra_data._split_rows(50000, "validation", 5000, seed=1))
    data = load_lra_task("image", "validation", data_dir=CIFAR10, max_examples=2)
    labels = pq.read_table(CIFAR10 / "train-00000-of-00001.parquet", columns=["label"]).column("label").to_numpy()
    assert data.labels.tolist() == labels[rows["validation"][:2].numpy()].tolist()
    with pytest.raises(ValueError, match="1024"):
        load_lra_task("image", "test", data_dir=CIFAR10, max_length=512)


# ---------------------------------------------------------------------------------------------- Text

@needs_imdb
def test_text_bytes_equal_the_byte_tokenizer_and_truncate_at_4000():
    """Numpy ids == byte tokenizer ids (truncated right, padded with 0 to 4000); rows shuffled; deterministic."""
    data = load_lra_task("text", "test", data_dir=IMDB, max_examples=300)
    assert data.input_ids.shape == (300, 4000) and data.label_names == ["neg", "pos"]
    assert 100 < int(data.labels.sum()) < 200  # shuffled: the copy itself is sorted by label
    table = pq.read_table(IMDB / "test-00000-of-00001.parquet")
    rows = torch.randperm(25000, generator=torch.Generator().manual_seed(1))[:300].numpy()
    texts = table.column("text").take(rows).to_pylist()
    assert data.labels.tolist() == table.column("label").take(rows).to_pylist()
    expected = byte_tokenizer()(texts, padding="max_length", truncation=True, max_length=4000)
    assert data.input_ids.tolist() == expected["input_ids"]
    assert data.attention_mask.tolist() == expected["attention_mask"]
    lengths = np.array([len(text.encode("utf-8")) for text in texts])
    assert (lengths > 4000).any() and (lengths > 4000).sum() == (data.attention_mask.sum(1) == 4000).sum()
    again = load_lra_task("text", "test", data_dir=IMDB, max_examples=5)
    assert torch.equal(again.input_ids, data.input_ids[:5])


@needs_imdb
def test_text_validation_is_held_out_of_train():
    """Train and validation rows are disjoint parts of the train parquet, chosen by the seed."""
    train = load_lra_task("text", "train", data_dir=IMDB, max_examples=40, max_length=64)
    validation = load_lra_task("text", "validation", data_dir=IMDB, max_examples=40, max_length=64)
    assert train.input_ids.shape == (40, 64)
    first = {tuple(row) for row in train.input_ids.tolist()}
    assert not first & {tuple(row) for row in validation.input_ids.tolist()}
    assert train.info["validation_size"] == 2500


def test_encode_bytes_truncates_multibyte_text():
    """4000-byte truncation counts bytes, not characters; bytes input works too."""
    text = "é" * 2500  # 5000 bytes
    ids, mask = encode_bytes([text, b"\x00\xff"], 4000)
    assert ids.shape == mask.shape == (2, 4000)
    assert ids[0].tolist() == [b + 1 for b in text.encode()[:4000]] and int(mask[0].sum()) == 4000
    assert ids[1, :3].tolist() == [1, 256, 0] and mask[1, :3].tolist() == [1, 1, 0]


# ---------------------------------------------------------------------------------------------- Retrieval, Pathfinder

def components_connected(image, a, b):
    """Breadth-first search over nonzero pixels (4-neighbourhood), written apart from the library's flood fill."""
    queue, seen = deque([a]), {a}
    while queue:
        y, x = queue.popleft()
        for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
            if (0 <= ny < image.shape[0] and 0 <= nx < image.shape[1] and image[ny, nx]
                    and (ny, nx) not in seen):
                seen.add((ny, nx))
                queue.append((ny, nx))
    return b in seen


def test_synthetic_retrieval_pairs():
    """Two padded byte documents per example; related pairs share most bytes of a suffix, unrelated do not."""
    data = synthetic_retrieval(40, 256, seed=0)
    assert data.input_ids.shape == data.input_ids_2.shape == (40, 256) and data.task == "retrieval"
    assert data.attention_mask_2.shape == (40, 256) and set(data.labels.tolist()) == {0, 1}
    for ids, mask in ((data.input_ids, data.attention_mask), (data.input_ids_2, data.attention_mask_2)):
        assert torch.equal(ids > 0, mask.bool()) and int(ids.max()) <= 256
    for i in range(40):
        first = bytes((data.input_ids[i][data.attention_mask[i].bool()] - 1).tolist())
        second = bytes((data.input_ids_2[i][data.attention_mask_2[i].bool()] - 1).tolist())
        suffix = first[len(first) - len(second):]
        agreement = np.mean(np.frombuffer(suffix, np.uint8) == np.frombuffer(second, np.uint8)) \
            if len(second) <= len(first) else 0.0
        assert (agreement > 0.8) == bool(data.labels[i])
    assert torch.equal(synthetic_retrieval(40, 256, seed=0).input_ids_2, data.input_ids_2)
    part = data.subset(torch.tensor([3, 1]))
    assert torch.equal(part.input_ids_2[0], data.input_ids_2[3])
    assert part.labels.tolist() == data.labels[[3, 1]].tolist()


def test_synthetic_pathfinder_labels_are_connectivity():
    """Two markers per image; the label is whether a path joins them (checked by an independent search)."""
    data = synthetic_pathfinder(60, image_size=16, seed=0)
    assert data.input_ids.shape == (60, 256) and set(data.labels.tolist()) == {0, 1}
    assert torch.equal(data.attention_mask, torch.ones(60, 256, dtype=torch.int64))
    for ids, label in zip(data.input_ids, data.labels):
        image = ids.view(16, 16).numpy()
        markers = list(zip(*np.nonzero(image == 255)))
        assert len(markers) == 2 and set(np.unique(image)) <= {0, 128, 255}
        assert components_connected(image, tuple(markers[0]), tuple(markers[1])) == bool(label)
    assert torch.equal(synthetic_pathfinder(60, image_size=16, seed=0).input_ids, data.input_ids)


def test_unavailable_tasks_explain_themselves():
    for task in ("retrieval", "pathfinder"):
        with pytest.raises(ValueError, match="cannot be obtained"):
            load_lra_task(task, "train")
    with pytest.raises(ValueError, match="unknown LRA task"):
        load_lra_task("imdb", "train")
    with pytest.raises(ValueError, match="split"):
        load_lra_task("text", "dev")


def test_prepared_retrieval_and_pathfinder_folders(tmp_path):
    """Prepared parquet (text1/text2/label; PNG image/label) loads back to the tensors it was written from."""
    from datasets import Dataset, Features, Image, Value

    pairs = synthetic_retrieval(6, 64, seed=1)

    def text(ids, mask):
        return [bytes((row[m.bool()] - 1).tolist()).decode("ascii") for row, m in zip(ids, mask)]

    Dataset.from_dict({"text1": text(pairs.input_ids, pairs.attention_mask),
                       "text2": text(pairs.input_ids_2, pairs.attention_mask_2),
                       "label": pairs.labels.tolist()}).to_parquet(str(tmp_path / "test-00000-of-00001.parquet"))
    loaded = load_lra_task("retrieval", "test", data_dir=tmp_path, max_length=64)
    assert torch.equal(loaded.input_ids, pairs.input_ids)
    assert torch.equal(loaded.attention_mask_2, pairs.attention_mask_2)
    assert torch.equal(loaded.labels, pairs.labels)

    paths = synthetic_pathfinder(5, image_size=32, seed=2)
    pngs = []
    for ids in paths.input_ids:
        buffer = io.BytesIO()
        PIL.Image.fromarray(ids.view(32, 32).numpy().astype(np.uint8), mode="L").save(buffer, format="PNG")
        pngs.append({"bytes": buffer.getvalue(), "path": None})
    folder = tmp_path / "pathfinder"
    folder.mkdir()
    Dataset.from_dict({"image": pngs, "label": paths.labels.tolist()},
                      features=Features({"image": Image(), "label": Value("int64")})).to_parquet(
        str(folder / "validation-00000-of-00001.parquet"))
    loaded = load_lra_task("pathfinder", "validation", data_dir=folder)
    assert torch.equal(loaded.input_ids, paths.input_ids) and torch.equal(loaded.labels, paths.labels)


def test_task_table_matches_the_tokenizers():
    """vocab sizes, pad and CLS ids (CLS = vocab_size - 1) agree with the tokenizers; names fit num_labels."""
    assert LRA_TASKS["listops"]["vocab_size"] == len(listops_tokenizer()) == 18
    assert LRA_TASKS["text"]["vocab_size"] == LRA_TASKS["retrieval"]["vocab_size"] == len(byte_tokenizer()) == 258
    for name, task in LRA_TASKS.items():
        assert task["cls_token_id"] == task["vocab_size"] - 1 and task["pad_token_id"] == 0
        assert len(task["label_names"]) == task["num_labels"], name
    assert LRA_TASKS["image"]["max_length"] == 1024 and LRA_TASKS["text"]["max_length"] == 4000
    ids = torch.arange(6).view(3, 2)
    data = SequenceTensors(ids, torch.ones_like(ids), torch.tensor([0, 1, 0]), ["a", "b"])
    assert len(data) == 3 and data.subset(torch.tensor([2])).input_ids.tolist() == [[4, 5]]
    assert data.subset(torch.tensor([2])).input_ids_2 is None
