"""The pickle-free form of an accelerate checkpoint (the committed campaign/ copies): exact, and loaded without pickle."""

import math
import pickle
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mimo_hf.training.portable_checkpoint import decode, encode, from_portable, read_portable, to_portable


def _same(a, b):
    """Equal values of equal types, all the way down (tensors: dtype and bytes; arrays: dtype; nan == nan)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


STATES = {
    # what accelerate.save_state pickles: the optimizer (int keys), RNG states (tuples, a uint32 array,
    # a byte tensor), a scheduler and a training state (inf, None, bools, nested records)
    "optimizer.bin": {"state": {0: {"momentum_buffer": torch.randn(3, 2)}, 7: {"step": torch.tensor(4.0)}},
                      "param_groups": [{"lr": 0.1, "nesterov": True, "params": [0, 7]}]},
    "random_states_0.pkl": {"step": 3, "random_state": random.Random(1).getstate(),
                            "numpy_random_seed": np.random.RandomState(2).get_state(),
                            "torch_manual_seed": torch.Generator().manual_seed(3).get_state()},
    "custom_checkpoint_0.pkl": {"base_lrs": [0.2, 0.2], "_is_initial": False, "last_epoch": 12},
    "custom_checkpoint_1.pkl": {"epoch": 2, "prev_grad_norm": math.inf, "best": None, "nan": math.nan,
                                "history": [{"epoch": 1, "val_accuracy@k1": 0.5}]},
    "custom_checkpoint_2.pkl": {"decay": 0.998, "updates": 5, "shadow": {"w": torch.arange(6, dtype=torch.int64),
                                                                      "h": torch.randn(2).half()}},
}


@pytest.mark.parametrize("name", list(STATES))
def test_encode_then_decode_gives_the_same_objects(name):
    tensors = {}
    assert _same(STATES[name], decode(encode(STATES[name], tensors), tensors))


def test_objects_pickle_alone_can_store_are_refused():
    with pytest.raises(TypeError, match=r"x\.0: cannot store a builtins\.set"):
        encode([{1, 2}], {})


def test_a_checkpoint_folder_goes_there_and_back_exactly_and_its_copy_holds_no_pickle(tmp_path, monkeypatch):
    checkpoint = tmp_path / "epoch_3"
    checkpoint.mkdir()
    for name, state in STATES.items():
        torch.save(state, checkpoint / name)
    save_file({"w": torch.randn(4)}, str(checkpoint / "model.safetensors"))
    to_portable(checkpoint, tmp_path / "portable" / "epoch_3")
    stored = sorted(p.name for p in (tmp_path / "portable" / "epoch_3").iterdir())
    assert all(name.endswith((".json", ".safetensors")) for name in stored), stored
    assert "model.safetensors" in stored

    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    with monkeypatch.context() as m:  # turning the copy back loads no pickle
        m.setattr(torch, "load", refuse)
        m.setattr(pickle, "load", refuse)
        m.setattr(pickle, "loads", refuse)
        assert _same(read_portable(tmp_path / "portable" / "epoch_3" / "optimizer.bin.json"), STATES["optimizer.bin"])
        from_portable(tmp_path / "portable" / "epoch_3", tmp_path / "back" / "epoch_3")
    back = tmp_path / "back" / "epoch_3"
    assert sorted(p.name for p in back.iterdir()) == sorted(p.name for p in checkpoint.iterdir())
    assert (back / "model.safetensors").read_bytes() == (checkpoint / "model.safetensors").read_bytes()
    for name, state in STATES.items():
        assert _same(torch.load(back / name, weights_only=False), state), name
