"""Deployment (mimo_hf.deploy): ONNX export, int8, runtimes, benchmark/evaluation, Hub layout, the Space's ONNX path.

Equivalence first: the tensor-op group layout equals the model's `group_layout`; the traceable graph
modules equal the PyTorch forward; every exported fp32 graph, on ONNX Runtime and on OpenVINO, gives
PyTorch's logits (<= 1e-3) at every operating point and at batch sizes with partial last groups
(small random MIMOConv and MIMOFormer models); a committed zoo checkpoint exported to int8 and
calibrated on real CIFAR-10 training images keeps its accuracy on real test images; the runtime
class returns what the transformers pipeline returns. Needs the `deploy` extra (the README's test
command installs it) and, for the real-data tests, ../shared/data/cifar10.
"""

import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from mimo_hf import MIMOConvConfig, MIMOConvForImageClassification, MIMOFormerConfig, MIMOFormerForSequenceClassification
from mimo_hf.deploy import MissingDependencyError, require
from mimo_hf.deploy.graphs import MIMOConvGraph, MIMOFormerGraph, group_positions
from mimo_hf.deploy.hub import DEPLOY_RESULTS, card_deploy, onnx_problems
from mimo_hf.deploy.onnx_export import Checkpoint, ExportVerificationError, export_checkpoint, load_checkpoint
from mimo_hf.deploy.quantization import CalibrationSource
from mimo_hf.deploy.runtime import DeployedClassifier, open_session, read_manifest
from mimo_hf.data.image_processing import make_image_processor
from mimo_hf.models.mimoconv.modeling_mimoconv import group_layout
from mimo_hf.models.mimoformer.modeling_mimoformer import group_layout as former_group_layout

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "zoo"
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
SAMPLE = ROOT / "mimo_hf" / "samples" / "cifar10" / "test-00000-of-00001.parquet"
needs_cifar = pytest.mark.skipif(not CIFAR.is_dir(), reason="needs ../shared/data/cifar10 (the real training images)")

pytestmark = pytest.mark.usefixtures("single_thread")


def _quiet(message):
    pass


def _load_script(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sample_images(count, offset=0):
    """Real CIFAR-10 test images (the sample shipped with the package) as PIL images, and their labels."""
    table = pq.read_table(SAMPLE).slice(offset, count).to_pylist()
    return [Image.open(io.BytesIO(row["img"]["bytes"])).convert("RGB") for row in table], [row["label"] for row in table]


def _tiny_mimoconv(**overrides):
    torch.manual_seed(0)
    config = dict(num_superpositions=4, depth=10, width=1, initial_width=1, num_labels=10)
    return MIMOConvForImageClassification(MIMOConvConfig(**{**config, **overrides})).eval()


def _tiny_mimoformer(**overrides):
    torch.manual_seed(0)
    config = dict(attention_type="mimo_att_mlp", mimo_m=2, mimo_n=1, num_random_features=8, vocab_size=20,
                  max_position_embeddings=16, hidden_size=16, num_attention_heads=2, head_dim=8, intermediate_size=16,
                  num_hidden_layers=1, num_labels=3)
    return MIMOFormerForSequenceClassification(MIMOFormerConfig(**{**config, **overrides})).eval()


def _token_batch(config, batch, length, seed):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, config.vocab_size, (batch, length), generator=gen)
    real = torch.randint(1, length + 1, (batch,), generator=gen)
    mask = (torch.arange(length)[None] < real[:, None]).long()
    return ids * mask, mask


# ---------------------------------------------------------------------------------------------
# The traceable formulation equals the PyTorch forward (no ONNX involved)


def test_group_positions_equal_the_models_group_layout():
    for layout in (group_layout, former_group_layout):
        for k in range(1, 6):
            for b in range(1, 3 * k + 2):
                expected = layout(b, k)
                expected = torch.arange(b) if expected is None else expected
                assert torch.equal(group_positions(b, k), expected), (layout.__module__, b, k)


@pytest.mark.parametrize("overrides", [{}, {"binding": "mbat", "activation": "srelu"},
                                       {"num_superpositions": 1, "binding": "none", "activation": "relu"}],
                         ids=["hrr-prelu", "mbat-srelu", "baseline"])
