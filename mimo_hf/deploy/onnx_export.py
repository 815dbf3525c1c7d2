"""Export a MIMOConv / MIMOFormer checkpoint to ONNX: one graph per operating point, verified against PyTorch.

For every operating point (MIMOConv's k, MIMOFormer's grid m x n) the checkpoint, loaded through its
Auto classes as a Hub user loads it, is wrapped in its traceable form (`graphs.py`) and exported with
`torch.onnx.export(..., dynamo=True)` with a dynamic batch dimension (MIMOFormer: also a dynamic
sequence length). Before anything is written, each graph runs in ONNX Runtime at several batch sizes,
partial groups included, and its logits are compared with the PyTorch model's: fp32 must agree to
`tolerance` (1e-3 by default). With `int8=True` the fp32 graph is also statically quantized
(`quantization.py`, calibrated on real training images preprocessed by the checkpoint's own image
processor) and checked the same way on held-out training images (max |logit diff| and top-1
agreement with PyTorch are reported; `min_int8_agreement` can make the agreement a gate).

Output folder (the Hub layout puts it in the Hub-ready folder's `onnx/` sub-folder):

    deploy.json                 manifest: operating points and their files, inputs, labels, how each
                                file was verified, quantization and calibration settings, versions
    model_k4.onnx               fp32 graph of k = 4 (MIMOFormer: model_grid2x2.onnx)
    model_k4_int8.onnx          QDQ int8 graph of k = 4 (with int8=True)
    preprocessor_config.json    the checkpoint's image processor (text: its tokenizer files)

Files are self-contained (weights inside, no external data) and carry no source paths: the exporter's
per-node metadata (stack traces with local paths) is removed.
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import require
from .graphs import MIMOConvGraph, MIMOFormerGraph
from .quantization import CalibrationSource, QuantSettings, load_split_images, preprocess_images, quantize_int8
from .runtime import MANIFEST, MANIFEST_FORMAT, OnnxRuntimeSession, read_manifest

DEFAULT_TOLERANCE = 1e-3
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: the PyTorch model (eval mode), its preprocessor (or None) and its family."""

    model: torch.nn.Module
    preprocessor: object
    architecture: str  # "mimoconv" or "mimoformer"
    name: str  # as given (a folder relative to the working directory, or a Hub id)
    revision: str | None = None

    @property
    def task(self):
        return "image-classification" if self.architecture == "mimoconv" else "text-classification"


def _display(name):
    """Local folders relative to the working directory (no machine-specific paths in the manifest)."""
    return os.path.relpath(name) if os.path.isdir(name) else str(name)


