"""The synthetic Retrieval and Pathfinder stand-ins: layout and labels."""

from collections import deque

import numpy as np
import torch

from mimo_hf.data.synthetic import synthetic_pathfinder, synthetic_retrieval


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


