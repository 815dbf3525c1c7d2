"""Hub-ready folders: weights, config with a complete auto_map, model code and image processor."""

import os

AUTO_MAP = {
    "AutoConfig": "configuration_mimoconv.MIMOConvConfig",
    "AutoModel": "modeling_mimoconv.MIMOConvModel",
    "AutoModelForImageClassification": "modeling_mimoconv.MIMOConvForImageClassification",
}
MODEL_CODE_FILES = ("configuration_mimoconv.py", "modeling_mimoconv.py", "binding.py")


def save_hub_folder(model, folder, image_processor=None):
    """Write a folder that `from_pretrained(folder, trust_remote_code=True)` and `pipeline` load alone.

    `save_pretrained` records only the saved class in `auto_map`; the full map is set here so that
    `AutoModel` works too. The model's code files are copied by transformers' remote-code machinery.
    """
    os.makedirs(folder, exist_ok=True)
    model.config.auto_map = dict(AUTO_MAP)
    model.save_pretrained(folder)
    if image_processor is not None:
        image_processor.save_pretrained(folder)
    missing = [name for name in ("config.json", "model.safetensors", *MODEL_CODE_FILES)
               if not os.path.exists(os.path.join(folder, name))]
    if missing:
        raise RuntimeError(f"Hub folder {folder} is incomplete, missing: {missing}")
    return folder
