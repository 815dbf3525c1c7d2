#!/usr/bin/env python
"""Inference throughput of MIMOConv / MIMOFormer at each superposition setting vs the plain network.

MIMOConv (default): every model is the same code (mimo_hf.MIMOConvForImageClassification) with the
same depth and width; the baseline is N = 1, binding "none", initial width 1, ReLU.
MIMOFormer (--architecture mimoformer): the Performer baseline, MIMOFormer "att." and "att.+MLP" of
the same size (layers, width, heads, MLP, random features), timed at each sequence length.
Models are randomly initialised (throughput does not depend on the weights) and timed in interleaved
rounds on the same input batch; ratios are each model's inputs/s over the baseline's from the same run.

Examples (the README's tables):
    python scripts/benchmark_throughput.py --depth 16 --width 4 --batch-size 256 --output bench.json
    python scripts/benchmark_throughput.py --architecture mimoformer --sequence-lengths 1024 4096 --output bench-former.json
    python scripts/benchmark_throughput.py --runtime torch onnxruntime openvino --int8 --threads 2 --output bench-deploy.json

--runtime (MIMOConv): every model is also exported to ONNX (mimo_hf.deploy, needs the deploy extra) and
timed on ONNX Runtime and/or OpenVINO, with --int8 also as a static int8 (QDQ) graph, all side by side
with the eager PyTorch models in the same interleaved rounds. The int8 graphs of this benchmark are
calibrated on random inputs (weights are random too): they time the kernels, their accuracy means
nothing (scripts/export_onnx.py makes deployable int8 models from trained checkpoints).
"""

from mimo_hf import settings
from mimo_hf.evaluation.benchmark import BenchmarkSettings, benchmark


def main(argv=None):
    parser = settings.build_parser(BenchmarkSettings, __doc__)
    return benchmark(settings.from_namespace(BenchmarkSettings, parser.parse_args(argv)))


if __name__ == "__main__":
    main()
