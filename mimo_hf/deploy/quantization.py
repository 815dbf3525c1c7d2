"""Static int8 quantization (QDQ) of exported graphs, calibrated on real training images.

The calibration images are a seeded sample of a split's rows (the training split by default, never
the test split), decoded and preprocessed by the checkpoint's own image processor, i.e. exactly the
inputs a pipeline would feed the model. Quantization itself is `onnxruntime.quantization`:
`quant_pre_process` (shape inference and graph optimisation, e.g. BatchNorm folded into the
convolutions), then `quantize_static` in the QDQ format, which both ONNX Runtime and OpenVINO execute
as int8 kernels.
"""

import io
import random
from dataclasses import asdict, dataclass

import numpy as np

from . import require


@dataclass(frozen=True)
class QuantSettings:
    """What `quantize_static` is called with (recorded in deploy.json).

    Defaults: unsigned 8-bit activations, signed 7-bit weights (`reduce_range`) with one scale per
    output channel, min/max calibration, the QDQ format, the stem convolution kept in fp32, and the
    scales of the pre-activation BatchNorm layers (which no convolution precedes, so they stay in the
    graph) quantized per channel too.

    The defaults were chosen on 1,000 of the 5,000 training images the zoo holds out for validation
    (never the test split), zoo/mimoconv16-2-n4 at k = 4, fp32 accuracy 40.1%, on this project's AMD
    EPYC (AVX2, no VNNI): full 8-bit weights fall to 32.5% in ONNX Runtime, because without VNNI its
    u8 x s8 kernels add pairs of products in saturating 16-bit arithmetic, and 7-bit weights
    (onnxruntime's documented remedy) give 40.2%. OpenVINO 2026.4 loses accuracy when the stem
    convolution is quantized: 34.1% instead of 40.3% there with the earlier group-major graph, and,
    re-checked with the current graph (`graphs.MIMOConvGraph`) on 2,000 held-out images, 87.85%
    instead of 88.40% for the 30-epoch WRN-16-2 baseline (fp32 88.30%). Keeping that one convolution
    (3 input channels, a few percent of the work) in fp32 costs 1-4% of int8 throughput. The plain
    Wide ResNet behaves alike otherwise (68.6% fp32 for the 2-epoch one; 63.0% with 8-bit weights in
    ONNX Runtime, 68.2% with 7-bit).

    BatchNorm: with `per_channel`, onnxruntime looks for the channel on axis 1, which a BatchNorm's 1-D
    scale does not have; it warns ("Axis 1 is out-of-range") and gives the whole scale vector one int8
    scale. `batchnorm_per_channel` names axis 0 for BatchNormalization instead (onnxruntime's
    `QDQOpTypePerChannelSupportToAxis`). On 1,024 training images not used for calibration
    (zoo/mimoconv16-2-n4-dynamic, k = 4, `scripts/export_onnx.py --verify-images 1024`, with and without
    `--per-tensor-batchnorm`) top-1 agreement with PyTorch in ONNX Runtime rose from 96.4% to 97.4%.
    """

    activation_type: str = "QUInt8"
    weight_type: str = "QInt8"
    per_channel: bool = True
    reduce_range: bool = True
    calibrate_method: str = "MinMax"
    keep_stem_fp32: bool = True
    batchnorm_per_channel: bool = True

    def as_dict(self):
        return {"quant_format": "QDQ", **asdict(self)}


@dataclass(frozen=True)
class CalibrationSource:
    """Where the calibration images come from: a Hub dataset id (it also names the columns of a local
    parquet copy) and an optional local folder of `{split}-*.parquet` shards."""

    dataset: str = "uoft-cs/cifar10"
    data_dir: str | None = None
    split: str = "train"
    count: int = 256
    seed: int = 0

    def describe(self):
        return {"dataset": self.dataset, "data_dir": self.data_dir, "split": self.split, "count": self.count,
                "seed": self.seed}


def sample_rows(num_rows, count, seed):
    """`count` distinct row ids of [0, num_rows), a seeded sample in draw order (so that its first part
    and its rest are two disjoint random samples)."""
    if not 0 < count <= num_rows:
        raise ValueError(f"cannot sample {count} images from a split of {num_rows} rows")
    return random.Random(seed).sample(range(num_rows), count)


