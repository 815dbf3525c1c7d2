"""Deployment of the zoo: ONNX export (fp32 and static int8), ONNX Runtime / OpenVINO runtimes, benchmarks.

- `onnx_export.export_checkpoint`: a Hub-ready folder or Hub id -> `model_<point>.onnx` per operating
  point (dynamic batch, partial groups exactly as in PyTorch), optionally `model_<point>_int8.onnx`
  (QDQ, calibrated on real training images through the checkpoint's own preprocessor), each verified
  against the PyTorch model before it is written, plus `deploy.json` (the folder's manifest).
- `runtime.DeployedClassifier`: runs such a folder with ONNX Runtime or OpenVINO and returns what the
  transformers pipeline returns (sorted label/score lists per input).
- `benchmark`: side-by-side timing of PyTorch and runtime entries.
- `profiling`: where an exported graph spends its time on OpenVINO (per-layer counters by part).

Everything here needs the optional extra: `pip install -e ".[deploy]"` (onnx, onnxscript,
onnxruntime, openvino). Importing this package does not import them; using a function that needs one
raises `MissingDependencyError` with that install hint.
"""

import importlib

INSTALL_HINT = 'pip install -e ".[deploy]"  (from a mimo-hf checkout; or: pip install onnx onnxscript onnxruntime openvino)'
# Module name -> PyPI name, for the error message.
PACKAGES = {"onnx": "onnx", "onnxscript": "onnxscript", "onnxruntime": "onnxruntime", "openvino": "openvino"}


class MissingDependencyError(ImportError):
    """An optional deployment package is not installed; the message says how to install it."""


def require(module, purpose):
    """Import `module` (e.g. "onnxruntime") or raise MissingDependencyError naming `purpose` and the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = PACKAGES.get(module.split(".")[0], module.split(".")[0])
        raise MissingDependencyError(
            f"{purpose} needs the Python package {package!r}, which is not installed; install the deploy extra: "
            f"{INSTALL_HINT}"
        ) from error
