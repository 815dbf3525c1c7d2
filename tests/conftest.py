"""Shared test fixtures."""

import inspect
from pathlib import Path

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


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def assembled_zoo(tmp_path_factory):
    """{zoo folder name: its Hub folder}, assembled as push_to_hub.py would (checkpoint files, model code,
    card): what a Hub user downloads."""
    from mimo_hf.hub.export import assemble_all

    return assemble_all(ROOT / "push_configs", tmp_path_factory.mktemp("assembled_zoo"))
