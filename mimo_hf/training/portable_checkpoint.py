"""An `accelerate` checkpoint folder in a form without pickles (safetensors + JSON), for committing to git.

`accelerator.save_state` writes the optimizer, the scheduler, the registered objects (training state,
weight average) and the RNG states with `torch.save`, i.e. as pickles, which run code when loaded. The zoo
campaign commits its newest checkpoint (campaign/<name>/, see mimo_hf/training/run_queue.py), and nothing
pickled is loaded from a repository: so each such file `F` is stored as `F.json` (its structure, every
value tagged with its type) beside `F.safetensors` (its tensors and arrays), and turned back into `F` with
`torch.save` on the machine that resumes. `.safetensors` files of the checkpoint are copied as they are.

The encoding is exact: tensors keep dtype and bytes, NumPy arrays their dtype, floats round-trip through
JSON's shortest repr (inf and nan included), tuples stay tuples and non-string dict keys keep their type.
"""

import json
import os
import shutil
from pathlib import Path

def encode(obj, tensors, path="x"):
    """A JSON-able description of `obj`; its tensors and arrays go into `tensors` under their path."""
    import numpy as np
    import torch

    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous().clone()
        return {"tensor": path}
    if isinstance(obj, np.ndarray):
        tensors[path] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"ndarray": path, "dtype": str(obj.dtype)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, (list, tuple)):
        return {type(obj).__name__: [encode(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        return {"dict": [[encode(k, tensors, f"{path}.k{i}"), encode(v, tensors, f"{path}.{i}")]
                         for i, (k, v) in enumerate(obj.items())]}
    raise TypeError(f"{path}: cannot store a {type(obj).__module__}.{type(obj).__name__} without pickle")


def decode(description, tensors):
    """The object `encode` described, with its tensors taken from `tensors`."""
    import numpy as np

    if "ndarray" in description:  # the one entry with two fields
        return tensors[description["ndarray"]].numpy().astype(np.dtype(description["dtype"]), copy=True)
    (kind, value), = description.items()
    if kind == "tensor":
        return tensors[value]
    if kind == "value":
        return value
    if kind in ("list", "tuple"):
        items = [decode(v, tensors) for v in value]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {decode(k, tensors): decode(v, tensors) for k, v in value}
    raise ValueError(f"unknown entry {kind!r} in a portable checkpoint file")


def read_portable(json_file):
    """The object stored as `F.json` (+ `F.safetensors`); loads no pickle."""
    from safetensors.torch import load_file

    json_file = Path(json_file)
    tensor_file = json_file.with_suffix(".safetensors")
    tensors = load_file(tensor_file) if tensor_file.is_file() else {}
    return decode(json.loads(json_file.read_text()), tensors)


def to_portable(checkpoint, target):
    """Write the checkpoint folder `checkpoint` into the new folder `target` without pickles. The pickled
    files are read with `weights_only=False`: they are the ones the run on this machine just wrote."""
    import torch
    from safetensors.torch import save_file

    os.makedirs(target)
    for source in sorted(Path(checkpoint).iterdir()):
        if source.suffix == ".safetensors":
            shutil.copy2(source, Path(target) / source.name)
            continue
        tensors = {}
        description = encode(torch.load(source, map_location="cpu", weights_only=False), tensors)
        (Path(target) / f"{source.name}.json").write_text(json.dumps(description))
        if tensors:
            save_file(tensors, str(Path(target) / f"{source.name}.safetensors"))


def from_portable(portable, checkpoint):
    """Turn a folder written by `to_portable` back into the `accelerate` checkpoint folder `checkpoint`."""
    import torch

    os.makedirs(checkpoint)
    for source in sorted(Path(portable).iterdir()):
        if source.suffix == ".json":
            torch.save(read_portable(source), Path(checkpoint) / source.stem)
        elif source.suffix == ".safetensors" and not (Path(portable) / f"{source.stem}.json").is_file():
            shutil.copy2(source, Path(checkpoint) / source.name)  # a weights file of the checkpoint itself
