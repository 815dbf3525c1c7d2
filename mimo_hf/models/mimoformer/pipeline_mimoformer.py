"""The text-classification pipeline of MIMOFormer: the stock pipeline plus the grid per call, strict keywords.

`pipeline("text-classification", model=repo, trust_remote_code=True)` uses this class (config.json's
`custom_pipelines` names it); with the package imported, the stock pipeline builds it for a folder
without code (models/pipeline_routing.py in the package). It adds
`mimo_grid=(m, n)` to the stock keywords; a keyword that is neither a pipeline keyword nor a named
parameter of the tokenizer is an error (the stock pipeline hands unknown keywords to the tokenizer,
which ignores them). The grid can also be fixed at load, with any pipeline class:
`pipeline(..., model_kwargs={"default_grid": [m, n]})`.

A folder without a tokenizer (LRA Image models read pixel values as token ids) gets an error that
says so, instead of transformers' advice to install sentencepiece.

This file runs as Hub remote code, so it imports only torch, transformers, the standard library and
its sibling files.
"""

import inspect
import os

from transformers.pipelines import TextClassificationPipeline

from .configuration_mimoformer import check_grid

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# Tokenizer parameters the pipeline sets itself (the texts, the tensor type): not caller keywords.
PIPELINE_OWNED = {"text", "text_target", "text_pair_target", "return_tensors", "tokenizer_kwargs"}


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


class MIMOFormerTextClassificationPipeline(TextClassificationPipeline):
    """TextClassificationPipeline with `mimo_grid` per call or at creation, and no silently ignored keywords."""

    # None: try to load the folder's tokenizer, but let __init__ report a missing one clearly.
    _load_tokenizer = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.tokenizer is None:
            source = getattr(self.model, "name_or_path", "") or "the model"
            missing = ""
            if os.path.isdir(source):
                absent = [name for name in TOKENIZER_FILES if not os.path.isfile(os.path.join(source, name))]
                missing = f" ({', '.join(absent)} missing)" if absent else ""
            raise ValueError(
                f"{source} has no tokenizer{missing}: this checkpoint reads token ids directly (e.g. an LRA Image "
                "model, whose tokens are pixel values) or its tokenizer files were not copied. Pass "
                "tokenizer=... to the pipeline, or call the model with input_ids"
            )

    def _sanitize_parameters(self, **kwargs):
        tokenizer_keywords = [] if self.tokenizer is None else [
            name for name in named_parameters(type(self.tokenizer).__call__) if name not in PIPELINE_OWNED]
        own, rest = split_keywords(self, kwargs, ("mimo_grid",),
                                   named_parameters(super()._sanitize_parameters) + tokenizer_keywords)
        preprocess, forward, postprocess = super()._sanitize_parameters(**rest)
        if own.get("mimo_grid") is not None:
            config = self.model.config
            grid = own["mimo_grid"]
            if config.attention_type in ("softmax", "performer"):
                if tuple(grid) != (1, 1):
                    raise ValueError(f"attention_type={config.attention_type!r} runs one input at a time; "
                                     "mimo_grid must be None or (1, 1)")
            else:
                check_grid(config, grid)
            forward = {**forward, "mimo_grid": tuple(grid)}
        return preprocess, forward, postprocess

    def _forward(self, model_inputs, mimo_grid=None):
        if mimo_grid is None:
            return super()._forward(model_inputs)
        return self.model(**model_inputs, mimo_grid=mimo_grid)
