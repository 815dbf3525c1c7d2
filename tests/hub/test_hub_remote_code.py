"""The Hub-ready folder as a new user sees it: no mimo_hf installed, only transformers + remote code.

The parent process builds a tiny trained-looking model, writes the folder with
`mimo_hf.hub.save_hub_folder`, and stores fixed inputs and the in-process outputs. ONE fresh
subprocess, in which `import mimo_hf` fails, loads the folder (and the same folder as a Hub id from a
pre-filled offline HF cache) through the Auto classes and `pipeline(..., trust_remote_code=True)` and
saves what it got; the parent compares.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIG_FIELDS
from hub_testing import prefill_hub_cache
import torch

import mimo_hf
from mimo_hf import MIMOConvConfig, MIMOConvForImageClassification
from mimo_hf.hub.export import save_hub_folder
from mimo_hf.data.image_processing import make_image_processor

LABELS = {0: "cat", 1: "dog", 2: "frog"}
N = 4
OPERATING_POINTS = (1, 2, 4)
HUB_ID = "test-org/mimoconv-tiny"
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"
PACKAGE_CODE = Path(mimo_hf.__file__).parent / "models" / "mimoconv"


pytestmark = pytest.mark.usefixtures("single_thread")

CHILD = r'''
import importlib.abc
import json
import sys


class BlockMimoHf(importlib.abc.MetaPathFinder):
    """A new user's machine: the mimo_hf package is not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "mimo_hf" or name.startswith("mimo_hf."):
            raise ImportError(f"blocked for this test: {name}")
        return None


sys.meta_path.insert(0, BlockMimoHf())
for name in list(sys.modules):
    assert not name.startswith("mimo_hf"), name

result = {}
try:
    import mimo_hf  # noqa: F401
    result["mimo_hf_import_error"] = None
except ImportError as error:
    result["mimo_hf_import_error"] = str(error)

import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    pipeline,
)

args = json.loads(sys.argv[1])
folder, points = args["folder"], args["operating_points"]
data = torch.load(args["inputs"], weights_only=True)
x = data["pixel_values"]

config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
result["config_module"] = type(config).__module__
result["config"] = {key: getattr(config, key) for key in args["config_fields"]}
result["id2label"] = {int(k): v for k, v in config.id2label.items()}
result["operating_points"] = list(config.operating_points)

classifier = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True)
result["classifier_module"] = type(classifier).__module__
result["classifier_class"] = type(classifier).__name__
result["classifier_training"] = classifier.training
result["state_dict"] = {k: v.clone() for k, v in classifier.state_dict().items()}
base = AutoModel.from_pretrained(folder, trust_remote_code=True)
result["base_module"] = type(base).__module__
result["base_class"] = type(base).__name__
with torch.no_grad():
    result["logits"] = {k: classifier(x, num_superpositions=k).logits for k in points}
    result["features"] = {k: base(x, num_superpositions=k).pooler_output for k in points}

# The Hub-id path: the same folder in a pre-filled cache, HF_HUB_OFFLINE=1.
hub_config = AutoConfig.from_pretrained(args["hub_id"], trust_remote_code=True)
hub_model = AutoModelForImageClassification.from_pretrained(args["hub_id"], trust_remote_code=True)
result["hub_config_module"] = type(hub_config).__module__
result["hub_module"] = type(hub_model).__module__
with torch.no_grad():
    result["hub_logits"] = {k: hub_model(x, num_superpositions=k).logits for k in points}

# Pipeline on PIL images.
pil = [Image.open(path).convert("RGB") for path in args["images"]]
processor = AutoImageProcessor.from_pretrained(folder)
result["processor_class"] = type(processor).__name__
result["processed"] = processor(pil, return_tensors="pt")["pixel_values"]
classify = pipeline("image-classification", model=folder, trust_remote_code=True)
result["pipeline_model_module"] = type(classify.model).__module__
result["pipe_single"] = classify(pil[0])
result["pipe_batch"] = classify(pil, batch_size=4)

