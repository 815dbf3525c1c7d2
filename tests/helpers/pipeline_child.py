"""Child process of tests/hub/test_hub_pipelines.py: a Hub user (mimo_hf blocked) choosing operating points
through pipelines. Runs each scenario, records its result or its error (type and message), saves them.

Usage: python pipeline_child.py ARGS_JSON   ({"image": folder, "text": folder, "no_tokenizer": folder, "output": path})
"""

import json
import sys

from hub_testing import BlockMimoHf  # the script's folder is sys.path[0]

ARGS = json.loads(sys.argv[1])
sys.meta_path.insert(0, BlockMimoHf())

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification, pipeline  # noqa: E402

torch.set_num_threads(1)
RESULT = {}


def attempt(name, function):
    try:
        RESULT[name] = {"value": function()}
    except Exception as error:  # recorded for the parent to check
        RESULT[name] = {"error": type(error).__name__, "message": str(error)}


def scores(outputs):
    """Pipeline outputs (one list of {label, score} per input) as {label: score} dicts."""
    return [{item["label"]: item["score"] for item in per_input} for per_input in outputs]


def direct(model, inputs, **kwargs):
    with torch.no_grad():
        probs = model(**inputs, **kwargs).logits.softmax(-1)
    return [{model.config.id2label[j]: float(p[j]) for j in range(p.shape[0])} for p in probs]


# Image: k per call, k at load, a bad k both ways, an unknown keyword.
rng = np.random.default_rng(0)
images = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(3)]
image_folder = ARGS["image"]
classify = pipeline("image-classification", model=image_folder, trust_remote_code=True)
RESULT["image_pipeline_class"] = type(classify).__name__
top = {"top_k": 10, "batch_size": 3}
attempt("image_per_call_k1", lambda: scores(classify(images, num_superpositions=1, **top)))
attempt("image_default", lambda: scores(classify(images, **top)))
attempt("image_per_call_k3", lambda: scores(classify(images, num_superpositions=3, **top)))
attempt("image_unknown_keyword", lambda: scores(classify(images, num_superposition=1, **top)))
attempt("image_load_k1", lambda: scores(pipeline("image-classification", model=image_folder, trust_remote_code=True,
                                                 model_kwargs={"default_superpositions": 1})(images, **top)))
attempt("image_load_k3", lambda: pipeline("image-classification", model=image_folder, trust_remote_code=True,
                                          model_kwargs={"default_superpositions": 3}) and None)
attempt("image_from_pretrained_k3", lambda: AutoModelForImageClassification.from_pretrained(
    image_folder, trust_remote_code=True, default_superpositions=3) and None)
model = AutoModelForImageClassification.from_pretrained(image_folder, trust_remote_code=True).eval()
pixels = dict(classify.image_processor(images, return_tensors="pt"))
RESULT["image_direct_k1"] = direct(model, pixels, num_superpositions=1)
RESULT["image_direct_default"] = direct(model, pixels)

# Text: the grid per call, at load, a bad grid both ways, an unknown keyword.
text_folder = ARGS["text"]
texts = ["[MAX 2 9 [MIN 4 7 ] 0 ]", "[SM 1 2 3 ]", "[MED 5 [MAX 1 8 ] 3 ]"]
text_classify = pipeline("text-classification", model=text_folder, trust_remote_code=True)
RESULT["text_pipeline_class"] = type(text_classify).__name__
top = {"top_k": None, "batch_size": 3}
attempt("text_per_call_1x1", lambda: scores(text_classify(texts, mimo_grid=(1, 1), **top)))
attempt("text_default", lambda: scores(text_classify(texts, **top)))
attempt("text_per_call_9x9", lambda: scores(text_classify(texts, mimo_grid=(9, 9), **top)))
attempt("text_unknown_keyword", lambda: scores(text_classify(texts, mimo_grids=(1, 1), **top)))
attempt("text_load_1x1", lambda: scores(pipeline("text-classification", model=text_folder, trust_remote_code=True,
                                                 model_kwargs={"default_grid": [1, 1]})(texts, **top)))
attempt("text_load_9x9", lambda: pipeline("text-classification", model=text_folder, trust_remote_code=True,
                                          model_kwargs={"default_grid": [9, 9]}) and None)
text_model = AutoModelForSequenceClassification.from_pretrained(text_folder, trust_remote_code=True).eval()
encoded = text_classify.tokenizer(texts, padding=True, return_tensors="pt")
ids = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
RESULT["text_direct_1x1"] = direct(text_model, ids, mimo_grid=(1, 1))
RESULT["text_direct_default"] = direct(text_model, ids)

# A text-classification pipeline on a folder without a tokenizer (an LRA Image checkpoint).
attempt("no_tokenizer", lambda: pipeline("text-classification", model=ARGS["no_tokenizer"], trust_remote_code=True)
        and None)

with open(ARGS["output"], "w") as f:
    json.dump(RESULT, f)
