"""mimo_hf.deploy.profiling and scripts/profile_onnx.py: OpenVINO's per-layer counters grouped by part.

A small random MIMOConv (N = 2) is exported in fp32 and profiled: the parts add up to the total, the
stem part is exactly the convolutions that read the image (one per item of a bundle), and the script
prints the side-by-side table and writes the per-layer rows. Needs the `deploy` extra.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mimo_hf import MIMOConvConfig, MIMOConvForImageClassification
from mimo_hf.data.image_processing import make_image_processor
from mimo_hf.deploy.onnx_export import Checkpoint, export_checkpoint
from mimo_hf.deploy.profiling import layer_times, part_of, profile_export
from mimo_hf.deploy.quantization import stem_convolutions
from mimo_hf.deploy.runtime import OpenVinoSession

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("single_thread")


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A small random MIMOConv (N = 2) exported at k = 1 and k = 2 (fp32), in a <model>/onnx folder."""
    torch.manual_seed(0)
    model = MIMOConvForImageClassification(MIMOConvConfig(num_superpositions=2, depth=10, width=1, initial_width=1,
                                                          num_labels=10)).eval()
    folder = tmp_path_factory.mktemp("profiled") / "tiny-n2" / "onnx"
    export_checkpoint(Checkpoint(model, make_image_processor(), "mimoconv", "tiny"), folder, threads=1,
                      log=lambda message: None)
    return folder


def test_part_of():
    stems = {"Multiply_5159"}
    assert part_of("Multiply_5159", "Convolution", stems) == "stem"
    assert part_of("Multiply_51590", "Convolution", stems) == "convolution"
    assert part_of("Multiply_5159", "Reorder", stems) == "Reorder"


@pytest.mark.parametrize("k", [1, 2])
def test_parts_add_up_and_the_stem_is_one_convolution_per_item(tiny_export, k):
    profile = profile_export(tiny_export, k, "fp32", batch_size=8, threads=1, repeats=2)
    assert profile["operating_point"] == f"k{k}" and profile["batch_size"] == 8
    parts = {entry["part"]: entry for entry in profile["parts"]}
    assert sum(entry["ms"] for entry in parts.values()) == pytest.approx(profile["total_ms"])
    assert sum(entry["share"] for entry in parts.values()) == pytest.approx(1.0)
    assert sum(entry["layers"] for entry in parts.values()) == len(profile["layers"])
    assert [entry["ms"] for entry in profile["parts"]] == sorted((e["ms"] for e in profile["parts"]), reverse=True)
    # The runtime graph's stem layers are the ONNX graph's stem convolutions: one per item of a bundle.
    assert len(stem_convolutions(tiny_export / f"model_k{k}.onnx", "pixel_values")) == k
    stem = [layer for layer in profile["layers"] if layer["part"] == "stem"]
    assert len(stem) == k and all(layer["type"] == "Convolution" for layer in stem)
    assert parts["convolution"]["layers"] >= 8  # the trunk's convolutions (WRN-10-1: 8 3x3 + 2 shortcuts)


def test_profile_errors(tiny_export):
    with pytest.raises(ValueError, match="no int8 export"):
        profile_export(tiny_export, 2, "int8", batch_size=4, threads=1)
    with pytest.raises(ValueError, match="operating point"):
        profile_export(tiny_export, 3, "fp32", batch_size=4, threads=1)
    with pytest.raises(ValueError, match="batch_size"):
        profile_export(tiny_export, 2, "fp32", batch_size=0, threads=1)
    with pytest.raises(ValueError, match="repeats"):
        profile_export(tiny_export, 2, "fp32", batch_size=4, threads=1, repeats=0)
    plain = OpenVinoSession(tiny_export / "model_k2.onnx", threads=1)  # opened without the counters
    with pytest.raises(ValueError, match="profile=True"):
        layer_times(plain, {"pixel_values": np.zeros((2, 3, 32, 32), dtype=np.float32)}, repeats=1)


def test_script_prints_the_table_and_writes_the_layers(tiny_export, tmp_path, capsys):
    script = _load_script("profile_onnx")
    out = tmp_path / "profile.json"
    profiles = script.main(["--onnx", str(tiny_export), str(tiny_export), "--operating-point", "1", "2",
                            "--precision", "fp32", "--batch-size", "4", "--threads", "1", "--repeats", "1", "--min-share", "0",
                            "--output", str(out)])
    printed = capsys.readouterr().out
    assert "| part | `tiny-n2` k1 fp32 | `tiny-n2` k2 fp32 |" in printed
    assert "| stem |" in printed and "| total |" in printed and "| other (" not in printed  # --min-share 0
    rows = {line.split(" | ")[0]: line for line in script.table(profiles, min_share=0.5).splitlines()}
    other = next(line for name, line in rows.items() if name.startswith("| other ("))
    kept = [name[2:] for name in rows if name not in ("| part", "|---|---|---|", "| total") and name != other.split(" | ")[0]]
    assert kept and all(any(e["part"] == name and e["share"] >= 0.5 for p in profiles for e in p["parts"]) for name in kept)
    folded = sum(e["ms"] for e in profiles[0]["parts"] if e["part"] not in kept)
    assert other.split(" | ")[1] == f"{folded:.2f} ms ({100 * folded / profiles[0]['total_ms']:.1f}%)"
    written = json.loads(out.read_text())
    assert [p["operating_point"] for p in written["profiles"]] == ["k1", "k2"]
    assert written["profiles"] == json.loads(json.dumps(profiles))
    assert written["machine"]["cpu"]
    with pytest.raises(SystemExit):  # an existing --output is not overwritten without --overwrite
        script.parse_args(["--onnx", str(tiny_export), "--output", str(out)])
    with pytest.raises(SystemExit):  # one operating point, or one per folder
        script.parse_args(["--onnx", str(tiny_export), "--operating-point", "1", "2"])
    with pytest.raises(SystemExit) as exit_info:
        script.parse_args(["--help"])
    assert exit_info.value.code == 0 and "per-layer counters" in capsys.readouterr().out
