"""Synthetic stand-ins for LRA Retrieval and Pathfinder, whose real data cannot be obtained here.

Small look-alike sets with the same tensor layout as `data.lra.load_lra_task`'s, for tests and smoke runs only.
"""

import numpy as np
import torch

from mimo_hf.data.labels import PATHFINDER, RETRIEVAL
from mimo_hf.data.lra import SequenceTensors
from mimo_hf.data.tokenization import encode_bytes


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
                           list(RETRIEVAL), ids_2, mask_2, task="retrieval",
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
                           list(PATHFINDER), task="pathfinder",
                           info={"source": "synthetic_pathfinder", "seed": seed})
