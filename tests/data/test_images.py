"""Loading the offline parquet copies into uint8 tensors, and the seeded train/validation split."""

from pathlib import Path

import pytest
import torch

from mimo_hf.data.images import DATASETS, ImageTensors, dataset_info, load_image_dataset, train_validation_split

# The offline copies live beside the repository: <repo>/../shared/data/<name>.
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CIFAR10 = DATA / "cifar10"
MNIST = DATA / "mnist"
needs_data = pytest.mark.skipif(not (CIFAR10.is_dir() and MNIST.is_dir()), reason=f"no offline data in {DATA}")

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def cifar10_test():
    """The CIFAR-10 test split (10k images), decoded once for this module."""
    return load_image_dataset("uoft-cs/cifar10", data_dir=CIFAR10, split="test")


def test_registry_names():
    """Hub ids and short names resolve to the same schema; short names key the normalisation stats."""
    assert dataset_info("cifar100") is DATASETS["uoft-cs/cifar100"]
    assert DATASETS["uoft-cs/cifar100"].label_column == "fine_label"
    assert DATASETS["ylecun/mnist"].image_column == "image"
    assert {info.name for info in DATASETS.values()} == {"cifar10", "cifar100", "mnist"}


@needs_data
def test_cifar10_test_split(cifar10_test):
    """10k RGB 32x32 uint8 images, 1000 per class, the standard class names."""
    data = cifar10_test
    assert data.images.shape == (10000, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.labels.shape == (10000,) and data.labels.dtype == torch.int64
    assert data.labels.bincount().tolist() == [1000] * 10
    assert data.label_names == CIFAR10_NAMES
    assert data.dataset == "cifar10" and len(data) == 10000
    # Real pixels, not a constant fill: the mean is near the published CIFAR-10 channel means.
    mean = data.images.float().mean((0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor([0.4914, 0.4822, 0.4465]), atol=0.01)


@needs_data
def test_mnist_is_one_channel():
    """MNIST loads as 1-channel 28x28 with digit names; the first test labels match the official order."""
    data = load_image_dataset("ylecun/mnist", data_dir=MNIST, split="test")
    assert data.images.shape == (10000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert data.label_names == [str(i) for i in range(10)]
    assert data.dataset == "mnist"


def _toy(n=100):
    """A small synthetic ImageTensors whose image i is filled with the value i (to track rows)."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    return ImageTensors(images, torch.arange(n) % 10, [str(i) for i in range(10)], "cifar10")


def test_train_validation_split_disjoint_and_seeded():
    """The two parts partition the set, rows stay paired with their labels, and the seed fixes the split."""
    data = _toy()
    train, val = train_validation_split(data, validation_size=20, seed=0)
    assert len(train) == 80 and len(val) == 20
    ids_train, ids_val = train.images[:, 0, 0, 0].long(), val.images[:, 0, 0, 0].long()
    assert set(ids_train.tolist()).isdisjoint(ids_val.tolist())
    assert sorted(ids_train.tolist() + ids_val.tolist()) == list(range(100))
    assert torch.equal(train.labels, ids_train % 10) and torch.equal(val.labels, ids_val % 10)

    again = train_validation_split(data, validation_size=20, seed=0)[1]
    other = train_validation_split(data, validation_size=20, seed=1)[1]
    assert torch.equal(again.images, val.images)
    assert not torch.equal(other.images, val.images)


def test_split_size_errors():
    """A validation set as large as the data (or empty) is an error, not a silent empty training set."""
    with pytest.raises(ValueError, match="validation_size"):
        train_validation_split(_toy(10), validation_size=10)
    with pytest.raises(ValueError, match="validation_size"):
        train_validation_split(_toy(10), validation_size=0)


def test_unknown_dataset_error(tmp_path):
    """An id whose columns are not known is rejected before anything is loaded."""
    with pytest.raises(ValueError, match="unknown dataset 'someone/birds'"):
        load_image_dataset("someone/birds", data_dir=tmp_path)


def test_missing_folder_error(tmp_path):
    """A data directory that does not exist gives a FileNotFoundError naming it."""
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_dataset("uoft-cs/cifar10", data_dir=tmp_path / "nowhere")


@needs_data
def test_missing_split_error():
    """A split without shards names the pattern it looked for and the shards that are there."""
    with pytest.raises(FileNotFoundError, match=r"validation-\*\.parquet.*test-00000-of-00001\.parquet"):
        load_image_dataset("uoft-cs/cifar10", data_dir=CIFAR10, split="validation")


def test_loaded_splits_record_their_image_format(tmp_path):
    """The shipped sample is JPEG (a results JSON may say so); the same images stored as PNG (the Hub's
    CIFAR-10) are not, and a subset keeps what it came from."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from mimo_hf.data.images import CIFAR10_SAMPLE

    table = pq.read_table(CIFAR10_SAMPLE).slice(0, 8)
    jpeg_dir, png_dir = tmp_path / "jpeg", tmp_path / "png"
    jpeg_dir.mkdir(), png_dir.mkdir()
    pq.write_table(table, jpeg_dir / "test-00000-of-00001.parquet")
    rows = []
    for row in table.column("img").to_pylist():
        buffer = io.BytesIO()
        Image.open(io.BytesIO(row["bytes"])).save(buffer, format="PNG")
        rows.append({"bytes": buffer.getvalue(), "path": None})
    png = table.set_column(table.schema.get_field_index("img"), "img", pa.array(rows, type=table.schema.field("img").type))
    pq.write_table(png, png_dir / "test-00000-of-00001.parquet")
    jpeg_split = load_image_dataset("uoft-cs/cifar10", data_dir=jpeg_dir, split="test")
    png_split = load_image_dataset("uoft-cs/cifar10", data_dir=png_dir, split="test")
    assert jpeg_split.formats == ("JPEG",) and png_split.formats == ("PNG",)
    assert jpeg_split.subset(torch.arange(2)).formats == ("JPEG",)


def test_a_hub_dataset_that_cannot_be_downloaded_names_the_local_way(monkeypatch):
    """Offline (or the Hub unreachable) and not cached: the error says to pass --data-dir, as one DataError."""
    import datasets

    from mimo_hf.data import DataError

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'uoft-cs/cifar10' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(DataError, match=r"uoft-cs/cifar10 could not be downloaded .*OfflineModeIsEnabled.*pass --data-dir "
                                        r"with its test-\*\.parquet files"):
        load_image_dataset("uoft-cs/cifar10", split="test")
