"""Inference behind the MIMONets demo Space: plain functions, no UI, no mimo_hf.

A Space only has the Hub stack, so every model is loaded the way a Hub user loads it:
`AutoModelFor<task>.from_pretrained(folder_or_repo_id, trust_remote_code=True, revision=...)`.
The one exception is a checkout: the repository's zoo/ holds checkpoint folders without model code
(it is added when a folder is exported to the Hub), so for those the installed mimo_hf package of
the checkout is imported to register the architectures (`_register_package_for`).
The Gradio layer (app.py) only wires these functions to widgets, so tests call them directly.

A model is any folder or Hub repo whose config.json maps to an image- or a sequence-classification
class; its operating points (MIMOConv's k, MIMOFormer's grid) are read off the loaded config, so a
new architecture needs one branch in `operating_points` and nothing else.

Runtime "ONNX int8": a folder or repo with an `onnx/` sub-folder written by mimo-hf's
scripts/export_onnx.py (`onnx/deploy.json` names one `model_<point>_int8.onnx` per operating point)
can also run its int8 graph in ONNX Runtime: same preprocessing, same one call per upload, same
grouping of the inputs into bundles (the graph groups exactly as the PyTorch model does).
"""

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# Run from a checkout of mimo-hf, the app serves the repository's own zoo; deployed as a Space
# (only this folder is uploaded) that path does not exist and models.json names the Hub repos.
REPO_ZOO = HERE.parent.parent / "zoo"
HUB_MODELS_FILE = HERE / "models.json"

# The architectures of the mimo_hf package: their checkpoint folders (no auto_map) need it installed.
MIMO_HF_MODEL_TYPES = ("mimoconv", "mimoformer")
IMAGE = "image-classification"
TEXT = "text-classification"
AUTO_CLASSES = {IMAGE: AutoModelForImageClassification, TEXT: AutoModelForSequenceClassification}
# A forward pass over everything a user uploads at once; more would only make the Space slow for all.
MAX_INPUTS = 64
# Runtimes a request can pick: the PyTorch model, or the folder's exported int8 ONNX graph.
TORCH = "PyTorch"
ONNX_INT8 = "ONNX int8"
RUNTIMES = (TORCH, ONNX_INT8)
ONNX_MANIFEST = "onnx/deploy.json"


@dataclass(frozen=True)
class ModelSpec:
    """Where a checkpoint comes from: a local folder, or a Hub repo id pinned to `revision`."""

    source: str
    revision: str | None = None
    task: str | None = None

    @property
    def is_local(self):
        return Path(self.source).is_dir()

    @property
    def name(self):
        """What the model dropdown shows (and what API callers pass)."""
        if self.is_local:
            return Path(self.source).name
        return self.source if self.revision in (None, "main") else f"{self.source}@{self.revision}"


@dataclass(frozen=True)
class OperatingPoint:
    """One accuracy/throughput setting: its name in the UI and API, and the per-call kwargs."""

    name: str
    kwargs: dict = field(hash=False)
    inputs_per_pass: int = 1  # inputs that share one forward pass through the trunk


# ---------------------------------------------------------------------------------------------
# Which models to serve


def parse_model_list(text):
    """'a, org/b@v1.0' (commas or newlines) -> ModelSpecs. '@rev' pins a Hub repo's revision."""
    specs = []
    for entry in text.replace("\n", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        if "@" in entry and not Path(entry).is_dir():
            source, revision = entry.rsplit("@", 1)
            specs.append(ModelSpec(source.strip(), revision.strip() or None))
        else:
            specs.append(ModelSpec(entry))
    return specs


def zoo_folders(zoo):
    """Every Hub-ready folder (one with a config.json) directly under `zoo`, sorted by name."""
    return [ModelSpec(str(path)) for path in sorted(Path(zoo).iterdir()) if (path / "config.json").is_file()]


def configured_models(environ=None):
    """The models to serve, before their tasks are known. First match wins:

    1. MIMO_DEMO_MODELS: comma-separated folders and Hub ids (`org/name@revision`);
    2. MIMO_DEMO_ZOO: a folder of Hub-ready folders;
    3. the repository's zoo/, when the app runs from a checkout;
    4. models.json next to this file (Hub ids and revisions; what the deployed Space uses).
    """
    environ = os.environ if environ is None else environ
    if environ.get("MIMO_DEMO_MODELS", "").strip():
        return parse_model_list(environ["MIMO_DEMO_MODELS"])
    if environ.get("MIMO_DEMO_ZOO"):
        return zoo_folders(environ["MIMO_DEMO_ZOO"])
    if REPO_ZOO.is_dir():
        return zoo_folders(REPO_ZOO)
    entries = json.loads(HUB_MODELS_FILE.read_text())
    return [ModelSpec(entry["repo_id"], entry.get("revision")) for entry in entries]


def _file_path(spec, filename):
    """Local path of `filename` in the folder or (downloaded or cached) Hub repo; None if absent."""
    if spec.is_local:
        path = Path(spec.source) / filename
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(spec.source, filename, revision=spec.revision))
    except EntryNotFoundError:
        return None