def test_mimoconv_graph_module_equals_the_model(overrides):
    model = _tiny_mimoconv(**overrides)
    for k in model.config.operating_points:
        graph = MIMOConvGraph(model, k)
        for b in sorted({1, k + 1, 2 * k, 2 * k + 3}):
            x = torch.randn(b, 3, 32, 32)
            with torch.no_grad():
                torch.testing.assert_close(graph(x), model(x, num_superpositions=k).logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize("overrides", [{}, {"attention_type": "mimo_att", "pooling": "masked_mean"},
                                       {"attention_type": "mimo_att", "pooling": "cls", "mimo_n": 2}],
                         ids=["att-mlp-mean", "att-masked-mean", "att-cls-2x2"])
def test_mimoformer_graph_module_equals_the_model(overrides):
    model = _tiny_mimoformer(**overrides)
    for grid in model.config.operating_points:
        graph = MIMOFormerGraph(model, grid)
        for b in (1, 3, 5):
            ids, mask = _token_batch(model.config, b, 16, seed=b)
            mask[:, -1] = 0  # pooling="cls" needs a free last position
            with torch.no_grad():
                torch.testing.assert_close(graph(ids, mask), model(ids, attention_mask=mask, mimo_grid=grid).logits,
                                           rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# fp32 exports: ONNX Runtime and OpenVINO give PyTorch's logits


@pytest.fixture(scope="module")
def tiny_conv_export(tmp_path_factory):
    """A small random MIMOConv (N = 4) exported at every operating point, with its image processor."""
    model = _tiny_mimoconv()
    folder = tmp_path_factory.mktemp("tiny-conv") / "onnx"
    manifest = export_checkpoint(Checkpoint(model, make_image_processor(), "mimoconv", "tiny"), folder, threads=1,
                                 log=_quiet)
    return model, folder, manifest


@pytest.fixture(scope="module")
def tiny_former_export(tmp_path_factory):
    """A small random MIMOFormer att.+MLP on a 2 x 1 grid exported at both of its grids."""
    model = _tiny_mimoformer()
    folder = tmp_path_factory.mktemp("tiny-former") / "onnx"
    manifest = export_checkpoint(Checkpoint(model, None, "mimoformer", "tiny"), folder, threads=1, log=_quiet)
    return model, folder, manifest


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_fp32_mimoconv_onnx_equals_pytorch_at_every_point_and_batch_size(tiny_conv_export, runtime):
    model, folder, manifest = tiny_conv_export
    assert [p["name"] for p in manifest["operating_points"]] == ["k1", "k2", "k4"]
    assert manifest["inputs"] == [{"name": "pixel_values", "dtype": "float32", "shape": ["batch", 3, 32, 32]}]
    for point in manifest["operating_points"]:
        k = point["value"]
        session = open_session(folder / point["files"]["fp32"], runtime, threads=1)
        for b in (1, 2, 3, 5, 7, 8, 13):  # single inputs, partial last groups, several full groups
            x = torch.randn(b, 3, 32, 32)
            with torch.no_grad():
                expected = model(x, num_superpositions=k).logits.numpy()
            got = session({"pixel_values": x.numpy()})
            assert got.shape == expected.shape
            assert np.abs(got - expected).max() <= 1e-3, (runtime, k, b)
    # The export checked itself before writing, and says so.
    for check in manifest["verification"].values():
        assert all(c["max_abs_logit_diff"] <= 1e-3 for c in check["checks"])


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_fp32_mimoformer_onnx_equals_pytorch_at_every_grid_and_batch_size(tiny_former_export, runtime):
    model, folder, manifest = tiny_former_export
    assert [p["name"] for p in manifest["operating_points"]] == ["grid1x1", "grid2x1"]
    assert [i["name"] for i in manifest["inputs"]] == ["input_ids", "attention_mask"]
    for point in manifest["operating_points"]:
        grid = tuple(point["value"])
        session = open_session(folder / point["files"]["fp32"], runtime, threads=1)
        for b, length in ((1, 16), (2, 16), (3, 16), (5, 16), (3, 9)):  # partial groups; a shorter length
            ids, mask = _token_batch(model.config, b, length, seed=10 * b + length)
            with torch.no_grad():
                expected = model(ids, attention_mask=mask, mimo_grid=grid).logits.numpy()
            got = session({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
            assert np.abs(got - expected).max() <= 1e-3, (runtime, grid, b, length)


def test_exported_files_are_self_contained_and_hold_no_local_paths(tiny_conv_export):
    _, folder, manifest = tiny_conv_export
    assert sorted(p.name for p in folder.iterdir()) == sorted(["deploy.json", "preprocessor_config.json",
                                                               *manifest["files"]])
    for name in manifest["files"]:
        data = (folder / name).read_bytes()
        assert b"/work/" not in data and str(ROOT).encode() not in data and b"site-packages" not in data, name


def test_export_refuses_to_write_a_graph_that_differs_from_pytorch(tmp_path, monkeypatch):
    import mimo_hf.deploy.onnx_export as onnx_export

    real = onnx_export.reference_logits
    monkeypatch.setattr(onnx_export, "reference_logits", lambda *args: real(*args) + 0.01)
    folder = tmp_path / "out"
    with pytest.raises(ExportVerificationError, match=r"ONNX Runtime logits differ from PyTorch by 1\.00\de-02 > 1e-03; nothing was written"):
        export_checkpoint(Checkpoint(_tiny_mimoconv(num_superpositions=2), None, "mimoconv", "tiny"), folder,
                          operating_points=[2], log=_quiet)
    assert list(folder.iterdir()) == []


def test_clear_errors(tiny_conv_export, tmp_path, monkeypatch):
    model, folder, _ = tiny_conv_export
    checkpoint = Checkpoint(model, None, "mimoconv", "tiny")
    with pytest.raises(FileNotFoundError, match="does not exist; create it with python scripts/export_onnx.py"):
        DeployedClassifier(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="has no deploy.json"):
        DeployedClassifier(tmp_path)
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        DeployedClassifier(folder, runtime="tensorrt")
    with pytest.raises(ValueError, match="has no int8 export.*--int8"):
        DeployedClassifier(folder, precision="int8")
    classifier = DeployedClassifier(folder, threads=1)
    with pytest.raises(ValueError, match=r"operating point 3 is not exported .*\['k1', 'k2', 'k4'\]"):
        classifier.logits(np.zeros((2, 3, 32, 32), np.float32), 3)
    with pytest.raises(ValueError, match=r"pixel_values must have shape \['batch', 3, 32, 32\]"):
        classifier.logits(np.zeros((2, 3, 16, 16), np.float32))
    with pytest.raises(ValueError, match=r"operating points \[3\] are not operating points of tiny; allowed: \[1, 2, 4\]"):
        export_checkpoint(checkpoint, tmp_path / "a", operating_points=[3], log=_quiet)
    with pytest.raises(ValueError, match="int8 quantization needs calibration images: pass --calibration-data-dir"):
        export_checkpoint(checkpoint, tmp_path / "b", int8=True, log=_quiet)
    with pytest.raises(FileExistsError, match="already holds .*pass --overwrite"):
        export_checkpoint(checkpoint, folder, log=_quiet)
    with pytest.raises(SystemExit):  # argparse: --int8 without calibration data
        _load_script("export_onnx").parse_args(["--model", "m", "--output", "o", "--int8"])
    # A missing optional package names the extra to install.
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingDependencyError, match=r'openvino.*pip install -e "\.\[deploy\]"'):
        DeployedClassifier(folder, runtime="openvino").logits(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(MissingDependencyError, match="int8 quantization needs the Python package 'openvino'"):
        require("openvino", "int8 quantization")


# ---------------------------------------------------------------------------------------------
# int8 of a committed zoo checkpoint, calibrated on real training images


@pytest.fixture(scope="module")
def zoo_int8(tmp_path_factory):
    """zoo/mimoconv16-2-n4-dynamic at k = 4, fp32 and int8 (64 real CIFAR-10 training images)."""
    if not CIFAR.is_dir():
        pytest.skip("needs ../shared/data/cifar10 (the real training images)")
    folder = tmp_path_factory.mktemp("zoo-int8") / "onnx"
    source = CalibrationSource(data_dir=str(CIFAR), count=64)
    manifest = export_checkpoint(str(ZOO / "mimoconv16-2-n4-dynamic"), folder, operating_points=[4], int8=True,
                                 calibration=source, verify_images=32, threads=1, log=_quiet)
    return folder, manifest


@needs_cifar
def test_int8_export_records_its_calibration_and_verification(zoo_int8):
    folder, manifest = zoo_int8
    (point,) = manifest["operating_points"]
    assert point["files"] == {"fp32": "model_k4.onnx", "int8": "model_k4_int8.onnx"}
    assert manifest["calibration"]["split"] == "train" and manifest["calibration"]["count"] == 64
    assert manifest["quantization"]["quant_format"] == "QDQ" and manifest["quantization"]["reduce_range"]
    checks = manifest["verification"]["model_k4_int8.onnx"]["checks"]
    assert checks[1]["inputs"].startswith("32 training images") and checks[1]["batch_sizes"] == [32, 31]
    # int8 weights: a quarter of the bytes (plus scales and the fp32 stem).
    assert (folder / "model_k4_int8.onnx").stat().st_size < 0.4 * (folder / "model_k4.onnx").stat().st_size


def _batchnorm_scale_sizes(path):
    """Number of int8 scales of each BatchNormalization's (dequantized) scale input in an ONNX graph."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    sizes = []
    for node in graph.node:
        if node.op_type == "BatchNormalization":
            dequantize = producers[node.input[1]]
            assert dequantize.op_type == "DequantizeLinear"
            sizes.append(initializers[dequantize.input[1]].size)
    return sizes


@needs_cifar
def test_int8_batchnorm_scales_are_quantized_per_channel(zoo_int8, tmp_path, caplog):
    from mimo_hf.deploy.quantization import QuantSettings, quantize_int8

    folder, manifest = zoo_int8
    default = _batchnorm_scale_sizes(folder / "model_k4_int8.onnx")
    assert manifest["quantization"]["batchnorm_per_channel"] is True
    assert default and all(size > 1 for size in default)  # the pre-activation BatchNorms: one scale per channel
    pixels = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    with caplog.at_level("WARNING"):
        quantize_int8(folder / "model_k4.onnx", tmp_path / "per_tensor.onnx", "pixel_values", pixels,
                      QuantSettings(batchnorm_per_channel=False), batch_size=4)
    assert _batchnorm_scale_sizes(tmp_path / "per_tensor.onnx") == [1] * len(default)
    assert "out-of-range" in caplog.text  # onnxruntime's own warning for the 1-D scales, which the default avoids


@needs_cifar
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_int8_accuracy_is_close_to_fp32_on_real_test_images(zoo_int8, runtime):
    folder, _ = zoo_int8
    model = load_checkpoint(str(ZOO / "mimoconv16-2-n4-dynamic")).model
    images, labels = _sample_images(256)
    classifier = DeployedClassifier(folder, runtime, "int8", threads=1)
    pixels = classifier.preprocess(images)["pixel_values"]
    labels = np.array(labels)
    fp32, int8 = [], []
    for start in range(0, 256, 64):  # the evaluation's grouping: consecutive runs of k in batches of 64
        batch = pixels[start:start + 64]
        with torch.no_grad():
            fp32.append(model(torch.from_numpy(batch), num_superpositions=4).logits.argmax(-1).numpy())
        int8.append(classifier.logits(batch, 4).argmax(-1))
    fp32, int8 = np.concatenate(fp32), np.concatenate(int8)
    assert (fp32 == int8).mean() >= 0.85, (runtime, (fp32 == int8).mean())
    assert abs((int8 == labels).mean() - (fp32 == labels).mean()) <= 0.04, (runtime, (int8 == labels).mean(),
                                                                            (fp32 == labels).mean())


@needs_cifar
def test_runtime_returns_what_the_pipeline_returns(zoo_int8):
    from transformers import pipeline

    folder, _ = zoo_int8
    images, _ = _sample_images(6)
    classify = pipeline("image-classification", model=str(ZOO / "mimoconv16-2-n4-dynamic"), trust_remote_code=True)
    runtime = DeployedClassifier(folder, "onnxruntime", "fp32", threads=1)
    for batch_size in (6, 4):  # one bundle plus a partial one; 4 + a partial batch of 2
        expected = classify(images, batch_size=batch_size)
        got = runtime(images, batch_size=batch_size)
        assert len(got) == 6 and all(len(row) == 5 for row in got)
        for g, e in zip(got, expected):
            assert [item["label"] for item in g] == [item["label"] for item in e]
            assert [item["score"] for item in g] == pytest.approx([item["score"] for item in e], abs=1e-4)
            assert all(set(item) == {"label", "score"} and isinstance(item["score"], float) for item in g)
    single = runtime(images[0], top_k=3)
    assert [item["label"] for item in single] == [item["label"] for item in classify(images[0], top_k=3)]
    # int8 on OpenVINO returns the same structure.
    int8 = DeployedClassifier(folder, "openvino", "int8", threads=1)(images, top_k=2)
    assert [len(row) for row in int8] == [2] * 6 and all(row[0]["score"] >= row[1]["score"] for row in int8)


@needs_cifar
def test_evaluate_scores_the_export_beside_pytorch(zoo_int8, tmp_path):
    folder, _ = zoo_int8
    report = _load_script("evaluate_mimoconv").main([
        "--model", str(ZOO / "mimoconv16-2-n4-dynamic"), "--onnx", str(folder), "--operating-points", "4",
        "--baseline", "none", "--runtimes", "onnxruntime", "--throughput-batch-size", "8", "--repeats", "1",
        "--warmup", "0", "--threads", "1", "--output-dir", str(tmp_path), "--results-file", DEPLOY_RESULTS])
    rows = {(r["runtime"], r["precision"]): r for r in report["deploy"]["model"]["results"]}
    assert set(rows) == {("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")}
    assert rows[("torch", "fp32")]["accuracy"] == report["results"][0]["accuracy"]
    assert all(r["count"] == 1000 and r["images_per_s"] > 0 for r in rows.values())
    # fp32 ONNX predicts what PyTorch predicts (logits equal to 1e-3; an argmax may flip on a near tie).
    assert abs(rows[("onnxruntime", "fp32")]["accuracy"] - rows[("torch", "fp32")]["accuracy"]) <= 0.002
    assert report["deploy"]["model"]["files"] == {name: record["sha256"] for name, record in read_manifest(folder)["files"].items()}
    assert not (tmp_path / "accuracy_throughput.png").exists()  # the zoo folder's plot is never overwritten
    # The card's Deploy section reads these results.
    staged = tmp_path / "folder"
    staged.mkdir()
    shutil.copy(tmp_path / DEPLOY_RESULTS, staged / DEPLOY_RESULTS)
    deploy = card_deploy(staged)
    assert [(r["runtime"], r["precision"], r["accuracy"]) for r in deploy["rows"]] == [
        (name, precision, f"{100 * rows[(key, precision)]['accuracy']:.2f}%")
        for (key, precision), name in [(("torch", "fp32"), "PyTorch (eager)"), (("onnxruntime", "fp32"), "ONNX Runtime"),
                                       (("onnxruntime", "int8"), "ONNX Runtime")]]


@needs_cifar
def test_onnx_folder_in_the_hub_layout(zoo_int8, tmp_path):
    from mimo_hf.hub.publishing import collect_files

    folder, _ = zoo_int8
    hub = tmp_path / "hub"
    shutil.copytree(ZOO / "mimoconv16-2-n4-dynamic", hub, ignore=shutil.ignore_patterns("onnx", DEPLOY_RESULTS))
    assert onnx_problems(hub)[0].startswith("onnx/: exported folder") and "scripts/export_onnx.py" in onnx_problems(hub)[0]
    shutil.copytree(folder, hub / "onnx")
    assert onnx_problems(hub) == []
    # Deploy results measured on other files (here: the zoo's full export) are refused with this export.
    (hub / DEPLOY_RESULTS).write_text(json.dumps({"command": "python scripts/evaluate_mimoconv.py ...",
                                                  "deploy": {"model": {"files": {"model_k4.onnx": "0" * 64}}}}))
    assert onnx_problems(hub) == [f"{DEPLOY_RESULTS} was measured on other ONNX files than onnx/ holds; re-run its "
                                  "command: python scripts/evaluate_mimoconv.py ..."]
    (hub / DEPLOY_RESULTS).unlink()
    names = {f.path_in_repo for f in collect_files(hub, onnx=True)[0]}
    assert {"onnx/deploy.json", "onnx/model_k4.onnx", "onnx/model_k4_int8.onnx"} <= names
    assert not any(name.startswith("onnx/") for name in {f.path_in_repo for f in collect_files(hub)[0]})
    assert collect_files(hub, onnx=True)[1] == []
    # A graph changed after its verification, or a stray one, is refused.
    data = bytearray((hub / "onnx" / "model_k4_int8.onnx").read_bytes())
    data[-1] ^= 1
    (hub / "onnx" / "model_k4_int8.onnx").write_bytes(bytes(data))
    (hub / "onnx" / "model_k2.onnx").write_bytes(b"")
    problems = " ".join(onnx_problems(hub))
    assert "model_k4_int8.onnx differs from the file the export verified" in problems


@needs_cifar
def test_space_runs_the_int8_graph(zoo_int8, tmp_path):
    import importlib.util

    folder, _ = zoo_int8
    spec = importlib.util.spec_from_file_location("demo_inference", ROOT / "spaces" / "mimo-hf-demo" / "demo_inference.py")
    inference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inference)
    hub = tmp_path / "mimoconv16-2-n4-dynamic"
    shutil.copytree(ZOO / "mimoconv16-2-n4-dynamic", hub, ignore=shutil.ignore_patterns("onnx"))
    plain = inference.load(inference.with_task(inference.ModelSpec(str(hub))))
    images, _ = _sample_images(6)
    with pytest.raises(ValueError, match="has no ONNX export"):
        inference.classify_images(plain, images, "k=4", runtime=inference.ONNX_INT8)
    inference._cache.clear()
    shutil.copytree(folder, hub / "onnx")
    loaded = inference.load(inference.with_task(inference.ModelSpec(str(hub))))
    result = inference.classify_images(loaded, images, "k=4", top_k=10, runtime=inference.ONNX_INT8)
    assert result["runtime"] == inference.ONNX_INT8 and result["num_inputs"] == 6
    expected = DeployedClassifier(folder, "onnxruntime", "int8", threads=1)(images, 4, top_k=10)
    for got, exp in zip(result["predictions"], expected):
        # Every label's score (int8 logits are discrete, so ties may be ordered differently).
        got_scores = {t["label"]: t["score"] for t in got["top"]}
        assert got_scores == pytest.approx({t["label"]: t["score"] for t in exp}, abs=1e-5)
    with pytest.raises(ValueError, match="has no ONNX int8 graph for k=1"):
        inference.classify_images(loaded, images, "k=1", runtime=inference.ONNX_INT8)
    torch_result = inference.classify_images(loaded, images, "k=4", top_k=3)
    assert torch_result["runtime"] == inference.TORCH


# ---------------------------------------------------------------------------------------------
# Scripts


def test_benchmark_times_every_runtime_side_by_side(tmp_path):
    out = tmp_path / "bench.json"
    rows = _load_script("benchmark_throughput").main([
        "--depth", "10", "--width", "1", "--initial-width", "1", "--num-superpositions", "2", "--batch-size", "8",
        "--repeats", "1", "--warmup", "0", "--threads", "1", "--runtime", "torch", "onnxruntime", "openvino", "--int8",
        "--output", str(out)])
    assert json.loads(out.read_text()) == rows
    keys = [(r["name"], r["runtime"], r["precision"]) for r in rows]
    assert keys == [(name, runtime, precision) for name in ("baseline", "mimoconv-n2")
                    for runtime, precision in [("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"),
                                               ("openvino", "fp32"), ("openvino", "int8")]]
    base = {(r["runtime"], r["precision"]): r for r in rows if r["name"] == "baseline"}
    assert base[("torch", "fp32")]["ratio_to_baseline"] == 1.0
    assert all(r["ratio_to_baseline_same_runtime"] == 1.0 for r in base.values())
    assert all(r["images_per_s"] > 0 and r["threads"] == 1 for r in rows)
    assert {r["int8_calibration"] for r in rows if r["precision"] == "int8"} == {"random inputs (timing only)"}


@pytest.mark.parametrize("name", ["export_onnx", "deploy_table"])
def test_help_explains_the_deploy_scripts(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _load_script(name).parse_args(["--help"]) if name == "export_onnx" else _load_script(name).main(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def _speed_target_models(lines):
    return sorted({line.split("`")[1] for line in lines if "int8 on" in line and "eager fp32 baseline" in line})


def test_deploy_table_speed_targets_cover_the_tables_n4_models_unless_named(tmp_path, capsys):
    # A zoo of two N=4 folders and the baseline (capacity 1, no speed target), built from the committed
    # deploy results of the dynamic N=4 model and of the baseline, so that the test does not depend on
    # which zoo folders have deploy results at the moment.
    import shutil

    for source, name in [("mimoconv16-2-n4-dynamic", "n4-dynamic"), ("mimoconv16-2-n4-dynamic", "n4-other"),
                         ("wrn16-2-baseline", "baseline")]:
        (tmp_path / name).mkdir()
        shutil.copy(ROOT / "zoo" / source / "deploy_results.json", tmp_path / name / "deploy_results.json")
    table = _load_script("deploy_table")
    zoo = ["--zoo", str(tmp_path)]
    shown = table.main([*zoo, "--model", "n4-dynamic", "baseline", "--targets"])
    assert _speed_target_models(shown) == ["n4-dynamic"]
    # int8 accuracy is checked for every folder with deploy results, shown or not
    assert any(line.startswith("- `n4-other` int8 within 1 point") for line in shown)
    every = table.main([*zoo, "--targets"])
    assert _speed_target_models(every) == ["n4-dynamic", "n4-other"]
    named = table.main([*zoo, "--model", "n4-dynamic", "--targets", "--target-model", "n4-other"])
    assert _speed_target_models(named) == ["n4-other"]
    capsys.readouterr()