def load_split_images(source, count=None):
    """PIL images of `count` (default source.count) seeded rows of the source split and their row ids,
    in draw order (see `sample_rows`)."""
    from PIL import Image

    from mimo_hf.data.images import DATASETS, dataset_info, parquet_shards

    info = dataset_info(source.dataset)
    count = source.count if count is None else count
    if source.data_dir is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        shards = parquet_shards(source.data_dir, source.split)
        tables = [pq.read_table(path, columns=[info.image_column]) for path in shards]
        column = pa.concat_tables(tables).column(info.image_column)
        rows = sample_rows(len(column), count, source.seed)
        cells = column.take(rows).to_pylist()
        images = [Image.open(io.BytesIO(cell["bytes"]) if cell.get("bytes") is not None else cell["path"])
                  for cell in cells]
    else:
        from datasets import load_dataset

        hub_id = next(key for key, value in DATASETS.items() if value is info)
        ds = load_dataset(hub_id, split=source.split)
        rows = sample_rows(len(ds), count, source.seed)
        images = ds.select(rows)[info.image_column]
    return [image.convert(info.mode) for image in images], rows


def preprocess_images(processor, images):
    """(n, C, H, W) float32 numpy array: `images` through the checkpoint's image processor."""
    return np.ascontiguousarray(processor(images=images, return_tensors="np")["pixel_values"], dtype=np.float32)


class _BatchReader:
    """onnxruntime CalibrationDataReader over a preprocessed array, in batches of whole groups."""

    def __init__(self, input_name, pixel_values, batch_size):
        self.batches = [{input_name: pixel_values[i:i + batch_size]} for i in range(0, len(pixel_values), batch_size)]
        self.position = 0

    def get_next(self):
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return self.batches[self.position - 1]

    def rewind(self):
        self.position = 0


def quantize_int8(fp32_path, int8_path, input_name, pixel_values, settings=QuantSettings(), batch_size=64, work_dir=None):
    """Write the static int8 (QDQ) version of the fp32 graph at `fp32_path` to `int8_path`.

    `pixel_values` (n, C, H, W) are the preprocessed calibration images; they are fed in batches of
    `batch_size` (use a multiple of the operating point, so calibration sees full bundles as in use).
    """
    import tempfile
    from pathlib import Path

    quantization = require("onnxruntime.quantization", "int8 quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(pixel_values) == 0:
        raise ValueError("no calibration images: int8 quantization needs real images to calibrate on")
    reader_class = type("CalibrationReader", (_BatchReader, quantization.CalibrationDataReader), {})
    reader = reader_class(input_name, pixel_values, batch_size)
    with tempfile.TemporaryDirectory(prefix="mimo-hf-quant-", dir=work_dir) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        exclude = stem_convolutions(prepared, input_name) if settings.keep_stem_fp32 else []
        quantization.quantize_static(
            str(prepared), str(int8_path), reader,
            quant_format=quantization.QuantFormat.QDQ,
            activation_type=getattr(quantization.QuantType, settings.activation_type),
            weight_type=getattr(quantization.QuantType, settings.weight_type),
            per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            calibrate_method=getattr(quantization.CalibrationMethod, settings.calibrate_method),
            nodes_to_exclude=exclude,
            extra_options=({"QDQOpTypePerChannelSupportToAxis": {"BatchNormalization": 0}}
                           if settings.per_channel and settings.batchnorm_per_channel else {}),
        )
    return settings.as_dict()


def stem_convolutions(model_path, input_name):
    """Names of the Conv nodes whose data input comes from the graph input through non-convolution
    nodes only (the stem; the data input is a node's first input, so shape arithmetic does not count)."""
    onnx = require("onnx", "int8 quantization")

    graph = onnx.load(str(model_path)).graph
    derived, found = {input_name}, []
    for node in graph.node:  # ONNX graphs are stored in topological order
        if not node.input or node.input[0] not in derived:
            continue
        if node.op_type == "Conv":
            found.append(node.name)
        else:
            derived.update(node.output)
    if not found:
        raise ValueError(f"no convolution reads the graph input {input_name!r}; cannot keep the stem in fp32")
    return found