def task_of(config):
    """The task of a raw config.json dict, from its auto_map (remote code) or its architectures."""
    names = list(config.get("auto_map") or {}) + list(config.get("architectures") or [])
    if any(name.endswith("ForImageClassification") for name in names):
        return IMAGE
    if any(name.endswith("ForSequenceClassification") for name in names):
        return TEXT
    return None


def with_task(spec):
    """`spec` with its task filled in; task None when the demo cannot serve it.

    A text model needs a tokenizer in its folder: without one, strings cannot be turned into inputs.
    """
    config_path = _file_path(spec, "config.json")
    task = task_of(json.loads(config_path.read_text())) if config_path else None
    if task == TEXT and not any(_file_path(spec, name) for name in ("tokenizer.json", "tokenizer_config.json")):
        task = None
    return ModelSpec(spec.source, spec.revision, task)


def discover_models(environ=None):
    """The servable models, each with its task. Unusable entries are logged and left out."""
    found = []
    for spec in configured_models(environ):
        try:
            spec = with_task(spec)
        except Exception as error:  # a missing repo must not take the whole Space down
            logger.warning("skipping %s: %s", spec.name, error)
            continue
        if spec.task is None:
            logger.warning("skipping %s: not an image or text classifier with a preprocessor", spec.name)
        else:
            found.append(spec)
    return found


# ---------------------------------------------------------------------------------------------
# Operating points


def operating_points(config):
    """The operating points a loaded config offers, and the default one.

    MIMOConv: k images per bundle, any divisor of N (`num_superpositions=k` per call).
    MIMOFormer: an m x n grid, m <= M and n <= N (`mimo_grid=(m, n)` per call).
    Anything else (a plain classifier) has one: the default forward pass.
    """
    if hasattr(config, "mimo_m") and hasattr(config, "mimo_n"):
        points = [OperatingPoint(f"grid={m}x{n}", {"mimo_grid": (m, n)}, m * n) for m, n in config.operating_points]
        default = f"grid={config.mimo_m}x{config.mimo_n}"
    elif hasattr(config, "operating_points") and hasattr(config, "num_superpositions"):
        points = [OperatingPoint(f"k={k}", {"num_superpositions": k}, k) for k in config.operating_points]
        default = f"k={getattr(config, 'default_superpositions', None) or config.num_superpositions}"
    else:
        points, default = [OperatingPoint("default", {}, 1)], "default"
    if default not in {point.name for point in points}:
        default = points[-1].name
    return points, default


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: torch.nn.Module
    preprocessor: object  # an image processor or a tokenizer
    points: list
    default_point: str
    onnx: dict | None = None  # onnx/deploy.json when the folder has exported graphs
    sessions: dict = field(default_factory=dict)  # operating point name -> onnxruntime session

    def point(self, name):
        """The operating point called `name` (None: the model's default)."""
        name = self.default_point if name in (None, "") else name
        for point in self.points:
            if point.name == name:
                return point
        raise ValueError(
            f"{name!r} is not an operating point of {self.spec.name}; choose one of {[p.name for p in self.points]}"
        )


_cache = {}
_cache_lock = threading.Lock()


