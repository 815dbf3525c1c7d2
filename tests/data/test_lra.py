"""Long Range Arena tasks: the loaders' encodings and splits, prepared folders, the task table."""

import io
import json
from pathlib import Path

import numpy as np
import PIL.Image
import pyarrow.parquet as pq
import pytest
import torch

from mimo_hf.data import DataError
from mimo_hf.data import lra as lra_data
from mimo_hf.data.listops import generate_listops, write_listops_dataset
from mimo_hf.data.lra import LRA_TASKS, SequenceTensors, load_lra_task
from mimo_hf.data.synthetic import synthetic_pathfinder, synthetic_retrieval
from mimo_hf.data.tokenization import byte_tokenizer, listops_tokenizer

# The offline copies live beside the repository: <repo>/../shared/data/<name>.
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CIFAR10 = DATA / "cifar10"
IMDB = DATA / "imdb"
needs_cifar = pytest.mark.skipif(not CIFAR10.is_dir(), reason=f"no offline CIFAR-10 in {DATA}")
needs_imdb = pytest.mark.skipif(not IMDB.is_dir(), reason=f"no offline IMDB in {DATA}")

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
    with pytest.raises(DataError, match="never truncated"):
        load_lra_task("listops", "validation", data_dir=tmp_path, max_length=longest - 1)
    with pytest.raises(ValueError, match="generate_listops"):
        load_lra_task("listops", "train")


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


def test_unavailable_tasks_explain_themselves():
    """DataError: the scripts print these as one line."""
    for task in ("retrieval", "pathfinder"):
        with pytest.raises(DataError, match="cannot be obtained"):
            load_lra_task(task, "train")
    with pytest.raises(DataError, match="unknown LRA task"):
        load_lra_task("imdb", "train")
    with pytest.raises(DataError, match="split"):
        load_lra_task("text", "dev")


def test_a_folder_without_the_tasks_columns_names_them(tmp_path):
    import pyarrow as pa

    pq.write_table(pa.table({"sentence": ["[MAX 1 2 ]"], "label": [2]}), tmp_path / "train-00000-of-00001.parquet")
    with pytest.raises(DataError, match=r"split 'train' has no column 'text' \(this task reads text, label\); "
                                        r"its columns: \['sentence', 'label'\]"):
        load_lra_task("listops", "train", data_dir=tmp_path)


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


def test_text_task_refuses_labels_outside_its_classes(tmp_path):
    """A 3-class text folder given as LRA Text is an error that points to fine-tuning, not an IndexError in the loss."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["a", "b", "c", "d"], "label": [0, 1, 2, 1]}), tmp_path / "train-0.parquet")
    with pytest.raises(ValueError, match=r"labels \[0, 1, 2\] are not LRA Text's 2 classes.*--model-name-or-path"):
        load_lra_task("text", "train", data_dir=str(tmp_path), validation_size=1)
