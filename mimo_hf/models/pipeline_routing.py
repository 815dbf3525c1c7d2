"""With the package imported, the stock pipelines build the MIMO pipeline classes for MIMO models.

A Hub folder names its pipeline class in config.json's `custom_pipelines`, so
`pipeline(task, model=repo, trust_remote_code=True)` gets `num_superpositions=` / `mimo_grid=` per call
and refuses keywords it does not use. A folder loaded through the installed package (the zoo's
checkpoint folders, a fine-tuning run's output) has no code, so transformers builds its stock class:
the image pipeline then rejects `num_superpositions` with a bare TypeError, and the text pipeline hands
`mimo_grid` to the tokenizer, which ignores it silently. Routing the construction of exactly the
stock classes, for models of our two model types only, gives every route the same keywords and the same
refusals. Any other model, and any subclass of the stock classes, is built unchanged.
"""

from transformers.pipelines import ImageClassificationPipeline, TextClassificationPipeline

from .mimoconv.pipeline_mimoconv import MIMOConvImageClassificationPipeline
from .mimoformer.pipeline_mimoformer import MIMOFormerTextClassificationPipeline

# stock pipeline class -> (model_type it is replaced for, the replacement)
ROUTES = {
    ImageClassificationPipeline: ("mimoconv", MIMOConvImageClassificationPipeline),
    TextClassificationPipeline: ("mimoformer", MIMOFormerTextClassificationPipeline),
}


def _pipeline_new(cls, *args, **kwargs):
    """`__new__` of the stock classes: an instance of the MIMO class for a MIMO model, else of `cls`.

    Python then runs that instance's own `__init__` (the MIMO class's, which calls the stock one)."""
    if cls in ROUTES:
        model_type, mimo_class = ROUTES[cls]
        model = kwargs.get("model", args[0] if args else None)
        if getattr(getattr(model, "config", None), "model_type", None) == model_type:
            return object.__new__(mimo_class)
    return object.__new__(cls)


def route_stock_pipelines():
    """Install the routing (idempotent); called once by `import mimo_hf`."""
    for stock_class in ROUTES:
        if "__new__" not in vars(stock_class):
            stock_class.__new__ = _pipeline_new
