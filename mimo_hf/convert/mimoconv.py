"""Convert MIMOConv checkpoints trained with the authors' code into Hub-ready folders.

The authors' models (``SuperWideResnet`` / ``SuperWideISONet``) name their weights as listed in
``shared/spec/mimonets.md`` section 4. Every weight of ours is one of theirs, renamed and at most
reshaped (squeezed 1x1 convolution axes, regrouped MBAT matrices), so conversion is exact:

    authors' key                        shape            ours                           shape
    conv1.weight, bn1.*                                  mimoconv.conv1.*, mimoconv.bn1.*
    channelConv.weight      (HRR)       (N, 1, C)        mimoconv.binding.keys          (N, C)
    channelLinear.weight    (MBAT)      (N*C, C, 1, 1)   mimoconv.binding.keys          (N, C, C)
    layer{s}.{b}.*                                       mimoconv.layer{s}.{b}.*        (same sub-names)
    unbind.0.weight                     (N*F, F, 1, 1)   mimoconv.unbind.weight         (N*F, F)
    unbind.0.bias                       (N*F,)           mimoconv.unbind.bias           (N*F,)
    fc.weight, fc.bias                                   classifier.weight, .bias

MBAT: the authors bind with a 1x1 convolution of groups=N from N*C to N*C channels, so output rows
j*C:(j+1)*C see only slot j's input channels; those rows are slot j's C x C matrix, and a plain
reshape of (N*C, C) to (N, C, C) yields our keys[j] = rows j*C:(j+1)*C.

HRR: the authors' channelConv is a circular conv1d whose first output element they drop, which is
exactly our convention y[c] = sum_t k[t] x[(c + t + 1 - C/2) mod C]; the key vector carries over as is.

Skip-init: the authors' blocks always own an ``alpha`` parameter but only use it when trained with
skip-init. Without skip-init it is inert (it never receives a gradient, so it stays at its initial 0),
and our blocks have no ``alpha``: those keys are consumed and dropped. A non-zero dropped alpha means
the checkpoint was most likely trained with skip-init, so we warn.
"""

import re
import warnings
from collections.abc import Mapping

import torch

from mimo_hf.convert.common import check_fit, load_reference_state_dict, whole_number
from mimo_hf.data.image_processing import dataset_stats, make_image_processor
from mimo_hf.data.labels import BY_DATASET as DATASET_LABELS
from mimo_hf.hub.export import save_hub_folder
from mimo_hf.models.mimoconv.configuration_mimoconv import MIMOConvConfig
from mimo_hf.models.mimoconv.modeling_mimoconv import MIMOConvForImageClassification

# Class names of the datasets the authors trained on (data.labels; cifar100 gets LABEL_i).
# The authors feed MNIST as 20x20 centre crops (their datasets.py); CIFAR images are 32x32.
DATASET_IMAGE_SIZE = {"cifar10": 32, "cifar100": 32, "mnist": 20}

# What infer_reference_config reads off a checkpoint, and make_reference_config needs.
ARCHITECTURE_SETTINGS = (
    "depth", "width", "initial_width", "num_channels", "binding", "num_superpositions", "activation", "num_labels",
)
_BLOCK_KEY = re.compile(r"^layer(\d+)\.(\d+)\.")


# ---------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------


