"""Where an exported graph spends its time: OpenVINO's per-layer counters, summed by part and layer type.

OpenVINO fuses the ONNX nodes into its own layers (a convolution with its BatchNorm, activation and
residual sum, the eltwise chains between quantize nodes) and names each after one of the nodes it
fused, so names do not say which layer a convolution was. The compiled model's runtime graph does: its
stem convolutions are the Convolution layers whose data input comes from the graph input through
non-convolution layers only (as `quantization.stem_convolutions` finds them in the ONNX graph). The
counters are grouped into those, the other convolutions, and the rest by layer type (Reorder, Convert,
FakeQuantize, Eltwise, Concatenation, ...). The per-image stem is what superposition does not shrink
with k, which is why it is its own part.

Each repeat is one call on the same seeded batch; a layer's time is its median over the repeats.
The sessions are the runtime's (`runtime.OpenVinoSession`: f32 precision hint, one stream,
`threads` threads), so the totals are the same computation that `DeployedClassifier` times.
"""

import numpy as np

from .runtime import DeployedClassifier, OpenVinoSession

SKIPPED_TYPES = ("Parameter", "Result", "Constant")


def part_of(layer_name, layer_type, stem_names):
    """'stem', 'convolution' (the rest of them) or the layer type, for one OpenVINO layer."""
    if layer_type == "Convolution":
        return "stem" if layer_name in stem_names else "convolution"
    return layer_type


def _layer_type(op):
    info = op.get_rt_info()
    return info["layerType"].astype(str) if "layerType" in info else op.get_type_name()


def stem_layers(compiled):
    """Names of the Convolution layers of a compiled model's runtime graph whose data input (input 0)
    derives from a graph input through non-convolution layers only."""
    runtime = compiled.get_runtime_model()
    derived = {parameter.get_friendly_name() for parameter in runtime.get_parameters()}
    stems = set()
    for op in runtime.get_ordered_ops():  # topological order
        if op.get_input_size() == 0:
            continue
        if op.input(0).get_source_output().get_node().get_friendly_name() not in derived:
            continue
        if _layer_type(op) == "Convolution":
            stems.add(op.get_friendly_name())
        else:
            derived.add(op.get_friendly_name())
    return stems


def layer_times(session, inputs, repeats=5):
    """[{"name", "type", "exec_type", "ms"}] of an `OpenVinoSession(..., profile=True)`: each layer's
    median time over `repeats` calls on `inputs` (after one untimed call), layers that ran only."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    session(inputs)
    samples = {}
    for _ in range(repeats):
        session(inputs)
        for info in session.request.profiling_info:
            if info.node_type in SKIPPED_TYPES or info.status.name != "EXECUTED":
                continue
            key = (info.node_name, info.node_type, info.exec_type)
            samples.setdefault(key, []).append(info.real_time.total_seconds() * 1e3)
    if not samples:
        raise ValueError("the session reported no per-layer counters: open it with OpenVinoSession(path, threads, "
                         "profile=True)")
    return [{"name": name, "type": kind, "exec_type": exec_type, "ms": float(np.median(times))}
            for (name, kind, exec_type), times in samples.items()]


def profile_export(folder, operating_point=None, precision="int8", batch_size=256, threads=None, repeats=5, seed=0):
    """Per-part times of one exported MIMOConv graph on OpenVINO, on a seeded batch of Gaussian pixels.

    Returns {"folder", "operating_point", "precision", "batch_size", "threads", "repeats",
    "total_ms" (sum of the layers' medians), "parts": [{"part", "ms", "share", "layers"}] slowest first,
    "layers": the `layer_times` rows with their part}.
    """
    classifier = DeployedClassifier(folder, "openvino", precision, threads)
    if classifier.manifest["architecture"] != "mimoconv":
        raise ValueError(f"{folder} is a {classifier.manifest['architecture']} export; profiling groups "
                         "MIMOConv graphs (stem, convolutions, the rest)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    point = classifier.resolve(operating_point)
    path = classifier.folder / point["files"][precision]
    spec = classifier.manifest["inputs"][0]
    shape = (batch_size, *spec["shape"][1:])
    pixels = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    session = OpenVinoSession(path, threads, profile=True)
    layers = layer_times(session, {spec["name"]: pixels}, repeats)
    stem_names = stem_layers(session.compiled)
    parts = {}
    for layer in layers:
        layer["part"] = part_of(layer["name"], layer["type"], stem_names)
        entry = parts.setdefault(layer["part"], {"part": layer["part"], "ms": 0.0, "layers": 0})
        entry["ms"] += layer["ms"]
        entry["layers"] += 1
    total = sum(entry["ms"] for entry in parts.values())
    for entry in parts.values():
        entry["share"] = entry["ms"] / total if total > 0 else 0.0
    return {"folder": str(folder), "operating_point": point["name"], "precision": precision, "batch_size": batch_size,
            "threads": threads, "repeats": repeats, "total_ms": total,
            "parts": sorted(parts.values(), key=lambda entry: entry["ms"], reverse=True), "layers": layers}
