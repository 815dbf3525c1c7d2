"""Run an exported folder with ONNX Runtime or OpenVINO and get what the transformers pipeline gives.

An exported folder (scripts/export_onnx.py) holds `deploy.json` (the manifest: operating points,
their files, labels, input names, how each file was verified), `model_<point>.onnx` (fp32) and
optionally `model_<point>_int8.onnx`, and the checkpoint's preprocessor (`preprocessor_config.json`,
or the tokenizer files). `DeployedClassifier` loads it:

    classifier = DeployedClassifier("zoo/mimoconv16-2-n4/onnx", runtime="openvino", precision="int8", threads=2)
    classifier(["cat.png", "ship.png"])            # [[{"label": ..., "score": ...}, ...], ...] sorted
    classifier.logits(pixel_values, operating_point=2)   # (B, num_labels) numpy array

Scores are the pipeline's (softmax over the logits in float32, or sigmoid for single-output and
multi-label models), sorted from best to worst, `top_k` of them (5 by default, as the
image-classification pipeline). A list of inputs gives one list per input; a single input gives its
list alone, as the pipelines do. All inputs of a call go through one forward pass (or `batch_size`
at a time), grouped exactly as the PyTorch model groups a batch: consecutive runs of k (or m * n)
inputs share a bundle, a partial last group is filled by cycling its members.

Sessions run with `threads` intra-op threads and one inter-op thread (ONNX Runtime), or
`INFERENCE_NUM_THREADS` = threads and one stream (OpenVINO), so runtimes compare at equal threads.
OpenVINO runs with `INFERENCE_PRECISION_HINT` = f32: on CPUs with bf16 units its default would
compute the fp32 graph in bf16.
"""

import json
from pathlib import Path

import numpy as np

from . import require

MANIFEST = "deploy.json"
MANIFEST_FORMAT = "mimo-hf-onnx"
RUNTIMES = ("onnxruntime", "openvino")
PRECISIONS = ("fp32", "int8")


def read_manifest(folder):
    """The folder's deploy.json as a dict; clear errors for a missing folder or manifest."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"exported folder {str(folder)!r} does not exist; create it with "
                                f"python scripts/export_onnx.py --model MODEL --output {folder}")
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{str(folder)!r} has no {MANIFEST}, so it is not a folder written by "
                                f"scripts/export_onnx.py; export with: python scripts/export_onnx.py --model MODEL "
                                f"--output {folder}")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path}: format {manifest.get('format')!r} is not {MANIFEST_FORMAT!r}")
    return manifest


class OnnxRuntimeSession:
    """One ONNX Runtime CPU session: {input name: array} -> logits array."""

    def __init__(self, path, threads=None):
        ort = require("onnxruntime", "running ONNX files with ONNX Runtime")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, inputs):
        return self.session.run(["logits"], inputs)[0]


class OpenVinoSession:
    """One OpenVINO CPU compiled model (it reads the ONNX file directly): {input name: array} -> logits."""

    def __init__(self, path, threads=None, profile=False):
        ov = require("openvino", "running ONNX files with OpenVINO")
        config = {"INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": "1"}
        if profile:  # per-layer counters of the last call (`request.profiling_info`; mimo_hf.deploy.profiling)
            config["PERF_COUNT"] = True
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = str(int(threads))
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.output("logits")

    def __call__(self, inputs):
        # The request reuses its output buffer on the next call: hand out a copy.
        return np.array(self.request.infer(inputs)[self.output], copy=True)


SESSIONS = {"onnxruntime": OnnxRuntimeSession, "openvino": OpenVinoSession}


def open_session(path, runtime="onnxruntime", threads=None):
    """A callable {input name: array} -> logits for one ONNX file on `runtime`."""
    if runtime not in SESSIONS:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {list(RUNTIMES)}")
    return SESSIONS[runtime](path, threads)


def softmax(logits):
    """The transformers pipelines' softmax (numpy, along the last axis)."""
    shifted = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def label_scores(logits, id2label, top_k=5, function="softmax"):
    """Per row of (B, num_labels) logits: the top_k {label, score} dicts, best first (pipeline format)."""
    logits = np.asarray(logits, dtype=np.float32)
    scores = 1.0 / (1.0 + np.exp(-logits)) if function == "sigmoid" else softmax(logits)
    top_k = min(int(top_k), scores.shape[-1]) if top_k is not None else scores.shape[-1]
    results = []
    for row in scores:
        entries = [{"label": id2label[str(i)], "score": score.item()} for i, score in enumerate(row)]
        entries.sort(key=lambda entry: entry["score"], reverse=True)
        results.append(entries[:top_k])
    return results


