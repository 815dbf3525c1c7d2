"""Evaluation preprocessing equals the saved image processor on real images, so pipelines see our inputs."""

from pathlib import Path

import pytest
import torch
from datasets import load_dataset
from transformers import AutoImageProcessor

from mimo_hf.data.augment import EvalTransform
from mimo_hf.data.images import load_image_dataset
from mimo_hf.data.image_processing import make_image_processor

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
N = 64


def _pil_images(folder, column):
    """The first N test images as PIL images, decoded by `datasets` (independently of our decoder)."""
    files = [str(p) for p in sorted(Path(folder).glob("test-*.parquet"))]
    return list(load_dataset("parquet", data_files={"test": files}, split="test").select(range(N))[column])


@pytest.mark.parametrize(
    "hub_id, short, column, size, channels",
    [("uoft-cs/cifar10", "cifar10", "img", 32, 3), ("ylecun/mnist", "mnist", "image", 28, 1)],
)
def test_eval_preprocessing_matches_saved_processor(tmp_path, hub_id, short, column, size, channels):
    """normalize(decoded uint8) == reloaded processor(PIL images) to 1e-5 on 64 real test images."""
    folder = DATA / short
    if not folder.is_dir():
        pytest.skip(f"no offline copy in {folder}")
    make_image_processor(short, image_size=size).save_pretrained(tmp_path)
    processor = AutoImageProcessor.from_pretrained(tmp_path)
    expected = processor(_pil_images(folder, column), return_tensors="pt")["pixel_values"]  # (N, C, H, W)

    ours = EvalTransform(short)(load_image_dataset(hub_id, data_dir=folder, split="test").images[:N])
    assert ours.shape == (N, channels, size, size)
    # The processor always gives RGB (it converts every picture); a grayscale model reduces the three
    # equal channels to luminance on its input path, which must give back our single channel.
    assert expected.shape == (N, 3, size, size)
    if channels == 1:
        from mimo_hf.models.mimoconv.configuration_mimoconv import MIMOConvConfig
        from mimo_hf.models.mimoconv.modeling_mimoconv import check_pixel_values

        config = MIMOConvConfig(num_channels=1, image_size=size)
        expected = check_pixel_values(config, expected.float(), torch.float32)
    torch.testing.assert_close(ours, expected.float(), atol=1e-5, rtol=0)
