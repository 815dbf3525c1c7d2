"""The image-classification pipeline of MIMOConv: the stock pipeline plus the operating point per call.

`pipeline("image-classification", model=repo, trust_remote_code=True)` uses this class (config.json's
`custom_pipelines` names it); with the package imported, the stock pipeline builds it for a folder
without code (models/pipeline_routing.py in the package). It adds
`num_superpositions=k` (k | N) to the stock keywords, and refuses every keyword it does not use
instead of ignoring it. The operating point can also be fixed at load, with any pipeline class:
`pipeline(..., model_kwargs={"default_superpositions": k})`.

This file runs as Hub remote code, so it imports only torch, transformers and the standard library.
"""

import inspect

from transformers.pipelines import ImageClassificationPipeline


def split_keywords(pipeline, kwargs, own, accepted_by_super):
    """(own keywords, the rest), or TypeError naming a keyword nobody uses and the accepted ones."""
    unknown = sorted(set(kwargs) - set(own) - set(accepted_by_super))
    if unknown:
        raise TypeError(
            f"{type(pipeline).__name__} does not use the keyword(s) {unknown}; accepted: "
            f"{sorted(set(own) | set(accepted_by_super))}"
        )
    return {k: kwargs[k] for k in own if k in kwargs}, {k: v for k, v in kwargs.items() if k not in own}


def named_parameters(function):
    return [name for name, p in inspect.signature(function).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self"]


class MIMOConvImageClassificationPipeline(ImageClassificationPipeline):
    """ImageClassificationPipeline with `num_superpositions` (the operating point k) per call or at creation."""

    def _sanitize_parameters(self, **kwargs):
        own, rest = split_keywords(self, kwargs, ("num_superpositions",),
                                   named_parameters(super()._sanitize_parameters))
        preprocess, forward, postprocess = super()._sanitize_parameters(**rest)
        if "num_superpositions" in own and own["num_superpositions"] is not None:
            config = self.model.config
            k = own["num_superpositions"]
            if isinstance(k, bool) or not isinstance(k, int) or k < 1 or config.num_superpositions % k:
                raise ValueError(f"num_superpositions={k!r} is not an operating point of this model (capacity "
                                 f"N={config.num_superpositions}); allowed values: {config.operating_points}")
            forward = {**forward, "num_superpositions": k}
        return preprocess, forward, postprocess

    def _forward(self, model_inputs, num_superpositions=None):
        if num_superpositions is None:
            return super()._forward(model_inputs)
        return self.model(**model_inputs, num_superpositions=num_superpositions)
