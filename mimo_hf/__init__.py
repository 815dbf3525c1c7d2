"""mimo-hf: MIMONets (Menet et al., NeurIPS 2023) as Hugging Face `transformers` models."""

import os

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerFast,
)

from .models.mimoconv.configuration_mimoconv import MIMOConvConfig
from .models.mimoconv.modeling_mimoconv import MIMOConvForImageClassification, MIMOConvModel
from .models.mimoformer.configuration_mimoformer import MIMOFormerConfig
from .models.mimoformer.modeling_mimoformer import (
    MIMOFormerForSequenceClassification,
    MIMOFormerModel,
)
from .models.pipeline_routing import route_stock_pipelines

__version__ = "0.1.0"
__all__ = [
    "MIMOConvConfig", "MIMOConvModel", "MIMOConvForImageClassification",
    "MIMOFormerConfig", "MIMOFormerModel", "MIMOFormerForSequenceClassification",
]

# Installed-package path: the Auto classes resolve model_type "mimoconv" without remote code.
AutoConfig.register(MIMOConvConfig.model_type, MIMOConvConfig, exist_ok=True)
AutoModel.register(MIMOConvConfig, MIMOConvModel, exist_ok=True)
AutoModelForImageClassification.register(MIMOConvConfig, MIMOConvForImageClassification, exist_ok=True)
# Hub path: save_pretrained copies the model files into the folder and records them in auto_map.
MIMOConvConfig.register_for_auto_class()
MIMOConvModel.register_for_auto_class("AutoModel")
MIMOConvForImageClassification.register_for_auto_class("AutoModelForImageClassification")

AutoConfig.register(MIMOFormerConfig.model_type, MIMOFormerConfig, exist_ok=True)
AutoModel.register(MIMOFormerConfig, MIMOFormerModel, exist_ok=True)
AutoModelForSequenceClassification.register(MIMOFormerConfig, MIMOFormerForSequenceClassification, exist_ok=True)
MIMOFormerConfig.register_for_auto_class()
MIMOFormerModel.register_for_auto_class("AutoModel")
MIMOFormerForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")


class MIMOFormerTokenizerLookup(PreTrainedTokenizerFast):
    """What `AutoTokenizer` finds for a MIMOFormer folder whose tokenizer_config.json names no class.

    A folder with a tokenizer names its class in tokenizer_config.json and never gets here. Without one
    (LRA Image checkpoints read pixel values as token ids; or the tokenizer files were not copied),
    transformers would otherwise advise installing sentencepiece; this says what is missing instead.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        folder = str(pretrained_model_name_or_path)
        if os.path.isfile(os.path.join(folder, "tokenizer.json")):
            return PreTrainedTokenizerFast.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        raise ValueError(
            f"{folder} has no tokenizer (no tokenizer.json or tokenizer_config.json): this checkpoint reads token ids "
            "directly (e.g. an LRA Image model, whose tokens are pixel values) or its tokenizer files were not copied. "
            "Pass tokenizer=... to the pipeline, or call the model with input_ids"
        )


AutoTokenizer.register(MIMOFormerConfig, fast_tokenizer_class=MIMOFormerTokenizerLookup, exist_ok=True)

# Package path: the stock image/text pipelines build the MIMO pipeline classes for MIMO models, so the
# operating point can be chosen per call and unused keywords are refused (see models/pipeline_routing.py).
route_stock_pipelines()
