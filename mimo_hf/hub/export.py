"""Hub-ready folders: weights, config with a complete auto_map, model code and preprocessor."""

import json
import os
import shutil
from pathlib import Path

AUTO_MAPS = {
    "mimoconv": {
        "AutoConfig": "configuration_mimoconv.MIMOConvConfig",
        "AutoModel": "modeling_mimoconv.MIMOConvModel",
        "AutoModelForImageClassification": "modeling_mimoconv.MIMOConvForImageClassification",
    },
    "mimoformer": {
        "AutoConfig": "configuration_mimoformer.MIMOFormerConfig",
        "AutoModel": "modeling_mimoformer.MIMOFormerModel",
        "AutoModelForSequenceClassification": "modeling_mimoformer.MIMOFormerForSequenceClassification",
    },
}
MODEL_CODE_FILES = {
    "mimoconv": ("configuration_mimoconv.py", "modeling_mimoconv.py", "binding.py"),
    "mimoformer": ("configuration_mimoformer.py", "modeling_mimoformer.py", "favor.py"),
}


def save_hub_folder(model, folder, preprocessor=None):
    """Write a folder that `from_pretrained(folder, trust_remote_code=True)` and `pipeline` load alone.

    `save_pretrained` records only the saved class in `auto_map`; the full map is set here so that
    `AutoModel` works too. The model's code files are copied by transformers' remote-code machinery.
    `preprocessor` is an image processor or a tokenizer (saved loadable by transformers 4.x and 5.x).
    """
    model_type = model.config.model_type
    os.makedirs(folder, exist_ok=True)
    model.config.auto_map = dict(AUTO_MAPS[model_type])
    model.save_pretrained(folder)
    if preprocessor is not None:
        if hasattr(preprocessor, "convert_tokens_to_ids"):
            from mimo_hf.data.tokenization import save_tokenizer

            save_tokenizer(preprocessor, folder)
        else:
            preprocessor.save_pretrained(folder)
    missing = [name for name in ("config.json", "model.safetensors", *MODEL_CODE_FILES[model_type])
               if not os.path.exists(os.path.join(folder, name))]
    if missing:
        raise RuntimeError(f"Hub folder {folder} is incomplete, missing: {missing}")
    return folder


def sync_model_code(folder, check=False):
    """Make the folder's copies of the model code equal the package's; returns the names that differed.

    A Hub-ready folder carries its own copy of the code (it runs as remote code without mimo_hf);
    after a change to mimo_hf/<architecture>/ this refreshes the copies (`check=True`: only report).
    """
    folder = Path(folder)
    model_type = json.loads((folder / "config.json").read_text())["model_type"]
    package = Path(__file__).parents[1] / "models" / model_type
    stale = [name for name in MODEL_CODE_FILES[model_type]
             if not (folder / name).is_file() or (folder / name).read_bytes() != (package / name).read_bytes()]
    if not check:
        for name in stale:
            shutil.copyfile(package / name, folder / name)
    return stale