def point_key(point):
    """'k4' for 4, 'grid2x2' for (2, 2) or '2x2'; names pass through."""
    if isinstance(point, str):
        if "x" in point and not point.startswith("grid"):
            return f"grid{point}"
        return point if point.startswith(("k", "grid")) else f"k{point}"
    if isinstance(point, (tuple, list)):
        return f"grid{int(point[0])}x{int(point[1])}"
    if isinstance(point, bool):
        raise ValueError(f"operating point {point!r} is not an integer k or a grid (m, n)")
    return f"k{int(point)}"


class DeployedClassifier:
    """An exported folder on one runtime and precision, used like a transformers classification pipeline."""

    def __init__(self, folder, runtime="onnxruntime", precision="fp32", threads=None):
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; choose one of {list(RUNTIMES)}")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.runtime, self.precision, self.threads = runtime, precision, threads
        self.points = {point["name"]: point for point in self.manifest["operating_points"]}
        missing = [name for name, point in self.points.items() if precision not in point["files"]]
        if len(missing) == len(self.points):
            raise ValueError(f"{self.folder} has no {precision} export (deploy.json lists "
                             f"{sorted({p for point in self.points.values() for p in point['files']})}); "
                             + ("re-export with --int8 and calibration data" if precision == "int8" else ""))
        self.id2label = self.manifest["id2label"]
        self.task = self.manifest["task"]
        self.input_names = [spec["name"] for spec in self.manifest["inputs"]]
        self._sessions = {}
        self._preprocessor = None

    @property
    def operating_points(self):
        """Names of the exported operating points ('k1', 'k4', 'grid2x2', ...), as in deploy.json."""
        return list(self.points)

    @property
    def default_operating_point(self):
        return self.manifest["default_operating_point"]

    def resolve(self, operating_point=None):
        """The deploy.json entry of an operating point: None (the default), k, 'k4', (m, n), '2x2'."""
        name = self.default_operating_point if operating_point is None else point_key(operating_point)
        if name not in self.points:
            raise ValueError(f"operating point {operating_point!r} is not exported in {self.folder}; "
                             f"exported: {self.operating_points}")
        point = self.points[name]
        if self.precision not in point["files"]:
            raise ValueError(f"{self.folder} has no {self.precision} file for {name}; it has {sorted(point['files'])}")
        return point

    def session(self, operating_point=None):
        point = self.resolve(operating_point)
        if point["name"] not in self._sessions:
            path = self.folder / point["files"][self.precision]
            if not path.is_file():
                raise FileNotFoundError(f"{path} is listed in {self.folder / MANIFEST} but missing; re-export the folder")
            self._sessions[point["name"]] = open_session(path, self.runtime, self.threads)
        return self._sessions[point["name"]]

    # -- inputs ---------------------------------------------------------------------------------

    def _check(self, inputs):
        """Float32 / int64 numpy arrays of the manifest's inputs, with the checks the graph cannot make."""
        if not isinstance(inputs, dict):
            if len(self.input_names) != 1:
                raise TypeError(f"this model takes {self.input_names}; pass a dict of arrays")
            inputs = {self.input_names[0]: inputs}
        unknown = sorted(set(inputs) - set(self.input_names))
        missing = [name for name in self.input_names if name not in inputs]
        if missing or unknown:
            raise ValueError(f"inputs must be exactly {self.input_names}; missing {missing}, unexpected {unknown}")
        arrays = {}
        for spec in self.manifest["inputs"]:
            value = inputs[spec["name"]]
            value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            if value.ndim != len(spec["shape"]) or value.shape[0] < 1 or \
                    any(isinstance(d, int) and d != s for d, s in zip(spec["shape"], value.shape)):
                raise ValueError(f"{spec['name']} must have shape {spec['shape']} (batch >= 1), got {value.shape}")
            arrays[spec["name"]] = np.ascontiguousarray(value, dtype=np.dtype(spec["dtype"]))
        if self.task == "text-classification":
            ids = arrays["input_ids"]
            vocab = self.manifest["vocab_size"]
            if ids.min() < 0 or ids.max() >= vocab:
                raise ValueError(f"token ids must lie in [0, {vocab}), got values in [{ids.min()}, {ids.max()}]")
            if self.manifest.get("pooling") == "cls" and arrays["attention_mask"][:, -1].any():
                raise ValueError("pooling='cls' drops the last position, but some inputs have a real token there; "
                                 "pad every input with at least one [PAD] token")
        return arrays

    @property
    def preprocessor(self):
        """The checkpoint's image processor or tokenizer, saved in the folder by the export."""
        if self._preprocessor is None:
            if self.task == "image-classification":
                from transformers import AutoImageProcessor

                self._preprocessor = AutoImageProcessor.from_pretrained(self.folder)
            else:
                if not (self.folder / "tokenizer_config.json").is_file():
                    raise ValueError(f"{self.folder} has no tokenizer (the checkpoint had none); pass input_ids and "
                                     "attention_mask arrays to logits()")
                from transformers import AutoTokenizer

                self._preprocessor = AutoTokenizer.from_pretrained(self.folder)
        return self._preprocessor

    def preprocess(self, inputs):
        """Model inputs (numpy arrays) for a list of images (PIL, paths, arrays) or strings."""
        if self.task == "image-classification":
            from PIL import Image

            images = [Image.open(item) if isinstance(item, (str, Path)) else item for item in inputs]
            return {self.input_names[0]: self.preprocessor(images=images, return_tensors="np")["pixel_values"]}
        return encode_texts(self.preprocessor, [str(text) for text in inputs], self.input_names)

    # -- inference ------------------------------------------------------------------------------

    def logits(self, inputs, operating_point=None):
        """(B, num_labels) float32 logits of model inputs (an array of pixel_values, or a dict of arrays)."""
        arrays = self._check(inputs)
        return self.session(operating_point)(arrays)

    def __call__(self, inputs, operating_point=None, top_k=5, batch_size=None):
        """Labels and scores per input, as the pipeline returns them; one forward pass per `batch_size`
        inputs (default: all of them in one pass)."""
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        if not items:
            raise ValueError("no inputs given")
        size = len(items) if batch_size is None else int(batch_size)
        if size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        function = "sigmoid" if self.manifest.get("score_function") == "sigmoid" else "softmax"
        results = []
        for start in range(0, len(items), size):
            logits = self.logits(self.preprocess(items[start:start + size]), operating_point)
            results += label_scores(logits, self.id2label, top_k, function)
        return results[0] if single else results


