"""The converter for the authors' MIMOConv checkpoints, checked against an independent reference.

Random authors'-layout checkpoints (tests/reference_mimoconv.py) are converted into Hub folders; the
models loaded back from those folders must give the reference forward pass's logits at every
operating point k | N. Tiny models (depth 10, width 1) keep the whole file at a few seconds.
"""

import json
import os
import random
import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from mimo_hf import MIMOConvForImageClassification
from mimo_hf.convert.mimoconv import (
    convert_reference_checkpoint,
    convert_reference_state_dict,
    infer_reference_config,
    load_reference_state_dict,
    make_reference_config,
)
from mimo_hf.data.image_processing import dataset_stats

from reference_mimoconv import random_reference_state_dict, reference_logits  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "convert_reference_checkpoint.py"
# Convolutions do not care about the image size; 16x16 keeps the float64 reference fast.
IMAGE_SIZE = 16
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# name: authors' architecture, how the file is saved, and how it is converted.
CASES = {
    "hrr_n2_prelu": dict(arch=dict(binding="HRR", num_superpositions=2, activation="prelu"), form="raw", via="library"),
    "hrr_n4_prelu": dict(arch=dict(binding="HRR", num_superpositions=4, activation="prelu"), form="wrapped", via="library"),
    "mbat_n2_relu": dict(arch=dict(binding="MBAT", num_superpositions=2, activation="relu"), form="raw", via="library"),
    "hrr_n2_srelu_skipinit": dict(
        arch=dict(binding="HRR", num_superpositions=2, activation="srelu", skip_init=True, num_classes=100),
        form="wrapped", via="script", dataset="cifar100",
    ),
    "wrn_baseline_mnist": dict(
        arch=dict(binding="None", num_superpositions=1, activation="relu", initial_width=1, input_channels=1),
        form="raw", via="library", dataset="mnist",
    ),
}


def architecture(arch):
    """Keyword arguments of the reference forward pass for a random_reference_state_dict arch."""
    return dict(
        num_superpositions=arch["num_superpositions"], binding=arch["binding"], activation=arch["activation"],
        skip_init=arch.get("skip_init", False), blocks_per_stage=1,
    )


def double(state_dict):
    """The reference runs in float64, so the comparison measures only our float32 model's rounding."""
    return {key: value.double() if value.is_floating_point() else value for key, value in state_dict.items()}


def assert_matches_reference(model, state_dict, arch, image_size=IMAGE_SIZE):
    """Logits of ``model`` equal the reference's at every k | N, on a batch of two bundles at k = N."""
    n = arch["num_superpositions"]
    pixel_values = torch.randn(2 * n, arch.get("input_channels", 3), image_size, image_size,
                               generator=torch.Generator().manual_seed(1))
    model.eval()
    for k in range(1, n + 1):
        if n % k:
            continue
        expected = reference_logits(double(state_dict), pixel_values.double(), k=k, **architecture(arch))
        with torch.no_grad():
            logits = model(pixel_values, num_superpositions=k).logits
        torch.testing.assert_close(logits.double(), expected, atol=1e-4, rtol=0, msg=lambda m: f"k={k}: {m}")


def save_checkpoint(state_dict, path, form):
    if form == "wrapped":
        # What the authors' training script saves; a DataParallel prefix on top, as from multi-GPU runs.
        state_dict = {"epoch": 3, "model_state_dict": {f"module.{key}": value for key, value in state_dict.items()}}
    torch.save(state_dict, path)


def run_script(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)


