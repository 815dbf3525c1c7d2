#!/usr/bin/env python
"""Evaluate a MIMOConv checkpoint at every operating point: accuracy (through `evaluate`) and throughput.

The model is a checkpoint folder (zoo/...), a Hub-ready folder or a Hub id, loaded with
AutoModelForImageClassification as a user would (the pipeline: mimo_hf/evaluation/mimoconv.py).
Without --data-dir or --dataset it runs on the 1,000 CIFAR-10 test images shipped with the package
(offline). Writes <output-dir>/results.json (the single source for model-card numbers)
and <output-dir>/accuracy_throughput.png. Throughput of every operating point and of the baseline is
timed side by side in one run, on this machine.

Examples:
    python scripts/evaluate_mimoconv.py                                   # zoo dynamic model, shipped sample
    python scripts/evaluate_mimoconv.py --model zoo/mimoconv16-2-n4 --data-dir ../shared/data/cifar10
    python scripts/evaluate_mimoconv.py --model org/repo --dataset uoft-cs/cifar10 --split test
    python scripts/evaluate_mimoconv.py --model zoo/mimoconv16-2-n4 --onnx zoo/mimoconv16-2-n4/onnx \\
        --baseline-onnx zoo/wrn16-2-baseline/onnx --data-dir ../shared/data/cifar10 --threads 2 \\
        --output-dir zoo/mimoconv16-2-n4 --results-file deploy_results.json

--onnx DIR (a folder written by scripts/export_onnx.py; needs the deploy extra) also scores the exported
graphs at every operating point on every --runtimes x --precisions, on the same batches as the PyTorch
evaluation, and times them side by side with the eager models (and the baseline's export,
--baseline-onnx) in one interleaved run; the results JSON gets a "deploy" section and no plot is drawn.
"""

from mimo_hf.evaluation.mimoconv import MIMOConvEvaluation, evaluate_mimoconv


def main(argv=None):
    return evaluate_mimoconv(MIMOConvEvaluation.from_flags(argv, description=__doc__))


if __name__ == "__main__":
    main()