def encode_texts(tokenizer, texts, input_names=("input_ids", "attention_mask")):
    """Token arrays for `texts`, padded as the checkpoint was trained: to the tokenizer's length when it
    names one (over-long inputs are refused, never cut), else to the longest input."""
    limit = tokenizer.model_max_length
    if limit is not None and limit <= 1_000_000:
        encoded = tokenizer(texts)
        too_long = [i for i, ids in enumerate(encoded["input_ids"]) if len(ids) > limit]
        if too_long:
            raise ValueError(f"inputs {too_long[:10]} have more than {limit} tokens, the longest this checkpoint takes")
        encoded = tokenizer.pad(encoded, padding="max_length", max_length=limit, return_tensors="np")
    else:
        encoded = tokenizer(texts, padding=True, return_tensors="np")
    return {name: np.asarray(encoded[name], dtype=np.int64) for name in input_names}


def runtime_versions():
    """Installed versions of the deployment packages (None when absent), for result rows."""
    import importlib.metadata as metadata

    versions = {}
    for package in ("onnx", "onnxruntime", "openvino"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def sha256_of_files(folder, manifest=None):
    """{file: sha256} of the ONNX files deploy.json lists, as on disk; raises if one is missing or was
    changed after the export (then the export's verification no longer describes it)."""
    import hashlib

    folder = Path(folder)
    manifest = read_manifest(folder) if manifest is None else manifest
    found = {}
    for name, record in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is listed in {folder / MANIFEST} but missing; re-export the folder")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != record["sha256"]:
            raise ValueError(f"{path} differs from the file the export verified (sha256 {digest[:12]} != "
                             f"{record['sha256'][:12]}); re-export the folder")
        found[name] = digest
    return found
