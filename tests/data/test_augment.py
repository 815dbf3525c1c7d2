"""Batched crop + flip augmentation and normalisation, checked against an independent numpy reference."""

import numpy as np
import pytest
import torch

from mimo_hf.data.augment import EvalTransform, TrainTransform, crop_flip, normalize, random_crop_flip
from mimo_hf.data.image_processing import DATASET_STATS

PAD = 4


def _unique_batch(b=64, c=3, h=16, w=16):
    """(B, C, H, W) float32 batch where every pixel of every image has a different value.

    16x16 by default, not smaller: with 4-pixel reflect padding, a crop of an 8-pixel-wide image can
    equal a different crop flipped, which would make the matching below ambiguous.
    """
    return torch.arange(b * c * h * w, dtype=torch.float32).view(b, c, h, w)


def _candidates(image, padding):
    """Every valid crop of one (C, H, W) image: {(top, left, flip): array}, from numpy's reflect pad."""
    c, h, w = image.shape
    padded = np.pad(image.numpy(), ((0, 0), (padding, padding), (padding, padding)), mode="reflect")
    out = {}
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            crop = padded[:, top : top + h, left : left + w]
            out[(top, left, False)] = crop
            out[(top, left, True)] = crop[:, :, ::-1]
    return out


def _match(output, image, padding):
    """The (top, left, flip) keys of the crops of `image` equal to `output`."""
    return [key for key, crop in _candidates(image, padding).items() if np.array_equal(crop, output.numpy())]


def test_every_output_is_a_crop_of_its_own_input():
    """Each output is exactly one reflect-padded window of its own input, possibly flipped."""
    images = _unique_batch()
    out = random_crop_flip(images, padding=PAD, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    keys = []
    for i in range(len(images)):
        found = _match(out[i], images[i], PAD)
        assert len(found) == 1, f"image {i}: {found}"
        keys.append(found[0])
    tops = {k[0] for k in keys}
    flips = {k[2] for k in keys}
    assert flips == {False, True}  # both flip states occur
    assert len(tops) > 3 and {0, 2 * PAD} & tops  # offsets vary per image and reach the border


def test_explicit_offsets_match_reference():
    """crop_flip with given offsets picks exactly those windows, for uint8 too; the centre is the identity."""
    images = _unique_batch(b=4, c=2, h=6, w=7)
    top, left, flip = torch.tensor([0, 8, 4, 3]), torch.tensor([8, 0, 4, 5]), torch.tensor([True, False, False, True])
    out = crop_flip(images, top, left, flip, padding=PAD)
    for i in range(4):
        ref = _candidates(images[i], PAD)[(int(top[i]), int(left[i]), bool(flip[i]))]
        assert np.array_equal(out[i].numpy(), ref)
    assert torch.equal(out[2], images[2])  # zero offset (centre window), no flip: identity

    small = (images % 256).to(torch.uint8)
    out_u8 = crop_flip(small, top, left, flip, padding=PAD)
    assert out_u8.dtype == torch.uint8
    assert torch.equal(out_u8, crop_flip(small.float(), top, left, flip, padding=PAD).to(torch.uint8))


def test_offset_range_checked():
    """Offsets outside [0, 2 * padding] are refused rather than silently wrapped."""
    images = _unique_batch(b=1)
    with pytest.raises(ValueError, match="offsets"):
        crop_flip(images, [9], [0], [False], padding=PAD)


def test_seeded_reproducibility():
    """The same seed gives the same batch; another seed gives a different one."""
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    a = random_crop_flip(images, generator=torch.Generator().manual_seed(7))
    b = random_crop_flip(images, generator=torch.Generator().manual_seed(7))
    c = random_crop_flip(images, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_normalize_values():
    """0 and 255 map to (0 - mean) / std and (1 - mean) / std per channel, as float32."""
    mean, std = DATASET_STATS["cifar10"]
    images = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    images[1] = 255
    out = normalize(images, mean, std)
    assert out.dtype == torch.float32
    for ch in range(3):
        assert out[0, ch].allclose(torch.tensor((0 - mean[ch]) / std[ch]))
        assert out[1, ch].allclose(torch.tensor((1 - mean[ch]) / std[ch]))
    with pytest.raises(ValueError, match="channel"):
        normalize(images, (0.5,) * 2, (0.5,) * 2)


def test_transforms():
    """EvalTransform only normalises; TrainTransform augments, then normalises, reproducibly."""
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    mean, std = DATASET_STATS["mnist"]
    assert torch.equal(EvalTransform("ylecun/mnist")(images), normalize(images, mean, std))
    a = TrainTransform("mnist", generator=torch.Generator().manual_seed(0))(images)
    b = normalize(random_crop_flip(images, 4, torch.Generator().manual_seed(0)), mean, std)
    assert a.dtype == torch.float32 and a.shape == images.shape and torch.equal(a, b)