def load_checkpoint(name_or_path, revision=None):
    """Load a Hub-ready folder or Hub id through the Auto classes, with its preprocessor."""
    from transformers import (
        AutoConfig,
        AutoImageProcessor,
        AutoModelForImageClassification,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    from mimo_hf.hub.references import check_model_reference

    name = str(name_or_path)
    check_model_reference(name)
    kwargs = {"revision": revision, "trust_remote_code": True}
    config = AutoConfig.from_pretrained(name, **kwargs)
    if config.model_type == "mimoconv":
        model = AutoModelForImageClassification.from_pretrained(name, **kwargs)
        preprocessor = AutoImageProcessor.from_pretrained(name, **kwargs)
    elif config.model_type == "mimoformer":
        model = AutoModelForSequenceClassification.from_pretrained(name, **kwargs)
        try:
            preprocessor = AutoTokenizer.from_pretrained(name, **kwargs)
        except (OSError, ValueError):  # LRA Image checkpoints take pixel ids and have no tokenizer
            preprocessor = None
    else:
        raise ValueError(f"{name}: model_type {config.model_type!r} is not exportable here (mimoconv, mimoformer)")
    return Checkpoint(model.eval(), preprocessor, config.model_type, _display(name), revision)


# -- operating points ---------------------------------------------------------------------------------


def point_name(architecture, point):
    return f"k{point}" if architecture == "mimoconv" else f"grid{point[0]}x{point[1]}"


def file_name(name, precision):
    return f"model_{name}.onnx" if precision == "fp32" else f"model_{name}_{precision}.onnx"


def parse_point(architecture, text):
    """A command-line operating point: '4' (MIMOConv k) or '2x2' (MIMOFormer grid)."""
    text = str(text).strip()
    try:
        if architecture == "mimoconv":
            return int(text)
        m, n = text.lower().split("x")
        return int(m), int(n)
    except ValueError:
        form = "an integer k" if architecture == "mimoconv" else "a grid MxN such as 2x2"
        raise ValueError(f"operating point {text!r} is not {form}") from None


def select_points(checkpoint, requested=None):
    """The operating points to export (default: every one of the model), validated."""
    config = checkpoint.model.config
    available = [p if checkpoint.architecture == "mimoconv" else tuple(p) for p in config.operating_points]
    if checkpoint.architecture == "mimoformer" and config.attention_type in ("softmax", "performer"):
        available = [(1, 1)]
    if not requested:
        return available
    points = [parse_point(checkpoint.architecture, p) if isinstance(p, str) else p for p in requested]
    points = [tuple(p) if isinstance(p, (list, tuple)) else int(p) for p in points]
    bad = [p for p in points if p not in available]
    if bad:
        raise ValueError(f"operating points {bad} are not operating points of {checkpoint.name}; allowed: {available}")
    return list(dict.fromkeys(points))


def group_size(point):
    return point[0] * point[1] if isinstance(point, tuple) else point


def default_batch_sizes(group):
    """Batch sizes that exercise single inputs, partial last groups and several full groups."""
    return sorted({1, group - 1, group, group + 1, 2 * group + 1, 3 * group} - {0})


def point_kwargs(architecture, point):
    return {"num_superpositions": point} if architecture == "mimoconv" else {"mimo_grid": point}


# -- inputs -------------------------------------------------------------------------------------------


def input_specs(checkpoint):
    """[(name, dtype, shape)] of the graph inputs; None marks a dynamic axis."""
    config = checkpoint.model.config
    if checkpoint.architecture == "mimoconv":
        return [("pixel_values", "float32", ["batch", config.num_channels, config.image_size, config.image_size])]
    return [("input_ids", "int64", ["batch", "sequence"]), ("attention_mask", "int64", ["batch", "sequence"])]


def sequence_length(checkpoint):
    tokenizer = checkpoint.preprocessor
    limit = getattr(tokenizer, "model_max_length", None)
    length = checkpoint.model.config.max_position_embeddings
    return min(length, limit) if limit is not None and limit <= 1_000_000 else length


def synthetic_inputs(checkpoint, batch_size, generator, length=None):
    """Seeded inputs of the model's shape: Gaussian pixels (the scale of normalised images), or random
    token ids with a random amount of right padding per sequence (at least one real token)."""
    config = checkpoint.model.config
    if checkpoint.architecture == "mimoconv":
        shape = (batch_size, config.num_channels, config.image_size, config.image_size)
        return {"pixel_values": torch.randn(shape, generator=generator)}
    length = sequence_length(checkpoint) if length is None else length
    ids = torch.randint(1, config.vocab_size, (batch_size, length), generator=generator)
    # pooling="cls" needs a free last position; every sequence keeps at least one real token.
    longest = length - 1 if config.pooling == "cls" else length
    real = torch.randint(1, longest + 1, (batch_size,), generator=generator)
    mask = (torch.arange(length)[None, :] < real[:, None]).long()
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    return {"input_ids": torch.where(mask.bool(), ids, torch.full_like(ids, pad)), "attention_mask": mask}


def _numpy_inputs(inputs):
    return {name: value.numpy() for name, value in inputs.items()}


@torch.no_grad()
def reference_logits(checkpoint, inputs, point):
    return checkpoint.model(**inputs, **point_kwargs(checkpoint.architecture, point)).logits.numpy()


def compare(session, checkpoint, point, batches, description):
    """Run every batch through the ONNX session and PyTorch; max |logit diff| and top-1 agreement."""
    worst, agree, total = 0.0, 0, 0
    for inputs in batches:
        expected = reference_logits(checkpoint, inputs, point)
        got = session(_numpy_inputs(inputs))
        if got.shape != expected.shape:
            raise RuntimeError(f"the ONNX graph returned logits of shape {got.shape}, PyTorch {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
        agree += int((got.argmax(-1) == expected.argmax(-1)).sum())
        total += expected.shape[0]
    sizes = [next(iter(inputs.values())).shape[0] for inputs in batches]
    return {"inputs": description, "batch_sizes": sizes, "max_abs_logit_diff": worst, "top1_agreement": agree / total}


# -- export -------------------------------------------------------------------------------------------


def strip_metadata(proto):
    """Remove the exporter's per-node metadata and doc strings (stack traces holding local paths)."""

    def clean(graph):
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            for attribute in node.attribute:
                if attribute.g.node:
                    clean(attribute.g)
                for sub in attribute.graphs:
                    clean(sub)

    clean(proto.graph)
    for function in proto.functions:
        for node in function.node:
            del node.metadata_props[:]
            node.doc_string = ""
    del proto.metadata_props[:]
    proto.doc_string = ""
    proto.graph.doc_string = ""
    return proto


def trace(checkpoint, point, example):
    """The ONNX ModelProto of `checkpoint` at `point`, batch (and sequence) dimension dynamic."""
    require("onnxscript", "ONNX export (torch.onnx dynamo exporter)")
    onnx = require("onnx", "ONNX export")
    from torch.export import Dim

    # MIMOConv: min=1 lets torch.export prove that every batch has at least one group. MIMOFormer:
    # torch.export cannot prove the FAVOR+S batched products free of size-1 broadcasting for fewer
    # than two groups, so it traces for batches of 3 and more (declaring min=1 only makes torch.onnx
    # retry twice before it narrows the range itself). The ONNX graph holds no such check and the
    # same operations; `export_checkpoint` verifies it at batch sizes 1 and 2 as well.
    if checkpoint.architecture == "mimoconv":
        graph = MIMOConvGraph(checkpoint.model, point)
        dynamic = {"pixel_values": {0: Dim("batch", min=1)}}
    else:
        graph = MIMOFormerGraph(checkpoint.model, point)
        length = Dim("sequence", min=1, max=checkpoint.model.config.max_position_embeddings)
        batch = Dim("batch", min=3)
        dynamic = {"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}
    names = list(example)
    program = torch.onnx.export(graph, tuple(example[name] for name in names), input_names=names,
                                output_names=["logits"], dynamic_shapes=dynamic, dynamo=True, verbose=False)
    proto = strip_metadata(program.model_proto)
    # A dynamic axis must stay dynamic: torch.export silently specialises it when the model's control
    # flow depends on the batch size (what graphs.py exists to avoid).
    for value in proto.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims[0].dim_value:
            raise RuntimeError(f"the exported graph fixed the batch size of {value.name} to {dims[0].dim_value}")
    onnx.checker.check_model(proto)
    return proto


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _versions():
    import importlib.metadata as metadata

    versions = {"torch": torch.__version__}
    for package in ("onnx", "onnxscript", "onnxruntime", "transformers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _planned_files(checkpoint, points, int8):
    names = [file_name(point_name(checkpoint.architecture, p), "fp32") for p in points]
    if int8:
        names += [file_name(point_name(checkpoint.architecture, p), "int8") for p in points]
    return names


def _prepare_output(output, planned, overwrite):
    """Create the output folder; refuse to replace files unless `overwrite` (then remove the previous
    export's files, those its deploy.json lists, so the folder holds exactly one export)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"--output {str(output)!r} exists and is not a folder")
    output.mkdir(parents=True, exist_ok=True)
    previous = []
    if (output / MANIFEST).is_file():
        previous = [MANIFEST, *read_manifest(output).get("files", {})]
    clashes = sorted({name for name in [*planned, MANIFEST, *previous] if (output / name).exists()})
    if clashes and not overwrite:
        raise FileExistsError(f"{output} already holds {clashes}; pass --overwrite to replace that export, "
                              "or choose another --output")
    for name in previous:
        if (output / name).is_file():
            (output / name).unlink()
    return output


def calibration_inputs(checkpoint, source, verify_count):
    """(calibration pixel_values, held-out pixel_values, description): preprocessed real images."""
    if checkpoint.preprocessor is None:
        raise ValueError(f"{checkpoint.name} has no image processor to preprocess calibration images with")
    images, rows = load_split_images(source, source.count + verify_count)
    pixels = preprocess_images(checkpoint.preprocessor, images)
    return pixels[: source.count], pixels[source.count:], rows


def export_checkpoint(model, output, operating_points=None, int8=False, calibration=None,
                      quant_settings=QuantSettings(), batch_sizes=None, tolerance=DEFAULT_TOLERANCE,
                      verify_images=64, min_int8_agreement=None, overwrite=False, threads=None, revision=None,
                      command=None, seed=0, log=print):
    """Export `model` (folder, Hub id or a loaded `Checkpoint`) to `output`; returns the manifest dict.

    calibration: a `CalibrationSource` (required with int8=True). batch_sizes: the verification batch
    sizes (default: `default_batch_sizes` of each operating point). Raises `ExportVerificationError`
    (and writes nothing) when an fp32 graph differs from PyTorch by more than `tolerance`, or an int8
    graph agrees with PyTorch's top-1 on fewer than `min_int8_agreement` of the held-out images.
    """
    from tqdm.auto import tqdm

    require("onnx", "ONNX export")
    require("onnxruntime", "verifying ONNX exports")
    checkpoint = model if isinstance(model, Checkpoint) else load_checkpoint(model, revision)
    if int8 and checkpoint.architecture != "mimoconv":
        raise ValueError("int8 export is implemented for MIMOConv image classifiers; MIMOFormer exports are fp32")
    if int8 and calibration is None:
        raise ValueError("int8 quantization needs calibration images: pass --calibration-data-dir DIR (parquet "
                         "shards in the Hub layout) or --calibration-dataset ID")
    config = checkpoint.model.config
    if getattr(config, "problem_type", None) == "regression":
        raise ValueError("regression heads are not exportable here (the runtime returns label scores)")
    points = select_points(checkpoint, operating_points)
    planned = _planned_files(checkpoint, points, int8)
    if checkpoint.architecture == "mimoconv" and checkpoint.preprocessor is not None:
        planned.append("preprocessor_config.json")  # saved beside the graphs: never over a user's file
    output = _prepare_output(output, planned, overwrite)

    real, held_out, calibration_pixels = None, None, None
    if calibration is not None and checkpoint.architecture == "mimoconv":
        calibration_pixels, held_out, _ = calibration_inputs(checkpoint, calibration, verify_images)
        real = f"{len(held_out)} training images ({calibration.split} split) not used for calibration"

    generator = torch.Generator().manual_seed(seed)
    points_entries, verification, written = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="mimo-hf-onnx-") as tmp:
        tmp = Path(tmp)
        for point in tqdm(points, desc="export", disable=len(points) < 2):
            name = point_name(checkpoint.architecture, point)
            group = group_size(point)
            sizes = batch_sizes or default_batch_sizes(group)
            example = synthetic_inputs(checkpoint, 2 * group + 1, generator)  # a partial last group
            fp32_path = tmp / file_name(name, "fp32")
            fp32_path.write_bytes(trace(checkpoint, point, example).SerializeToString())

            noise = [synthetic_inputs(checkpoint, size, generator) for size in sizes]
            if checkpoint.architecture == "mimoformer" and sequence_length(checkpoint) > 2:
                # The sequence axis is dynamic too: one batch of half-length inputs.
                noise.append(synthetic_inputs(checkpoint, group + 1, generator, sequence_length(checkpoint) // 2))
            synthetic = "seeded Gaussian pixels" if checkpoint.architecture == "mimoconv" else \
                "seeded random token ids with random padding"
            batches_real = []
            if held_out is not None:
                whole = torch.from_numpy(held_out)
                batches_real = [{"pixel_values": whole}, {"pixel_values": whole[:-1]}]
            files = {"fp32": fp32_path.name}
            session = OnnxRuntimeSession(fp32_path, threads)
            checks = [compare(session, checkpoint, point, noise, synthetic)]
            if batches_real:
                checks.append(compare(session, checkpoint, point, batches_real, real))
            worst = max(check["max_abs_logit_diff"] for check in checks)
            log(f"{fp32_path.name}: max |logit diff| vs PyTorch {worst:.2e} over batch sizes "
                f"{sorted({s for c in checks for s in c['batch_sizes']})} (tolerance {tolerance:.0e})")
            if not worst <= tolerance:
                raise ExportVerificationError(f"{fp32_path.name}: ONNX Runtime logits differ from PyTorch by {worst:.3e} "
                                              f"> {tolerance:.0e}; nothing was written")
            verification[fp32_path.name] = {"precision": "fp32", "tolerance": tolerance, "checks": checks}

            if int8:
                int8_path = tmp / file_name(name, "int8")
                calibration_batch = max(group, 64 // group * group)
                settings = quantize_int8(fp32_path, int8_path, "pixel_values", calibration_pixels, quant_settings,
                                         batch_size=calibration_batch, work_dir=tmp)
                session = OnnxRuntimeSession(int8_path, threads)
                checks = [compare(session, checkpoint, point, noise, synthetic),
                          compare(session, checkpoint, point, batches_real, real)]
                agreement = checks[1]["top1_agreement"]
                log(f"{int8_path.name}: max |logit diff| vs PyTorch fp32 {checks[1]['max_abs_logit_diff']:.3f}, top-1 "
                    f"agreement {100 * agreement:.1f}% on {real}; runs at batch sizes {checks[0]['batch_sizes']}")
                if min_int8_agreement is not None and agreement < min_int8_agreement:
                    raise ExportVerificationError(f"{int8_path.name}: top-1 agreement with PyTorch {agreement:.3f} < "
                                                  f"{min_int8_agreement}; nothing was written")
                verification[int8_path.name] = {"precision": "int8", "min_top1_agreement": min_int8_agreement,
                                                "checks": checks}
                files["int8"] = int8_path.name
            points_entries.append({"name": name, "value": list(point) if isinstance(point, tuple) else point,
                                   "inputs_per_pass": group, "files": files})

        # Every graph is verified: only now does anything go into the output folder.
        for entry in points_entries:
            for filename in entry["files"].values():
                shutil.move(str(tmp / filename), output / filename)
                written[filename] = {"sha256": sha256(output / filename), "bytes": (output / filename).stat().st_size}
    if checkpoint.preprocessor is not None:
        checkpoint.preprocessor.save_pretrained(output)

    manifest = _manifest(checkpoint, points, points_entries, verification, written,
                         quant_settings.as_dict() if int8 else None, calibration if int8 else None, command)
    (output / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"wrote {len(written)} ONNX file(s) and {MANIFEST} to {output}")
    return manifest


def _manifest(checkpoint, points, entries, verification, files, quantization, calibration, command):
    config = checkpoint.model.config
    problem = getattr(config, "problem_type", None)
    if checkpoint.architecture == "mimoconv":
        default = getattr(config, "default_superpositions", None) or config.num_superpositions
    else:
        default = (config.mimo_m, config.mimo_n)
    default_name = point_name(checkpoint.architecture, default)
    names = [entry["name"] for entry in entries]
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": checkpoint.architecture,
        "task": checkpoint.task,
        "model": checkpoint.name,
        "revision": checkpoint.revision,
        "inputs": [{"name": n, "dtype": d, "shape": s} for n, d, s in input_specs(checkpoint)],
        "output": "logits",
        "id2label": {str(i): config.id2label[i] for i in range(config.num_labels)},
        "score_function": "sigmoid" if problem == "multi_label_classification" or config.num_labels == 1 else "softmax",
        "operating_points": entries,
        "default_operating_point": default_name if default_name in names else names[-1],
        "group_layout": "consecutive runs of k (or m*n) inputs share a bundle; a partial last group of r inputs "
                        "is filled by cycling its members and their outputs are averaged (as in PyTorch)",
        "quantization": quantization,
        "calibration": None if calibration is None else {**calibration.describe(), "preprocessing":
                                                         "the checkpoint's image processor"},
        "verification": verification,
        "files": files,
        "versions": _versions(),
        "command": command,
    }
    if checkpoint.architecture == "mimoformer":
        manifest.update(vocab_size=config.vocab_size, pooling=config.pooling, max_length=sequence_length(checkpoint))
    return manifest


class ExportVerificationError(RuntimeError):
    """An exported graph does not compute what the PyTorch model computes; nothing was written."""
