#!/usr/bin/env python
"""Evaluate a MIMOFormer checkpoint on its LRA task at several grids: accuracy (through `evaluate`) and throughput.

The model is a checkpoint folder (zoo/...), a Hub-ready folder or a Hub id, loaded with
AutoModelForSequenceClassification as a user would (the pipeline: mimo_hf/evaluation/mimoformer.py).
Throughput of every grid and of the baseline (e.g. the Performer of the same size) is timed side by
side in one run on this machine. Writes <output-dir>/<results-file> (the single
source for model-card numbers) and <output-dir>/accuracy_throughput.png.

Examples (ListOps-CPU: generate its data once, seconds; then a zoo checkpoint against its Performer baseline):
    python scripts/generate_listops.py --preset cpu --output-dir data/listops-cpu
    python scripts/evaluate_mimoformer.py --model zoo/mimoformer-att-listops-cpu --baseline zoo/performer-listops-cpu \\
        --data-dir data/listops-cpu --output-dir runs/eval-listops --results-file eval_results.json
"""

from mimo_hf.evaluation.mimoformer import MIMOFormerEvaluation, evaluate_mimoformer


def main(argv=None):
    return evaluate_mimoformer(MIMOFormerEvaluation.from_flags(argv, description=__doc__))


if __name__ == "__main__":
    main()
