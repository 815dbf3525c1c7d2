"""mimo-hf: MIMONets (Menet et al., NeurIPS 2023) as Hugging Face `transformers` models."""

from transformers import AutoConfig, AutoModel, AutoModelForImageClassification, AutoModelForSequenceClassification

from .models.mimoconv.configuration_mimoconv import MIMOConvConfig
from .models.mimoconv.modeling_mimoconv import MIMOConvForImageClassification, MIMOConvModel
from .models.mimoformer.configuration_mimoformer import MIMOFormerConfig
from .models.mimoformer.modeling_mimoformer import (
    MIMOFormerForSequenceClassification,
    MIMOFormerModel,
)

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