def _register_package_for(spec):
    """A local checkpoint folder (config.json without auto_map, e.g. the checkout's zoo/) loads with the
    package's classes, which `import mimo_hf` registers; Hub repos and exported folders need nothing."""
    config_path = _file_path(spec, "config.json") if spec.is_local else None
    config = json.loads(config_path.read_text()) if config_path else {}
    if config.get("model_type") not in MIMO_HF_MODEL_TYPES or "auto_map" in config:
        return
    import importlib

    try:
        importlib.import_module("mimo_hf")  # not a requirement of the Space: only a checkout has it
    except ImportError:
        raise ValueError(f"{spec.source} is a checkpoint folder without model code: install mimo-hf (pip install -e .) "
                         "or serve exported folders (python scripts/export_hub_folder.py --all --output DIR, then "
                         "MIMO_DEMO_ZOO=DIR)") from None


def load_config(spec):
    _register_package_for(spec)
    return AutoConfig.from_pretrained(spec.source, revision=spec.revision, trust_remote_code=True)


def load(spec):
    """Load (once per process) the model and its preprocessor through the Auto classes."""
    with _cache_lock:  # Gradio calls from worker threads; load each checkpoint once
        if spec not in _cache:
            _cache[spec] = _load(spec)
        return _cache[spec]


def _load(spec):
    if spec.task not in AUTO_CLASSES:
        spec = with_task(spec)
    _register_package_for(spec)
    kwargs = {"revision": spec.revision, "trust_remote_code": True}
    model = AUTO_CLASSES[spec.task].from_pretrained(spec.source, **kwargs).eval()
    if spec.task == IMAGE:
        preprocessor = AutoImageProcessor.from_pretrained(spec.source, **kwargs)
    else:
        preprocessor = AutoTokenizer.from_pretrained(spec.source, **kwargs)
    points, default = operating_points(model.config)
    manifest = _file_path(spec, ONNX_MANIFEST)
    onnx = json.loads(manifest.read_text()) if manifest else None
    loaded = LoadedModel(spec, model, preprocessor, points, default, onnx)
    _warm_up(loaded)
    return loaded


def _warm_up(loaded):
    """One throwaway forward pass, so the first user's timing does not include one-off setup."""
    if loaded.spec.task == IMAGE:
        from PIL import Image

        classify_images(loaded, [Image.new("RGB", (32, 32))], top_k=1)
    else:
        classify_texts(loaded, ["warm up"], top_k=1)


# ---------------------------------------------------------------------------------------------
# Classification


def _top_k(model, logits, top_k):
    """Per row, the `top_k` (label, score) pairs, with the scores the transformers pipelines give."""
    config = model.config
    if config.num_labels == 1 or config.problem_type == "multi_label_classification":
        scores = logits.float().sigmoid()
    else:
        scores = logits.float().softmax(-1)
    values, indices = scores.topk(min(int(top_k), scores.shape[-1]), dim=-1)
    return [
        [{"label": config.id2label[int(i)], "score": float(v)} for v, i in zip(row_v, row_i)]
        for row_v, row_i in zip(values.tolist(), indices.tolist())
    ]


def onnx_file(loaded, point):
    """The int8 ONNX file of `point` named by the folder's onnx/deploy.json; clear errors without one."""
    if loaded.onnx is None:
        raise ValueError(f"{loaded.spec.name} has no ONNX export (no {ONNX_MANIFEST}); choose the {TORCH} runtime")
    kwargs = point.kwargs
    if "num_superpositions" in kwargs:
        name = f"k{kwargs['num_superpositions']}"
    elif "mimo_grid" in kwargs:
        name = "grid{}x{}".format(*kwargs["mimo_grid"])
    else:
        name = "k1"
    entry = next((p for p in loaded.onnx["operating_points"] if p["name"] == name), None)
    if entry is None or "int8" not in entry["files"]:
        raise ValueError(f"{loaded.spec.name} has no {ONNX_INT8} graph for {point.name}; choose the {TORCH} runtime")
    return "onnx/" + entry["files"]["int8"]


def onnx_session(loaded, point):
    """An ONNX Runtime session of the int8 graph of `point`, as many threads as torch uses, created once."""
    filename = onnx_file(loaded, point)
    if filename not in loaded.sessions:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        path = _file_path(loaded.spec, filename)
        if path is None:
            raise ValueError(f"{loaded.spec.name}: {filename} is listed in {ONNX_MANIFEST} but missing")
        loaded.sessions[filename] = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return loaded.sessions[filename]


