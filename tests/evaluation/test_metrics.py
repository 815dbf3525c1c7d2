"""The package's own accuracy metric, loaded by path with `evaluate` (no Hub, no scikit-learn)."""

import pytest

from mimo_hf.evaluation.metrics import load_metric


@pytest.fixture(scope="module")
def accuracy():
    """The accuracy metric module, loaded once."""
    return load_metric("accuracy")


def test_hand_checked(accuracy):
    """3 of 4 correct is 0.75."""
    assert accuracy.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2]) == {"accuracy": 0.75}


def test_add_batch_accumulates(accuracy):
    """Batches add up: 2/3 right over two batches, the same as one compute over everything."""
    accuracy.add_batch(predictions=[1, 1], references=[1, 0])
    accuracy.add_batch(predictions=[3], references=[3])
    assert accuracy.compute() == {"accuracy": pytest.approx(2 / 3)}


def test_unknown_metric():
    """A name with no module folder is an error listing the shipped metrics."""
    with pytest.raises(ValueError, match="accuracy"):
        load_metric("f1")