# ---------------------------------------------------------------------------------------------------
# Exactness
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_converted_folder_matches_reference(name, tmp_path):
    case = CASES[name]
    arch, dataset = case["arch"], case.get("dataset", "cifar10")
    state_dict = random_reference_state_dict(**arch, seed=len(name))
    checkpoint, output = tmp_path / "authors.pt", tmp_path / "hub"
    save_checkpoint(state_dict, checkpoint, case["form"])

    if case["via"] == "script":
        # Explicit flags, with the authors' spelling of the binding name.
        result = run_script(
            "--checkpoint", checkpoint, "--output", output, "--dataset", dataset, "--depth", 10, "--width", 1,
            "--initial-width", 4, "--binding", arch["binding"], "--num-superpositions", arch["num_superpositions"],
            "--activation", arch["activation"], "--skip-init", "--num-labels", 100, "--image-size", IMAGE_SIZE,
        )
        assert result.returncode == 0, result.stderr
        assert "model.safetensors" in result.stdout
    elif dataset == "mnist":
        # Everything inferred: architecture from the checkpoint, 20x20 inputs from the dataset.
        convert_reference_checkpoint(checkpoint, output, dataset=dataset)
    else:
        config = make_reference_config(load_reference_state_dict(checkpoint), dataset, image_size=IMAGE_SIZE)
        convert_reference_checkpoint(checkpoint, output, config, dataset=dataset)

    for name_ in ("config.json", "model.safetensors", "preprocessor_config.json", "modeling_mimoconv.py", "binding.py"):
        assert (output / name_).is_file(), name_
    model = MIMOConvForImageClassification.from_pretrained(output)
    image_size = 20 if dataset == "mnist" else IMAGE_SIZE
    assert model.config.image_size == image_size
    assert_matches_reference(model, state_dict, arch, image_size)

    processor = json.loads((output / "preprocessor_config.json").read_text())
    mean = list(dataset_stats(dataset)[0])
    # A grayscale model's processor converts every picture to RGB: the one mean on all three channels.
    assert processor["image_mean"] == (mean * 3 if len(mean) == 1 else mean)
    assert processor["size"] == {"height": image_size, "width": image_size}
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if dataset == "cifar10":
        assert labels == CIFAR10_NAMES
    elif dataset == "mnist":
        assert labels == [str(i) for i in range(10)] and model.config.num_channels == 1
    else:
        assert labels == [f"LABEL_{i}" for i in range(100)]


def test_inferred_architecture():
    for case in CASES.values():
        arch = case["arch"]
        inferred = infer_reference_config(random_reference_state_dict(**arch))
        assert inferred == {
            "num_superpositions": arch["num_superpositions"], "binding": arch["binding"].lower(), "depth": 10,
            "width": 1, "initial_width": arch.get("initial_width", 4), "num_channels": arch.get("input_channels", 3),
            "activation": arch["activation"], "skip_init": arch.get("skip_init", False),
            "num_labels": arch.get("num_classes", 10),
        }


def test_inert_alphas_are_dropped_with_a_warning_when_nonzero():
    """Without skip-init the authors' alphas do nothing; a non-zero one hints at a wrong skip_init."""
    arch = dict(binding="HRR", num_superpositions=2, activation="prelu")
    state_dict = random_reference_state_dict(**arch)
    config = make_reference_config(state_dict, image_size=IMAGE_SIZE)
    assert not config.skip_init
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # all alphas 0, as in a real checkpoint: silent
        converted = convert_reference_state_dict(state_dict, config)
    assert not any(key.endswith("alpha") for key in converted)

    state_dict["layer2.0.alpha"] = torch.tensor(0.7)
    with pytest.warns(UserWarning, match="layer2.0.alpha"):
        converted = convert_reference_state_dict(state_dict, config)
    model = MIMOConvForImageClassification(config)
    model.load_state_dict(converted, strict=True)
    assert_matches_reference(model, state_dict, arch)  # the reference ignores alpha without skip-init


def test_reference_comparison_detects_slot_and_convention_errors():
    """The comparison has teeth: a permuted slot order or an HRR index off by one is caught."""
    arch = dict(binding="HRR", num_superpositions=2, activation="prelu")
    state_dict = random_reference_state_dict(**arch)
    config = make_reference_config(state_dict, image_size=IMAGE_SIZE)
    keys = state_dict["channelConv.weight"]  # (N, 1, C)
    for wrong_keys in (keys.flip(0), keys.roll(1, dims=2)):
        model = MIMOConvForImageClassification(config)
        model.load_state_dict(convert_reference_state_dict({**state_dict, "channelConv.weight": wrong_keys}, config))
        with pytest.raises(AssertionError):
            assert_matches_reference(model, state_dict, arch)


# ---------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def hrr_checkpoint():
    state_dict = random_reference_state_dict(binding="HRR", num_superpositions=2, activation="prelu")
    return state_dict, make_reference_config(state_dict)


def test_unused_missing_and_misshaped_keys_are_all_named(hrr_checkpoint):
    state_dict, config = hrr_checkpoint
    broken = dict(state_dict)
    broken["layer9.0.conv1.weight"] = torch.zeros(1)  # unknown
    del broken["layer2.0.bn1.running_var"]  # missing
    broken["fc.bias"] = torch.zeros(11)  # misshaped
    broken["channelConv.weight"] = torch.zeros(2, 64)  # misshaped (not the conv1d layout)
    with pytest.raises(ValueError) as error:
        convert_reference_state_dict(broken, config)
    message = str(error.value)
    assert "unused checkpoint keys (1): layer9.0.conv1.weight" in message
    assert "mimoconv.layer2.0.bn1.running_var (checkpoint key layer2.0.bn1.running_var)" in message
    assert "fc.bias: checkpoint (11,) vs expected (10,)" in message
    assert "channelConv.weight: checkpoint (2, 64) vs expected (2, 1, 64)" in message