def _forward(loaded, model_inputs, point, runtime):
    """Logits of ONE forward pass: the model (or its ONNX graph) groups consecutive runs of k inputs
    into bundles, which is where superposition saves time. Every prediction depends on its bundle-mates."""
    if runtime in (None, "", TORCH):
        with torch.inference_mode():
            return loaded.model(**model_inputs, **point.kwargs).logits
    if runtime != ONNX_INT8:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {list(RUNTIMES)}")
    session = onnx_session(loaded, point)
    feeds = {name: value.numpy() for name, value in model_inputs.items()}
    return torch.from_numpy(session.run(["logits"], feeds)[0])


def _run(loaded, inputs, names, point_name, top_k, preprocess, runtime=None):
    if not inputs:
        raise ValueError("no inputs given")
    if len(inputs) > MAX_INPUTS:
        raise ValueError(f"{len(inputs)} inputs given; this demo takes at most {MAX_INPUTS} at once")
    point = loaded.point(point_name)
    if runtime == ONNX_INT8:
        onnx_session(loaded, point)  # created (and any error raised) before the clock starts
    start = time.perf_counter()
    model_inputs = preprocess(inputs)
    preprocessed = time.perf_counter()
    logits = _forward(loaded, model_inputs, point, runtime)
    finished = time.perf_counter()
    n = len(inputs)
    forward_ms = 1000 * (finished - preprocessed)
    return {
        "model": loaded.spec.name,
        "operating_point": point.name,
        "runtime": runtime or TORCH,
        "inputs_per_pass": point.inputs_per_pass,
        "num_inputs": n,
        "timing": {
            "preprocess_ms": 1000 * (preprocessed - start),
            "forward_ms": forward_ms,
            "forward_ms_per_input": forward_ms / n,
            "inputs_per_second": n / (finished - preprocessed),
            "torch_threads": torch.get_num_threads(),
        },
        "predictions": [{"input": name, "top": top} for name, top in zip(names, _top_k(loaded.model, logits, top_k))],
    }


def classify_images(loaded, images, operating_point=None, top_k=3, names=None, runtime=None):
    """Classify PIL images in one forward pass at `operating_point` (a name from `loaded.points`), on
    `runtime` (TORCH, the default, or ONNX_INT8)."""
    images = [image.convert("RGB") for image in images]
    names = names or [f"image {i}" for i in range(len(images))]

    def preprocess(batch):
        return {"pixel_values": loaded.preprocessor(batch, return_tensors="pt")["pixel_values"]}

    return _run(loaded, images, names, operating_point, top_k, preprocess, runtime)


def text_padding(tokenizer):
    """Tokenizer padding arguments: pad to the checkpoint's length when its tokenizer names one.

    The LRA checkpoints were trained on inputs padded to a fixed length, and their mean pooling
    divides by the padded length, so padding to the batch's longest input would change their
    predictions. Tokenizers without a real limit (transformers' huge default) pad to the longest.
    """
    limit = tokenizer.model_max_length
    if limit is not None and limit <= 1_000_000:
        return {"padding": "max_length", "max_length": limit}
    return {"padding": True, "truncation": True}


def classify_texts(loaded, texts, operating_point=None, top_k=3):
    """Classify strings (one input each) in one forward pass at `operating_point`."""
    texts = [str(text) for text in texts]

    tokenizer = loaded.preprocessor
    padding = text_padding(tokenizer)

    def preprocess(batch):
        if padding["padding"] != "max_length":
            encoded = tokenizer(batch, return_tensors="pt", **padding)
        else:
            encoded = tokenizer(batch)  # tokenized once: measured, then padded
            too_long = [i for i, ids in enumerate(encoded["input_ids"]) if len(ids) > padding["max_length"]]
            if too_long:  # refuse rather than silently cut an input short
                raise ValueError(f"inputs {too_long[:10]} have more than {padding['max_length']} tokens, "
                                 "the longest this checkpoint takes")
            encoded = tokenizer.pad(encoded, return_tensors="pt", **padding)
        return {name: encoded[name] for name in tokenizer.model_input_names if name in encoded}

    names = [text if len(text) <= 40 else text[:37] + "..." for text in texts]
    return _run(loaded, texts, names, operating_point, top_k, preprocess)
