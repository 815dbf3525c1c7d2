"""Shared test fixtures."""

import inspect

import pytest
import torch

from mimo_hf import MIMOConvConfig

# The fields MIMOConvConfig adds to PretrainedConfig, read off its constructor.
CONFIG_FIELDS = [name for name in inspect.signature(MIMOConvConfig.__init__).parameters if name not in ("self", "kwargs")]


@pytest.fixture(scope="module")
def single_thread():
    """Tiny CPU work is several times slower with 2 intra-op threads on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