@pytest.mark.parametrize("change, drop, named", [
    (dict(binding="mbat"), None,
     ["unused checkpoint keys (1): channelConv.weight", "mimoconv.binding.keys (checkpoint key channelLinear.weight)"]),
    (dict(num_superpositions=4), None,
     ["channelConv.weight: checkpoint (2, 1, 64) vs expected (4, 1, 64)", "unbind.0.weight: checkpoint (128, 64, 1, 1)"]),
    (dict(activation="relu"), None, ["layer1.0.relu1.weight", "layer3.0.relu2.weight"]),
    (dict(depth=16), None, ["mimoconv.layer1.1.conv1.weight"]),
    (dict(dataset="cifar100", num_labels=100), None, ["fc.weight: checkpoint (10, 64) vs expected (100, 64)"]),
    # With skip-init the alphas are weights, so a missing one is an error (without, it would not be).
    (dict(skip_init=True), "layer1.0.alpha", ["mimoconv.layer1.0.alpha (checkpoint key layer1.0.alpha)"]),
])
def test_config_that_contradicts_the_checkpoint_is_refused(hrr_checkpoint, change, drop, named):
    state_dict, _ = hrr_checkpoint
    state_dict.pop(drop, None)
    config = make_reference_config(state_dict, **change)
    with pytest.raises(ValueError) as error:
        convert_reference_state_dict(state_dict, config)
    for text in named:
        assert text in str(error.value)


def test_script_reports_errors_with_status_2(hrr_checkpoint, tmp_path, capsys):
    state_dict, _ = hrr_checkpoint
    checkpoint = tmp_path / "authors.pt"
    torch.save({**state_dict, "extra.weight": torch.zeros(3)}, checkpoint)
    main = load_script_main()

    assert main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "out"), "--num-superpositions", "4"]) == 2
    err = capsys.readouterr().err
    assert "extra.weight" in err and "channelConv.weight: checkpoint (2, 1, 64) vs expected (4, 1, 64)" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(random.Random(1).randbytes(256))
    assert main(["--checkpoint", str(garbage), "--output", str(tmp_path / "out")]) == 2
    assert str(garbage) in capsys.readouterr().err

    assert main(["--checkpoint", str(tmp_path / "absent.pt"), "--output", str(tmp_path / "out")]) == 2
    assert "absent.pt" in capsys.readouterr().err

    # Every setting given explicitly: a gutted checkpoint is reported key by key.
    torch.save({"conv1.weight": torch.zeros(64, 3, 3, 3)}, checkpoint)
    flags = ["--depth", "10", "--width", "1", "--binding", "HRR", "--num-superpositions", "2", "--activation", "prelu",
             "--num-labels", "10"]
    assert main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err
    assert "mimoconv.layer1.0.conv2.weight (checkpoint key layer1.0.conv2.weight)" in err and "Traceback" not in err


def test_script_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        load_script_main()(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--checkpoint", "--output", "--dataset", "--depth", "--width", "--initial-width", "--binding",
                 "--num-superpositions", "--activation", "--skip-init", "--no-skip-init", "--num-labels",
                 "--num-channels", "--image-size"):
        assert flag in text, flag


def load_script_main():
    """The script's main(), imported from its file (scripts/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("convert_reference_checkpoint_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_corrupt_file_is_refused(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(random.Random(0).randbytes(1000))
    with pytest.raises(ValueError, match="random.pt"):
        load_reference_state_dict(path)


class NotATensor:
    """A pickled object of an arbitrary class: weights_only loading must refuse it."""


@pytest.mark.parametrize("payload", [
    {"model_state_dict": {"conv1.weight": torch.zeros(1)}, "extra": Fraction(1, 3)},
    {"conv1.weight": NotATensor()},
])
def test_pickled_objects_are_refused(payload, tmp_path):
    path = tmp_path / "objects.pt"
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"objects\.pt.*weights_only=True.*Unsupported global"):
        load_reference_state_dict(path)


@pytest.mark.parametrize("payload, match", [
    ({"conv1.weight": torch.zeros(1), "lr": 0.1}, "not tensors: lr"),
    (torch.zeros(3), "got Tensor"),
    ({}, "non-empty mapping"),
])
def test_non_state_dicts_are_refused(payload, match, tmp_path):
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(ValueError, match=match):
        load_reference_state_dict(path)