result["mimo_hf_in_sys_modules"] = sorted(name for name in sys.modules if name.startswith("mimo_hf"))
torch.save(result, args["output"])
print("child done")
'''



def _build_model():
    torch.manual_seed(0)
    config = MIMOConvConfig(
        num_superpositions=N,
        binding="hrr",
        depth=10,
        width=1,
        initial_width=1,
        trained_superpositions=[1, 4],
        id2label=dict(LABELS),
        label2id={v: k for k, v in LABELS.items()},
    )
    model = MIMOConvForImageClassification(config)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
        model.train()
        model(torch.randn(2 * N, 3, 32, 32) * 1.5 + 0.3)  # non-trivial BatchNorm running statistics
    model.eval()
    return model


def _write_images(folder):
    rng = np.random.default_rng(0)
    paths = []
    from PIL import Image

    for i in range(5):
        size = 32 if i < 4 else 40  # one image that the processor has to resize
        array = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        path = folder / f"image_{i}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def hub_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hub")
    model = _build_model()
    processor = make_image_processor("cifar10")
    folder = tmp / "mimoconv-tiny"
    save_hub_folder(model, str(folder), processor)

    # Inputs and in-process outputs.
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(7, 3, 32, 32, generator=gen)  # 7: not a multiple of 2 or 4
    torch.save({"pixel_values": x}, tmp / "inputs.pt")
    image_paths = _write_images(tmp)

    # Pre-filled HF cache for the Hub-id path (no network: HF_HUB_OFFLINE=1).
    # (tests/test_hub_loading.py does the same for every zoo folder, on both transformers legs.)
    hf_home = tmp / "hf_home"
    hub_cache = hf_home / "hub"
    prefill_hub_cache(folder, hub_cache, HUB_ID, commit=SNAPSHOT)

    script = tmp / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    output = tmp / "child_result.pt"
    args = {
        "folder": str(folder),
        "hub_id": HUB_ID,
        "inputs": str(tmp / "inputs.pt"),
        "images": [str(p) for p in image_paths],
        "output": str(output),
        "operating_points": list(OPERATING_POINTS),
        "config_fields": CONFIG_FIELDS,
    }
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "PYTHON"))
    }
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(hf_home),
        HF_HUB_CACHE=str(hub_cache),
        HF_MODULES_CACHE=str(tmp / "modules_cache"),
        HF_HUB_DISABLE_TELEMETRY="1",
        OMP_NUM_THREADS="1",
        PYTHONNOUSERSITE="1",
    )
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps(args)],
        cwd=str(tmp),  # not the repository: nothing importable from the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"child failed\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr[-6000:]}"
    child = torch.load(output, weights_only=True)
    return {
        "model": model,
        "processor": processor,
        "folder": folder,
        "x": x,
        "images": image_paths,
        "child": child,
        "tmp": tmp,
        "stderr": proc.stderr,
    }


def test_folder_file_set(hub_run):
    folder = hub_run["folder"]
    files = {p.name for p in folder.iterdir() if p.is_file()}
    required = {
        "config.json",
        "model.safetensors",
        "configuration_mimoconv.py",
        "modeling_mimoconv.py",
        "binding.py",
        "pipeline_mimoconv.py",
        "preprocessor_config.json",
    }
    assert required <= files, f"missing: {required - files}"
    assert not {name for name in files if name.endswith(".py")} - required, files
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_mimoconv.MIMOConvConfig",
        "AutoModel": "modeling_mimoconv.MIMOConvModel",
        "AutoModelForImageClassification": "modeling_mimoconv.MIMOConvForImageClassification",
    }
    assert config["custom_pipelines"]["image-classification"]["impl"] == (
        "pipeline_mimoconv.MIMOConvImageClassificationPipeline")
    assert config["model_type"] == "mimoconv"
    assert config["architectures"] == ["MIMOConvForImageClassification"]
    assert config["id2label"] == {str(k): v for k, v in LABELS.items()}
    preprocessor = json.loads((folder / "preprocessor_config.json").read_text())
    assert preprocessor["image_processor_type"].startswith("ViTImageProcessor")
    assert preprocessor["size"] == {"height": 32, "width": 32}
    assert preprocessor["image_mean"] == pytest.approx([0.4914, 0.4822, 0.4465])
    assert preprocessor["image_std"] == pytest.approx([0.2470, 0.2435, 0.2616])


def test_copied_code_is_the_package_code_and_imports_only_the_stack(hub_run):
    folder = hub_run["folder"]
    for name in ("configuration_mimoconv.py", "modeling_mimoconv.py", "binding.py", "pipeline_mimoconv.py"):
        copied = (folder / name).read_text()
        assert copied == (PACKAGE_CODE / name).read_text(), f"{name} differs from the package source"
        assert "mimo_hf" not in "\n".join(
            line for line in copied.splitlines() if line.lstrip().startswith(("import ", "from "))
        ), name


def test_child_really_had_no_mimo_hf(hub_run):
    child = hub_run["child"]
    assert child["mimo_hf_import_error"] is not None, "import mimo_hf succeeded in the child"
    assert child["mimo_hf_in_sys_modules"] == []


def test_classes_come_from_remote_code(hub_run):
    child = hub_run["child"]
    for key in ("config_module", "classifier_module", "base_module", "hub_config_module", "hub_module"):
        module = child[key]
        assert module.startswith("transformers_modules."), (key, module)
        assert "mimo_hf" not in module, (key, module)
    assert child["classifier_class"] == "MIMOConvForImageClassification"
    assert child["base_class"] == "MIMOConvModel"
    assert child["pipeline_model_module"].startswith("transformers_modules."), child["pipeline_model_module"]
    # The Hub-id load went through the cache entry of the Hub id (its snapshot), not the local folder.
    assert SNAPSHOT in child["hub_module"], child["hub_module"]
    assert SNAPSHOT in child["hub_config_module"], child["hub_config_module"]


def test_remote_config_keeps_every_field(hub_run):
    child = hub_run["child"]
    model = hub_run["model"]
    for field in CONFIG_FIELDS:
        assert child["config"][field] == getattr(model.config, field), field
    assert child["id2label"] == LABELS
    assert child["operating_points"] == list(OPERATING_POINTS)


def test_remote_weights_are_bitwise_identical(hub_run):
    child = hub_run["child"]
    assert child["classifier_training"] is False
    original = hub_run["model"].state_dict()
    assert child["state_dict"].keys() == original.keys()
    for key, value in original.items():
        assert torch.equal(child["state_dict"][key], value), key


@pytest.mark.parametrize("k", OPERATING_POINTS)
def test_remote_logits_and_features_identical_at_every_operating_point(hub_run, k):
    model = hub_run["model"]
    child = hub_run["child"]
    x = hub_run["x"]
    with torch.no_grad():
        logits = model(x, num_superpositions=k).logits
        features = model.mimoconv(x, num_superpositions=k).pooler_output
    assert logits.shape == (7, 3)
    assert torch.equal(child["logits"][k], logits), (child["logits"][k] - logits).abs().max()
    assert torch.equal(child["hub_logits"][k], logits), (child["hub_logits"][k] - logits).abs().max()
    assert child["features"][k].shape == (7, 64)
    assert torch.equal(child["features"][k], features), (child["features"][k] - features).abs().max()


def _processed(hub_run):
    from PIL import Image

    pil = [Image.open(p).convert("RGB") for p in hub_run["images"]]
    return hub_run["processor"](pil, return_tensors="pt")["pixel_values"]


def test_pipeline_single_image(hub_run):
    child = hub_run["child"]
    result = child["pipe_single"]
    assert isinstance(result, list) and len(result) == 3
    assert {item["label"] for item in result} == set(LABELS.values())
    scores = [item["score"] for item in result]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-5)
    pixel_values = _processed(hub_run)
    torch.testing.assert_close(child["processed"], pixel_values, atol=1e-5, rtol=0)
    with torch.no_grad():
        probs = hub_run["model"](pixel_values[:1]).logits.softmax(-1)[0]
    for item in result:
        label_id = {v: k for k, v in LABELS.items()}[item["label"]]
        assert item["score"] == pytest.approx(probs[label_id].item(), abs=1e-5)


def test_pipeline_batched_images(hub_run):
    """batch_size=4 on 5 images: bundles of images 0-3 and of image 4 alone (default k = N = 4)."""
    child = hub_run["child"]
    results = child["pipe_batch"]
    assert len(results) == 5
    for per_image in results:
        assert len(per_image) == 3
        assert {item["label"] for item in per_image} == set(LABELS.values())
    pixel_values = _processed(hub_run)
    assert pixel_values.shape == (5, 3, 32, 32)
    with torch.no_grad():
        model = hub_run["model"]
        logits = torch.cat([model(pixel_values[:4]).logits, model(pixel_values[4:]).logits])
    expected_top = [LABELS[i] for i in logits.argmax(-1).tolist()]
    assert [per_image[0]["label"] for per_image in results] == expected_top
    probs = logits.softmax(-1)
    for row, per_image in enumerate(results):
        label_id = {v: k for k, v in LABELS.items()}[per_image[0]["label"]]
        assert per_image[0]["score"] == pytest.approx(probs[row, label_id].item(), abs=1e-5)
