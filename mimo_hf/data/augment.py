"""Batched training augmentation and normalisation on tensors (spec section 2), without torchvision.

Training: random crop back to H x W from a `padding`-pixel reflect-padded image (offsets drawn per image,
uniform in [0, 2 * padding] like torchvision's RandomCrop) and a horizontal flip with p = 0.5; then
normalise. Evaluation: normalise only. The arithmetic of `normalize` matches the saved
`ViTImageProcessor` ((x / 255 - mean) / std in float32), so a checkpoint sees the same inputs through
a pipeline as in our evaluation loop.
"""

import torch
import torch.nn.functional as F

from mimo_hf.data.image_processing import dataset_stats


def random_crop_flip(images, padding=4, generator=None, flip=None):
    """Randomly crop each image from its reflect-padded copy and flip it horizontally with p = 0.5.

    images: (B, C, H, W) uint8 or float tensor. Returns a tensor of the same shape, dtype and device.
    Each image gets its own offsets, uniform in [0, 2 * padding] (as torchvision's RandomCrop), and its
    own flip. generator: an optional CPU `torch.Generator` for reproducible draws. flip: optional (B,)
    bool decisions that replace the random flips (e.g. alternating flips); the generator advances alike.
    """
    if images.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(images.shape)}")
    b = images.shape[0]
    # Draw on the CPU so a CPU generator works for batches on any device; the draws are tiny.
    top = torch.randint(0, 2 * padding + 1, (b,), generator=generator)  # (B,)
    left = torch.randint(0, 2 * padding + 1, (b,), generator=generator)  # (B,)
    random_flip = torch.rand(b, generator=generator) < 0.5  # (B,) bool
    if flip is not None and tuple(flip.shape) != (b,):
        raise ValueError(f"flip must have shape ({b},), got {tuple(flip.shape)}")
    return crop_flip(images, top, left, random_flip if flip is None else flip, padding)


def crop_flip(images, top, left, flip, padding=4):
    """Crop image i at (top[i], left[i]) of its reflect-padded copy, then flip it if flip[i].

    images: (B, C, H, W); top, left: (B,) int offsets in [0, 2 * padding]; flip: (B,) bool.
    top = left = padding with flip False is the identity. Vectorised: one pad and one gather for the
    whole batch, no Python loop over images.
    """
    b, c, h, w = images.shape
    if padding >= min(h, w):
        raise ValueError(f"reflect padding {padding} needs images larger than {padding} pixels, got {h}x{w}")
    top, left, flip = (torch.as_tensor(t).reshape(b) for t in (top, left, flip))
    offsets = torch.cat([top, left])  # (2B,)
    if b and (int(offsets.min()) < 0 or int(offsets.max()) > 2 * padding):
        raise ValueError(f"crop offsets must lie in [0, {2 * padding}]")

    padded = F.pad(images, (padding,) * 4, mode="reflect")  # (B, C, H + 2p, W + 2p)
    wp = w + 2 * padding
    rows = top[:, None] + torch.arange(h)  # (B, H) rows of the padded image
    cols = left[:, None] + torch.arange(w)  # (B, W)
    # Flipping the crop = reading its columns right to left.
    cols = torch.where(flip[:, None].bool(), cols.flip(1), cols)
    flat = (rows[:, :, None] * wp + cols[:, None, :]).reshape(b, 1, h * w)  # (B, 1, H*W)
    flat = flat.to(images.device).expand(b, c, h * w)  # (B, C, H*W), shared over channels
    out = padded.reshape(b, c, (h + 2 * padding) * wp).gather(2, flat)  # (B, C, H*W)
    return out.reshape(b, c, h, w)


def normalize(images, mean, std):
    """(images / 255 - mean) / std as float32, per channel.

    images: (B, C, H, W) or (C, H, W) uint8 (0..255). mean, std: sequences of length C.
    """
    mean = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(-1, 1, 1)  # (C, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    if mean.shape[0] != images.shape[-3]:
        raise ValueError(f"{mean.shape[0]} channel statistics for images with {images.shape[-3]} channels")
    # Same float32 operations as the image processor (divide by 255, subtract, divide): bit-identical to
    # transformers 5.24's ViTImageProcessorPil. Multiplying by 1/255 instead is off by up to 1 ulp.
    return (images.float() / 255 - mean) / std


class EvalTransform:
    """uint8 (B, C, H, W) -> normalised float32 (B, C, H, W): the evaluation preprocessing."""

    def __init__(self, dataset="cifar10", mean=None, std=None):
        """Use the statistics of `dataset` (short name or Hub id) unless mean and std are given."""
        if mean is None or std is None:
            mean, std = dataset_stats(dataset)
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, images):
        """Normalise a uint8 batch."""
        return normalize(images, self.mean, self.std)


class TrainTransform(EvalTransform):
    """uint8 (B, C, H, W) -> random crop + flip -> normalised float32: the training preprocessing."""

    def __init__(self, dataset="cifar10", mean=None, std=None, padding=4, generator=None):
        """Statistics as in `EvalTransform`; `generator` (a torch.Generator) makes the draws reproducible."""
        super().__init__(dataset, mean, std)
        self.padding = padding
        self.generator = generator

    def __call__(self, images, flip=None):
        """Augment a uint8 batch (cropping uint8 moves 4x fewer bytes than float), then normalise it.

        flip: optional (B,) bool flip decisions (else random, p = 0.5)."""
        return normalize(random_crop_flip(images, self.padding, self.generator, flip), self.mean, self.std)
