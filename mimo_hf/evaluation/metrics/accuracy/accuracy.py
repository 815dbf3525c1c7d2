"""Top-1 accuracy as an `evaluate` metric module, in numpy only (no scikit-learn), loadable offline by path."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy: the fraction of predictions equal to their references, (1/n) * sum_i [p_i == r_i]."

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): ground-truth labels.
Returns:
    accuracy (`float`): the fraction of correct predictions, in [0, 1].
Example:
    >>> from mimo_hf.evaluation.metrics import load_metric
    >>> metric = load_metric("accuracy")
    >>> metric.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2])
    {'accuracy': 0.75}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    """Top-1 accuracy over integer class predictions."""

    def _info(self):
        """Describe the metric and its inputs: int64 predictions and references."""
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        """Return {"accuracy": fraction of predictions equal to references}."""
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        if predictions.size == 0:
            raise ValueError("accuracy of an empty set of predictions is undefined")
        return {"accuracy": float(np.mean(predictions == references))}