def infer_reference_config(state_dict):
    """Architecture arguments of MIMOConvConfig read off the authors' state dict (key names and shapes).

    Each setting is read from the keys it depends on and left out when those are absent: explicit
    settings can then stand in for it, and the conversion itself names the faulty keys.
    skip_init is "some block has a non-zero alpha": without skip-init the authors' alphas get no
    gradient and stay exactly 0, while training with skip-init moves them. An untrained skip-init
    checkpoint is the one case this gets wrong; pass skip_init explicitly then.
    """
    found = {}
    if "conv1.weight" in state_dict:
        channels, in_channels = state_dict["conv1.weight"].shape[:2]  # (C, in_ch, 3, 3)
        found.update(initial_width=whole_number(channels / 16), num_channels=int(in_channels))
    if "layer1.0.conv1.weight" in state_dict:
        blocks = sum(1 for key in state_dict if re.fullmatch(r"layer1\.\d+\.conv1\.weight", key))
        found.update(depth=6 * blocks + 4, width=whole_number(state_dict["layer1.0.conv1.weight"].shape[0] / 16))
        if "layer1.0.relu1.weight" in state_dict:
            found["activation"] = "prelu"
        elif "layer1.0.relu1.srelu_bias" in state_dict:
            found["activation"] = "srelu"
        else:
            found["activation"] = "relu"  # nn.ReLU has no parameter

    if "channelConv.weight" in state_dict:
        found.update(binding="hrr", num_superpositions=int(state_dict["channelConv.weight"].shape[0]))  # (N, 1, C)
    elif "channelLinear.weight" in state_dict:
        n_c, c = state_dict["channelLinear.weight"].shape[:2]  # (N*C, C, 1, 1)
        found.update(binding="mbat", num_superpositions=int(n_c // c))
    else:
        # The authors' binding "None" has an unbinding layer only for N > 1 (which our config refuses).
        unbind = state_dict.get("unbind.0.weight")  # (N*F, F, 1, 1)
        found.update(binding="none", num_superpositions=1 if unbind is None else int(unbind.shape[0] // unbind.shape[1]))

    alphas = [value for key, value in state_dict.items() if _BLOCK_KEY.match(key) and key.endswith(".alpha")]
    if alphas:
        found["skip_init"] = any(bool((alpha != 0).any()) for alpha in alphas)
    if "fc.weight" in state_dict:
        found["num_labels"] = int(state_dict["fc.weight"].shape[0])  # (classes, F)
    return found


def dataset_id2label(dataset, num_labels):
    """{i: class name} for a known dataset, {i: "LABEL_i"} otherwise (e.g. CIFAR-100)."""
    names = DATASET_LABELS.get(dataset)
    if names is None:
        return {i: f"LABEL_{i}" for i in range(num_labels)}
    if len(names) != num_labels:
        raise ValueError(f"dataset {dataset!r} has {len(names)} classes but the classifier has {num_labels} outputs")
    return dict(enumerate(names))


def make_reference_config(state_dict, dataset="cifar10", **overrides):
    """MIMOConvConfig for an authors' checkpoint: inferred architecture, updated by non-None ``overrides``.

    ``dataset`` names the labels and the default image size; its normalisation statistics must have
    as many channels as the stem's input.
    """
    kwargs = {"image_size": DATASET_IMAGE_SIZE.get(dataset, 32), "skip_init": False}
    kwargs.update(infer_reference_config(state_dict))
    kwargs.update({key: value for key, value in overrides.items() if value is not None})
    unknown = [name for name in ARCHITECTURE_SETTINGS if name not in kwargs]
    if unknown:
        raise ValueError(
            f"cannot read {', '.join(unknown)} off the checkpoint (it lacks the keys they come from); "
            "pass them explicitly"
        )

    mean, _ = dataset_stats(dataset)
    if len(mean) != kwargs["num_channels"]:
        raise ValueError(
            f"dataset {dataset!r} images have {len(mean)} channel(s) but the model takes {kwargs['num_channels']}"
        )
    id2label = dataset_id2label(dataset, kwargs.pop("num_labels"))
    label2id = {name: i for i, name in id2label.items()}
    return MIMOConvConfig(**kwargs, id2label=id2label, label2id=label2id)


# ---------------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------------


def target_shapes(config):
    """{our key: shape} of MIMOConvForImageClassification(config), built on the meta device (no memory)."""
    with torch.device("meta"):
        model = MIMOConvForImageClassification(config)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def reference_key(key, config):
    """The authors' name of our state-dict key ``key``."""
    if key == "mimoconv.binding.keys":
        return "channelConv.weight" if config.binding == "hrr" else "channelLinear.weight"
    if key.startswith("mimoconv.unbind."):
        return "unbind.0." + key[len("mimoconv.unbind."):]
    if key.startswith("classifier."):
        return "fc." + key[len("classifier."):]
    return key[len("mimoconv."):]


def reference_shape(key, shape, config):
    """The authors' shape of our tensor ``key`` of shape ``shape`` (ours is always a reshape of theirs)."""
    if key == "mimoconv.binding.keys":
        if config.binding == "hrr":
            n, c = shape
            return (n, 1, c)  # conv1d weight: (out = N, in / groups = 1, kernel = C)
        n, c, _ = shape
        return (n * c, c, 1, 1)  # grouped 1x1 conv2d weight: (out = N*C, in / groups = C, 1, 1)
    if key == "mimoconv.unbind.weight":
        return (*shape, 1, 1)  # 1x1 conv2d on the pooled (F, 1, 1) features
    return shape


def _dropped_alphas(config, targets):
    """The authors' alpha keys of our blocks when we have no alpha (no skip-init): consumed, not used."""
    if config.skip_init:
        return set()
    prefixes = set()
    for key in targets:
        match = _BLOCK_KEY.match(key.removeprefix("mimoconv."))
        if match:
            prefixes.add(match.group(0))  # "layer{s}.{b}."
    return {prefix + "alpha" for prefix in prefixes}


def convert_reference_state_dict(state_dict, config):
    """The authors' state dict -> ours, for ``MIMOConvForImageClassification(config)``.

    Strict in both directions: every source key must be used (or be an inert alpha, see the module
    docstring), every target key filled, every shape match. Otherwise a ValueError names all offending
    keys at once, with both shapes for each mismatch.
    """
    targets = target_shapes(config)
    converted, missing, mismatched, used = {}, [], [], set()
    for key, shape in targets.items():
        source_key = reference_key(key, config)
        if source_key not in state_dict:
            missing.append(f"{key} (checkpoint key {source_key})")
            continue
        used.add(source_key)
        source = state_dict[source_key]
        expected = reference_shape(key, shape, config)
        if tuple(source.shape) != expected:
            mismatched.append(f"{source_key}: checkpoint {tuple(source.shape)} vs expected {expected}")
            continue
        converted[key] = source.reshape(shape).clone()  # clone: the converted dict owns its storage

    dropped = _dropped_alphas(config, targets) & state_dict.keys()
    unused = sorted(state_dict.keys() - used - dropped)
    bad_alphas = sorted(key for key in dropped if tuple(state_dict[key].shape) != ())
    mismatched += [f"{key}: checkpoint {tuple(state_dict[key].shape)} vs expected ()" for key in bad_alphas]

    check_fit(_describe(config), unused, missing, mismatched,
              "check depth, width, initial_width, binding, num_superpositions, activation, skip_init and num_labels")

    nonzero = sorted(key for key in dropped if bool((state_dict[key] != 0).any()))
    if nonzero:
        warnings.warn(
            f"dropping {len(nonzero)} non-zero skip-init alpha(s) ({nonzero[0]}, ...) because skip_init=False; "
            "the checkpoint was probably trained with skip-init (pass skip_init=True / --skip-init)",
            UserWarning,
            stacklevel=2,
        )
    return converted


def _describe(config):
    return (
        f"MIMOConv(depth={config.depth}, width={config.width}, initial_width={config.initial_width}, "
        f"binding={config.binding!r}, num_superpositions={config.num_superpositions}, "
        f"activation={config.activation!r}, skip_init={config.skip_init}, num_labels={config.num_labels}, "
        f"num_channels={config.num_channels})"
    )


def convert_reference_checkpoint(checkpoint, output, config=None, dataset="cifar10"):
    """Convert an authors' checkpoint into a Hub-ready folder ``output``; returns the model (eval mode).

    ``checkpoint``: path of the authors' file, or a state dict already loaded with
    `load_reference_state_dict`. ``config``: our MIMOConvConfig; None infers it from the checkpoint
    (`make_reference_config`). ``dataset`` picks the image processor's normalisation.
    """
    state_dict = checkpoint if isinstance(checkpoint, Mapping) else load_reference_state_dict(checkpoint)
    if config is None:
        config = make_reference_config(state_dict, dataset)
    converted = convert_reference_state_dict(state_dict, config)
    model = MIMOConvForImageClassification(config)
    model.load_state_dict(converted, strict=True)
    model.eval()
    save_hub_folder(model, output, make_image_processor(dataset, config.image_size))
    return model


__all__ = [
    "convert_reference_checkpoint",
    "convert_reference_state_dict",
    "dataset_id2label",
    "infer_reference_config",
    "load_reference_state_dict",
    "make_reference_config",
]
