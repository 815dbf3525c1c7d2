#!/usr/bin/env python
"""Evaluate a MIMOFormer checkpoint on its LRA task at several grids: accuracy (through `evaluate`) and throughput.

The model is a checkpoint folder (zoo/...), a Hub-ready folder or a Hub id, loaded with
AutoModelForSequenceClassification as a user would (the pipeline: mimo_hf/evaluation/mimoformer.py).
Throughput of every grid and of the baseline (e.g. the Performer of the same size) is timed side by
side in one run on this machine. Writes <output-dir>/<results-file> (the single
source for model-card numbers) and <output-dir>/accuracy_throughput.png.

Examples:
    python scripts/evaluate_mimoformer.py --model zoo/mimoformer-listops-att --baseline zoo/performer-listops \
        --data-dir data/listops-cpu --output-dir zoo/mimoformer-listops-att --results-file eval_results.json
"""

from mimo_hf.evaluation.mimoformer import MIMOFormerEvaluation, evaluate_mimoformer


def main(argv=None):
    return evaluate_mimoformer(MIMOFormerEvaluation.from_flags(argv, description=__doc__))


if __name__ == "__main__":
    main()
