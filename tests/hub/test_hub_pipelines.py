"""Operating points through pipelines, on real zoo checkpoints, as a Hub user and as a user of the package.

The conventional route works with any pipeline class: a config override at load,
`pipeline(..., model_kwargs={"default_superpositions": k})` (MIMOConv) or `{"default_grid": [m, n]}`
(MIMOFormer), validated when the model loads. The Hub folders also ship pipeline classes
(config.json's `custom_pipelines`) that take the operating point per call and refuse any keyword
they do not use. Each route is compared with a direct call of the model at the same operating point.

No conftest fixtures: this file also runs on the transformers-4.57 leg (.ci/test_transformers4.sh).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_checkpoints import lra_image_checkpoint

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "zoo"
CHILD = Path(__file__).resolve().parents[1] / "helpers" / "pipeline_child.py"
IMAGE, TEXT = "mimoconv16-2-n2", "mimoformer-att-listops-cpu"


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    """What a Hub user (mimo_hf blocked) gets from the exported Hub folders."""
    from mimo_hf.hub.export import export_folder

    tmp = tmp_path_factory.mktemp("hub_pipelines")
    folders = {key: str(export_folder(ZOO / name, tmp / name)) for key, name in (("image", IMAGE), ("text", TEXT))}
    folders["no_tokenizer"] = str(export_folder(lra_image_checkpoint(tmp / "image-checkpoint"), tmp / "image-mimoformer"))
    output = tmp / "result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "PYTHON"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp / "hf_home"), HF_MODULES_CACHE=str(tmp / "modules"),
               OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1")
    proc = subprocess.run([sys.executable, str(CHILD), json.dumps({**folders, "output": str(output)})], cwd=str(tmp),
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"child failed\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(output.read_text())


def _value(child, name):
    assert "error" not in child[name], child[name]
    return child[name]["value"]


def _error(child, name, kind, *phrases):
    record = child[name]
    assert record.get("error") == kind, record
    for phrase in phrases:
        assert phrase in record["message"], (phrase, record["message"])


def _same_scores(got, expected):
    assert len(got) == len(expected)
    for row_got, row_expected in zip(got, expected):
        assert row_got.keys() == row_expected.keys()
        for label, score in row_expected.items():
            assert row_got[label] == pytest.approx(score, abs=1e-5), label


def test_hub_folders_use_their_own_pipeline_classes(child):
    assert child["image_pipeline_class"] == "MIMOConvImageClassificationPipeline"
    assert child["text_pipeline_class"] == "MIMOFormerTextClassificationPipeline"


@pytest.mark.parametrize("arch, point, default", [("image", "k1", "default"), ("text", "1x1", "default")])
def test_operating_point_per_call_and_at_load_equal_the_direct_call(child, arch, point, default):
    direct_point, direct_default = child[f"{arch}_direct_{point}"], child[f"{arch}_direct_{default}"]
    _same_scores(_value(child, f"{arch}_per_call_{point}"), direct_point)
    _same_scores(_value(child, f"{arch}_load_{point}"), direct_point)
    _same_scores(_value(child, f"{arch}_default"), direct_default)
    # The operating point really changes the result (else the comparison above could not fail).
    assert any(abs(a[label] - b[label]) > 1e-4 for a, b in zip(direct_point, direct_default) for label in a)


def test_bad_operating_points_fail_naming_the_allowed_ones(child):
    _error(child, "image_per_call_k3", "ValueError", "num_superpositions=3", "[1, 2]")
    _error(child, "image_load_k3", "ValueError", "default_superpositions=3", "[1, 2]")
    _error(child, "image_from_pretrained_k3", "ValueError", "default_superpositions=3", "[1, 2]")
    _error(child, "text_per_call_9x9", "ValueError", "mimo_grid=(9, 9)", "1 <= m <= 4")
    _error(child, "text_load_9x9", "ValueError", "default_grid=[9, 9]", "1 <= m <= 4")


def test_keywords_a_pipeline_does_not_use_are_errors(child):
    _error(child, "image_unknown_keyword", "TypeError", "num_superposition", "num_superpositions")
    _error(child, "text_unknown_keyword", "TypeError", "mimo_grids", "mimo_grid")


def test_a_folder_without_tokenizer_says_so(child):
    _error(child, "no_tokenizer", "ValueError", "has no tokenizer", "tokenizer.json")
    assert "sentencepiece" not in child["no_tokenizer"]["message"]


def test_package_route_stock_pipelines_take_the_operating_point_and_refuse_unused_keywords():
    """With the package (zoo/ folders, no code in them) the stock `pipeline(task, ...)` builds the MIMO
    pipeline classes: the per-call point and `model_kwargs` both give the direct call's scores, a bad
    point and an unused keyword are errors (the stock text pipeline handed them to the tokenizer)."""
    import torch
    from transformers import pipeline

    import mimo_hf  # noqa: F401

    torch.set_num_threads(1)
    texts = ["[MAX 2 9 [MIN 4 7 ] 0 ]", "[SM 1 2 3 ]", "[MED 5 [MAX 1 8 ] 3 ]"]
    per_call = pipeline("text-classification", model=str(ZOO / TEXT))
    at_load = pipeline("text-classification", model=str(ZOO / TEXT), model_kwargs={"default_grid": [1, 1]})
    assert type(per_call).__name__ == "MIMOFormerTextClassificationPipeline"
    encoded = per_call.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = per_call.model(**encoded, mimo_grid=(1, 1)).logits.softmax(-1)
        full = per_call.model(**encoded).logits.softmax(-1)
    assert not torch.allclose(probs, full, atol=1e-4)  # the grid changes the scores, so the checks can fail
    for got in (at_load(texts, top_k=None, batch_size=3), per_call(texts, top_k=None, batch_size=3, mimo_grid=(1, 1))):
        for row, per_input in enumerate(got):
            for item in per_input:
                label_id = per_call.model.config.label2id[item["label"]]
                assert item["score"] == pytest.approx(float(probs[row, label_id]), abs=1e-5)
    with pytest.raises(ValueError, match=r"mimo_grid=\(9, 9\)"):
        per_call(texts, mimo_grid=(9, 9))
    with pytest.raises(TypeError, match="mimo_grids"):
        per_call(texts, mimo_grids=(1, 1))

    from PIL import Image

    classify = pipeline("image-classification", model=str(ZOO / IMAGE))
    assert type(classify).__name__ == "MIMOConvImageClassificationPipeline"
    picture = Image.open(ZOO / IMAGE / "example_cat.png")
    pixels = classify.image_processor(picture, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        direct = classify.model(pixels, num_superpositions=1).logits.softmax(-1)[0]
    top = classify(picture, num_superpositions=1, top_k=1)[0]
    assert top["score"] == pytest.approx(float(direct.max()), abs=1e-5)
    assert top["label"] == classify.model.config.id2label[int(direct.argmax())]
    with pytest.raises(ValueError, match="num_superpositions=3"):
        classify(picture, num_superpositions=3)


def test_package_route_leaves_other_models_with_the_stock_classes():
    from transformers import BertConfig, BertForSequenceClassification, TextClassificationPipeline, pipeline

    import mimo_hf  # noqa: F401

    other = pipeline("text-classification", tokenizer=str(ZOO / TEXT), model=BertForSequenceClassification(
        BertConfig(vocab_size=64, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)))
    assert type(other) is TextClassificationPipeline
    assert len(other(["[MIN 3 8 ]"])) == 1


def test_package_route_folder_without_tokenizer_says_so(tmp_path):
    from transformers import pipeline

    import mimo_hf  # noqa: F401

    folder = lra_image_checkpoint(tmp_path / "image-mimoformer")
    with pytest.raises(ValueError, match=r"image-mimoformer has no tokenizer \(no tokenizer.json") as info:
        pipeline("text-classification", model=str(folder))
    assert "sentencepiece" not in str(info.value)


def test_corrupt_weights_file_is_named(tmp_path):
    import shutil

    import mimo_hf  # noqa: F401
    from transformers import AutoModelForImageClassification

    folder = tmp_path / "broken"
    shutil.copytree(ZOO / IMAGE, folder)
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(OSError, match=r"broken/model\.safetensors: cannot read the weights .*corrupt"):
        AutoModelForImageClassification.from_pretrained(folder)


def test_grayscale_model_pipeline_takes_gray_and_color_pictures(tmp_path):
    """The folder a MNIST run exports (`make_image_processor("mnist")` + `save_hub_folder`, as
    MIMOConvLoop.export writes it) classifies L-mode and RGB pictures in a pipeline, both as the
    direct call on the normalised gray channel does."""
    import io

    import numpy as np
    import pyarrow.parquet as pq
    import torch
    from PIL import Image
    from transformers import pipeline

    from mimo_hf import MIMOConvConfig, MIMOConvForImageClassification
    from mimo_hf.data.image_processing import make_image_processor
    from mimo_hf.hub.export import save_hub_folder

    mnist = REPO.parent / "shared" / "data" / "mnist" / "test-00000-of-00001.parquet"
    if not mnist.is_file():
        pytest.skip(f"{mnist} is not here")
    torch.manual_seed(0)
    config = MIMOConvConfig(num_superpositions=2, depth=10, width=1, initial_width=1, num_channels=1, image_size=28,
                            id2label={i: str(i) for i in range(10)}, label2id={str(i): i for i in range(10)})
    folder = save_hub_folder(MIMOConvForImageClassification(config).eval(), tmp_path / "mnist",
                             make_image_processor("mnist", 28))
    rows = pq.read_table(mnist, columns=["image"]).slice(0, 4).to_pylist()
    gray = [Image.open(io.BytesIO(row["image"]["bytes"])) for row in rows]
    assert {image.mode for image in gray} == {"L"}
    color = [image.convert("RGB") for image in gray]
    classify = pipeline("image-classification", model=str(folder), trust_remote_code=True)  # as the README does
    pixels = torch.from_numpy(np.stack([np.asarray(image, dtype=np.float32) / 255 for image in gray]))[:, None]
    with torch.no_grad():
        probs = classify.model((pixels - 0.1307) / 0.3081).logits.softmax(-1)  # (4, 10)
    for pictures in (gray, color):
        got = classify(pictures, top_k=10, batch_size=4)
        for row, per_input in enumerate(got):
            for item in per_input:
                assert item["score"] == pytest.approx(float(probs[row, int(item["label"])]), abs=1e-5)
