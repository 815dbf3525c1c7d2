"""Child process of test_hub_loading.py: a new user's Python.

By default mimo_hf is not installed (a Hub user, loading Hub folders through their remote code);
with "package": true in its arguments it imports mimo_hf first (a user of a clone, loading checkpoint
folders with the package's registered classes). For every folder it is given, it loads the folder
through the Auto classes, the pipeline and the preprocessor (by local path, and by Hub id from a
pre-filled offline cache), runs every operating point, and saves what it saw for the parent to
check. A failure in one step is recorded (with its traceback) and the other steps and folders go
on, so one broken folder reports precisely.

Usage: python hub_loading_child.py ARGS_JSON   (see test_hub_loading.py for the fields)
"""

import json
import sys
import traceback
from pathlib import Path

from hub_testing import BlockMimoHf, operating_point_kwargs  # the script's folder is sys.path[0]

ARGS = json.loads(sys.argv[1])
if ARGS.get("package"):
    import mimo_hf  # noqa: F401  (registers model_type mimoconv / mimoformer with the Auto classes)
else:
    sys.meta_path.insert(0, BlockMimoHf())  # before anything else is imported

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, pipeline  # noqa: E402

TASKS = {
    "AutoModelForImageClassification": "image-classification",
    "AutoModelForSequenceClassification": "text-classification",
}
NUM_INPUTS = 5  # not a multiple of 2 or 4: a partial bundle at every operating point above 1


def image_inputs(processor):
    rng = np.random.default_rng(0)
    sizes = [32] * (NUM_INPUTS - 1) + [40]  # one image the processor has to resize
    images = [Image.fromarray(rng.integers(0, 256, (s, s, 3), dtype=np.uint8)) for s in sizes]
    return images, dict(processor(images, return_tensors="pt"))


def text_inputs(tokenizer):
    """Strings of real vocabulary words (any WordLevel vocabulary), of different lengths."""
    special = set(tokenizer.all_special_tokens)
    words = [w for w, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]) if w not in special][:12]
    texts = [" ".join(words[i : i + 2 + i]) for i in range(NUM_INPUTS)]
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    return texts, {name: encoded[name] for name in tokenizer.model_input_names if name in encoded}


