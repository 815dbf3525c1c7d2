"""What both converters share: loading the authors' checkpoint safely, and one error for a bad fit.

The authors' checkpoints are torch pickles; they are loaded with `weights_only=True` only, so no
pickled code runs (a file that needs more is refused with the file's name and the reason).
"""

from collections.abc import Mapping

import torch


def listing(items):
    return ", ".join(items)


def load_reference_state_dict(path):
    """Load the authors' state dict from ``path`` without running arbitrary pickled code.

    Accepts a raw state dict or a training checkpoint ``{"model_state_dict": ..., ...}`` (what the
    authors' training script saves). A ``module.`` prefix left by ``nn.DataParallel`` is stripped.
    Raises ValueError naming the file when it is not a torch checkpoint, holds objects that are not
    plain data (refused by ``weights_only`` loading), or is not a mapping of names to tensors.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... depending on the damage
        raise ValueError(
            f"{path}: cannot be loaded as a PyTorch checkpoint with weights_only=True (a corrupt file, or one "
            f"that pickles objects other than tensors and plain containers, which are refused for safety): "
            f"{_load_failure_reason(exc)}"
        ) from exc

    if isinstance(obj, Mapping) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(
            f"{path}: expected a state dict (a non-empty mapping of names to tensors) or a dict with a "
            f"'model_state_dict' entry, got {type(obj).__name__}"
        )
    bad = [str(key) for key, value in obj.items() if not isinstance(key, str) or not isinstance(value, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: not a state dict, these entries are not tensors: {listing(bad)}")

    state_dict = dict(obj)
    if all(key.startswith("module.") for key in state_dict):
        state_dict = {key[len("module."):]: value for key, value in state_dict.items()}
    return state_dict


def _load_failure_reason(exc):
    """The informative sentence of torch's load error.

    torch's weights_only message opens with generic advice (including "load with weights_only=False",
    which we never do); the actual cause follows "WeightsUnpickler error:".
    """
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
    sentence = " ".join(text.split()).split(". ")[0]
    return sentence or type(exc).__name__


def check_fit(description, unused, missing, mismatched, hint):
    """Raise one ValueError listing every unused key, missing key and shape mismatch of a conversion."""
    if not (missing or mismatched or unused):
        return
    lines = [f"the checkpoint does not fit {description}:"]
    if unused:
        lines.append(f"  unused checkpoint keys ({len(unused)}): {listing(unused)}")
    if missing:
        lines.append(f"  missing keys ({len(missing)}): {listing(missing)}")
    if mismatched:
        lines.append(f"  shape mismatches ({len(mismatched)}): {listing(mismatched)}")
    lines.append(f"  {hint}")
    raise ValueError("\n".join(lines))


def whole_number(value):
    """16 * s channels -> s as an int when whole (the usual case), else as a float."""
    return int(value) if float(value).is_integer() else value