class Recorder:
    def __init__(self):
        self.result = {"errors": {}}

    def step(self, name, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception:
            self.result["errors"][name] = traceback.format_exc()
            return None


def load_folder(entry):
    rec = Recorder()
    r = rec.result
    folder, repo_id, commit = entry["folder"], entry["repo_id"], entry["commit"]
    raw = json.loads((Path(folder) / "config.json").read_text())
    # A checkpoint folder has no auto_map: the Auto classes come from its architecture (and AutoModel).
    auto_map = raw.get("auto_map") or {"AutoConfig": None, "AutoModel": None, **{
        auto: None for auto in TASKS for arch in raw.get("architectures") or [] if arch.endswith(auto[len("AutoModel"):])}}
    task_class = next((name for name in auto_map if name in TASKS), None)
    r["task"] = TASKS.get(task_class)
    remote = {"trust_remote_code": True}

    config = rec.step("config", AutoConfig.from_pretrained, folder, **remote)
    if config is None:
        return r
    r["config_class"] = f"{type(config).__module__}.{type(config).__name__}"
    r["model_type"] = config.model_type
    r["id2label"] = {int(k): v for k, v in config.id2label.items()}
    points = operating_point_kwargs(config)
    r["operating_points"] = list(points)

    # Every Auto class the folder declares, from the code in the folder.
    r["auto_classes"] = {}
    models = {}
    for auto_name in auto_map:
        if auto_name in ("AutoConfig", "AutoTokenizer", "AutoImageProcessor", "AutoProcessor"):
            continue
        auto = getattr(transformers, auto_name)
        model = rec.step(f"load {auto_name}", auto.from_pretrained, folder, **remote)
        if model is not None:
            models[auto_name] = model.eval()
            r["auto_classes"][auto_name] = f"{type(model).__module__}.{type(model).__name__}"
    model = models.get(task_class)
    if model is None:
        return r

    # Weights: every tensor of model.safetensors arrives unchanged; nothing is left initialised.
    saved = load_file(str(Path(folder) / "model.safetensors"))
    state = model.state_dict()
    r["missing_keys"] = sorted(set(state) - set(saved))
    r["unexpected_keys"] = sorted(set(saved) - set(state))
    r["changed_keys"] = sorted(k for k in set(saved) & set(state) if not torch.equal(saved[k], state[k]))

    # Preprocessor, inputs, and the logits at every operating point.
    if r["task"] == "image-classification":
        processor = rec.step("preprocessor", AutoImageProcessor.from_pretrained, folder, **remote)
        if processor is None:
            return r
        r["preprocessor_class"] = type(processor).__name__
        raw_inputs, inputs = image_inputs(processor)
    elif not (Path(folder) / "tokenizer.json").is_file():
        # A sequence classifier over pixel ids (LRA Image): no tokenizer, no pipeline; token ids go in directly.
        r["preprocessor_class"] = None
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(0, config.vocab_size, (NUM_INPUTS, config.max_position_embeddings), generator=generator)
        raw_inputs, inputs = None, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        r["input_ids"] = ids
    else:
        processor = rec.step("preprocessor", AutoTokenizer.from_pretrained, folder, **remote)
        if processor is None:
            return r
        r["preprocessor_class"] = type(processor).__name__
        r["tokenizer_pad_token_id"] = processor.pad_token_id
        r["config_pad_token_id"] = config.pad_token_id
        raw_inputs, inputs = text_inputs(processor)
        r["input_ids"] = inputs["input_ids"]
    with torch.no_grad():
        r["logits"] = {
            name: rec.step(f"forward {name}", lambda kw: model(**inputs, **kw).logits, kwargs)
            for name, kwargs in points.items()
        }
        r["default_logits"] = rec.step("forward default", lambda: model(**inputs).logits)

    # The pipeline, one batch (so its bundles are the direct call's bundles).
    def run_pipeline(source, **kwargs):
        classify = pipeline(r["task"], model=source, trust_remote_code=True, **kwargs)
        r["pipeline_class"] = f"{type(classify).__module__}.{type(classify).__name__}"
        top_k = {"top_k": None} if r["task"] == "text-classification" else {"top_k": len(r["id2label"])}
        return type(classify.model).__module__, classify(raw_inputs, batch_size=NUM_INPUTS, **top_k)

    if raw_inputs is not None:
        out = rec.step("pipeline", run_pipeline, folder)
        if out is not None:
            r["pipeline_module"], r["pipeline"] = out

    # The same folder as Hub id `repo_id` from the offline cache: by branch and by commit hash.
    hub_config = rec.step("hub config", AutoConfig.from_pretrained, repo_id, **remote)
    if hub_config is not None:
        r["hub_config_class"] = f"{type(hub_config).__module__}.{type(hub_config).__name__}"
    auto = getattr(transformers, task_class)
    for label, revision in (("main", None), ("commit", commit)):
        hub_model = rec.step(f"hub model {label}", auto.from_pretrained, repo_id, revision=revision, **remote)
        if hub_model is not None:
            hub_model.eval()
            r[f"hub_module_{label}"] = type(hub_model).__module__
            with torch.no_grad():
                r[f"hub_logits_{label}"] = {
                    name: rec.step(
                        f"hub forward {label} {name}", lambda kw, m=hub_model: m(**inputs, **kw).logits, kwargs
                    )
                    for name, kwargs in points.items()
                }
    if raw_inputs is not None:
        out = rec.step("hub pipeline", run_pipeline, repo_id, revision=commit)
        if out is not None:
            r["hub_pipeline_module"], r["hub_pipeline"] = out
    return r


def main():
    args = ARGS
    torch.set_num_threads(1)
    results = {
        "transformers_version": transformers.__version__,
        "mimo_hf_modules": None,
        "folders": {entry["name"]: load_folder(entry) for entry in args["folders"]},
    }
    results["mimo_hf_modules"] = sorted(name for name in sys.modules if name.startswith("mimo_hf"))
    torch.save(results, args["output"])
    print("child done")


if __name__ == "__main__":
    main()
