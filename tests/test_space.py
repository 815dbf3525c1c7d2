"""The demo Space (spaces/mimo-hf-demo) as its visitors and API clients use it.

- The inference functions alone (no UI): model discovery, operating points, one forward pass per
  request.
- The app itself, started on 127.0.0.1 in a subprocess where `import mimo_hf` fails (a Space has
  only the Hub stack), serving the zoo folders, a Hub id from a pre-filled offline cache pinned to a
  commit, and a tiny text classifier (so the text tab is exercised before MIMOFormer folders exist).
  It is driven through gradio_client and compared with direct model calls.
- The page in headless Chromium, as a visitor sees it: the checkpoint list (every image checkpoint
  served), upload, k=2, classify; the summary with its time per input and the predictions grid equal
  to a direct model call; a screenshot (saved as a test artifact). About 12 s of browser time on a
  loaded 2-core machine, after the app fixture the API tests share.

Needs the `space` and `test` extras (gradio, gradio_client; pytest, playwright). The browser is the
system's Chromium (Debian package `chromium`, which `.ci/install_chromium.sh` installs as part of the
README's test command), MIMO_TEST_CHROMIUM, or one `playwright install` fetched; without any, only the
browser check skips, naming why.
"""

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from hub_testing import operating_point_kwargs, prefill_hub_cache

gradio_client = pytest.importorskip("gradio_client", reason="needs the 'space' extra: pip install -e '.[test,space]'")
pytest.importorskip("gradio", reason="needs the 'space' extra: pip install -e '.[test,space]'")

REPO = Path(__file__).resolve().parent.parent
SPACE = REPO / "spaces" / "mimo-hf-demo"
ZOO = REPO / "zoo"
SAMPLES = REPO / "mimo_hf" / "samples" / "cifar10" / "test-00000-of-00001.parquet"
ARTIFACTS = REPO / "test-artifacts"  # git-ignored; CI can keep it
HUB_ID = "mimo-hf-test/mimoconv16-2-n4-dynamic"
TEXT_LABELS = {0: "negative", 1: "neutral", 2: "positive"}
TEXT_VOCAB = ["[PAD]", "[UNK]", "good", "bad", "movie", "plot", "great", "boring", "acting", "fine"]

pytestmark = pytest.mark.usefixtures("single_thread")


def _import_space_module():
    spec = importlib.util.spec_from_file_location("demo_inference", SPACE / "demo_inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


inference = _import_space_module()


# ---------------------------------------------------------------------------------------------
# Inputs and reference outputs


def _write_cifar_samples(folder, count=6):
    """The first `count` CIFAR-10 test images of the shipped sample, as the JPEG files they are."""
    rows = pq.read_table(SAMPLES).slice(0, count).to_pylist()
    paths = []
    for i, row in enumerate(rows):
        path = Path(folder) / f"cifar10_test_{i}.jpg"
        path.write_bytes(row["img"]["bytes"])
        paths.append(path)
    return paths


def _make_text_folder(folder):
    """A tiny built-in BERT sequence classifier with a WordLevel tokenizer: a 'text folder'."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(TEXT_VOCAB)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", model_input_names=["input_ids", "attention_mask"]
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(TEXT_VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        pad_token_id=0,
        id2label=dict(TEXT_LABELS),
        label2id={v: k for k, v in TEXT_LABELS.items()},
    )
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)


def _top_k(logits, id2label, k):
    values, indices = logits.softmax(-1).topk(k, dim=-1)
    return [
        [{"label": id2label[int(i)], "score": float(v)} for v, i in zip(rv, ri)]
        for rv, ri in zip(values.tolist(), indices.tolist())
    ]


def _direct_image_predictions(folder, paths, point_kwargs, k=3):
    """What a user gets calling the model directly on the same batch, in the same order."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    pixel_values = processor([Image.open(p).convert("RGB") for p in paths], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        logits = model(pixel_values, **point_kwargs).logits
    return _top_k(logits, model.config.id2label, k)


def _direct_text_predictions(folder, texts, point_kwargs, k=3):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    # As the Space pads: to the checkpoint's length where the tokenizer names one (the LRA models' mean
    # pooling divides by the padded length), else to the longest input.
    limit = tokenizer.model_max_length
    padding = {"padding": "max_length", "max_length": limit} if limit <= 1_000_000 else {"padding": True}
    encoded = tokenizer(texts, return_tensors="pt", **padding)
    inputs = {name: encoded[name] for name in tokenizer.model_input_names if name in encoded}
    with torch.no_grad():
        logits = model(**inputs, **point_kwargs).logits
    return _top_k(logits, model.config.id2label, min(k, model.config.num_labels)), model.config


def _assert_same_predictions(got, expected):
    assert len(got) == len(expected)
    for row, (g, e) in enumerate(zip(got, expected)):
        assert [item["label"] for item in g] == [item["label"] for item in e], row
        for gi, ei in zip(g, e):
            assert gi["score"] == pytest.approx(ei["score"], abs=1e-5), (row, gi, ei)


# ---------------------------------------------------------------------------------------------
# The inference functions, no UI


def test_parse_model_list(tmp_path):
    local = tmp_path / "folder@odd"
    local.mkdir()
    specs = inference.parse_model_list(f" org/a@v1.0 ,\n org/b \n{local},")
    assert specs == [
        inference.ModelSpec("org/a", "v1.0"),
        inference.ModelSpec("org/b"),
        inference.ModelSpec(str(local)),  # an existing folder is never split at '@'
    ]
    assert specs[0].name == "org/a@v1.0" and specs[1].name == "org/b" and specs[2].name == "folder@odd"


def test_configured_models_precedence(monkeypatch, tmp_path):
    zoo = tmp_path / "zoo"
    (zoo / "m1").mkdir(parents=True)
    (zoo / "m1" / "config.json").write_text("{}")
    (zoo / "not-a-model").mkdir()
    env = {"MIMO_DEMO_MODELS": "org/x@abc", "MIMO_DEMO_ZOO": str(zoo)}
    assert inference.configured_models(env) == [inference.ModelSpec("org/x", "abc")]
    assert inference.configured_models({"MIMO_DEMO_ZOO": str(zoo)}) == [inference.ModelSpec(str(zoo / "m1"))]
    # From a checkout: the repository's zoo.
    assert {Path(s.source).name for s in inference.configured_models({})} == {
        p.name for p in inference.zoo_folders(ZOO)
    }
    # Deployed (no zoo next to the app): the Hub repos of models.json.
    monkeypatch.setattr(inference, "REPO_ZOO", tmp_path / "missing")
    hub = inference.configured_models({})
    assert hub and all(not spec.is_local and spec.revision for spec in hub)


def test_models_json_names_the_published_repos():
    """The deployed Space must load the repos scripts/push_to_hub.py publishes."""
    yaml = pytest.importorskip("yaml")
    pushed = {yaml.safe_load(p.read_text())["repo_id"] for p in (REPO / "push_configs").glob("*.yaml")}
    listed = {entry["repo_id"] for entry in json.loads((SPACE / "models.json").read_text())}
    assert listed and listed <= pushed, listed - pushed


def test_space_card_and_requirements():
    """The Space repo is self-contained: card metadata, app file, and only Hub-stack imports."""
    import ast

    from huggingface_hub import SpaceCard

    import gradio

    card = SpaceCard.load(SPACE / "README.md").data
    assert card.sdk == "gradio" and (SPACE / card.app_file).is_file()
    # The app is written against this gradio major (e.g. api_visibility= is gradio 6).
    assert card.sdk_version.split(".")[0] == gradio.__version__.split(".")[0], (card.sdk_version, gradio.__version__)
    assert set(card.models) == {e["repo_id"] for e in json.loads((SPACE / "models.json").read_text())}
    requirements = {
        line.split(";")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower().replace("_", "-")
        for line in (SPACE / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert "mimo-hf" not in requirements
    provided = {"pil": "pillow", "huggingface_hub": "huggingface-hub"}
    local_modules = {p.stem for p in SPACE.glob("*.py")}
    for source in SPACE.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in local_modules or top == "gradio":
                    continue
                assert provided.get(top.lower(), top.lower()) in requirements, (source.name, name)


def test_a_checkpoint_folder_needs_the_package_and_says_so(monkeypatch):
    """The checkout's zoo/ holds checkpoint folders without code: the app imports mimo_hf for them, and
    without it names the two ways out instead of failing inside transformers."""
    import importlib

    spec = inference.with_task(inference.ModelSpec(str(ZOO / "mimoconv16-2-n2")))
    assert inference.load_config(spec).model_type == "mimoconv"  # the package registered it
    real = importlib.import_module

    def no_mimo_hf(name, *args):
        if name == "mimo_hf":
            raise ImportError("not installed")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_mimo_hf)
    with pytest.raises(ValueError, match="checkpoint folder without model code: install mimo-hf.*export_hub_folder"):
        inference.load_config(spec)


def test_discover_models_finds_tasks(tmp_path):
    text = _make_text_folder(tmp_path / "tiny-text")
    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(text, no_tokenizer, ignore=shutil.ignore_patterns("tokenizer*", "special_tokens_map.json"))
    sources = [str(ZOO / "mimoconv16-2-n2"), str(text), str(no_tokenizer), str(tmp_path / "missing")]
    found = inference.discover_models({"MIMO_DEMO_MODELS": ",".join(sources)})
    assert [(Path(s.source).name, s.task) for s in found] == [
        ("mimoconv16-2-n2", inference.IMAGE),
        ("tiny-text", inference.TEXT),
    ]


def test_operating_points_per_architecture():
    conv = SimpleNamespace(num_superpositions=4, default_superpositions=4, operating_points=[1, 2, 4])
    points, default = inference.operating_points(conv)
    assert [(p.name, p.kwargs, p.inputs_per_pass) for p in points] == [
        ("k=1", {"num_superpositions": 1}, 1),
        ("k=2", {"num_superpositions": 2}, 2),
        ("k=4", {"num_superpositions": 4}, 4),
    ]
    assert default == "k=4"
    # MIMOFormer's per-call option is a grid; its config also has num_superpositions = M * N.
    former = SimpleNamespace(
        mimo_m=2, mimo_n=2, num_superpositions=4, operating_points=[(1, 1), (1, 2), (2, 1), (2, 2)]
    )
    points, default = inference.operating_points(former)
    assert [p.name for p in points] == ["grid=1x1", "grid=1x2", "grid=2x1", "grid=2x2"]
    assert points[1].kwargs == {"mimo_grid": (1, 2)} and points[3].inputs_per_pass == 4
    assert default == "grid=2x2"
    points, default = inference.operating_points(SimpleNamespace(num_labels=2))
    assert [(p.name, p.kwargs) for p in points] == [("default", {})] and default == "default"


def test_classify_images_is_one_forward_pass(tmp_path):
    paths = _write_cifar_samples(tmp_path)
    loaded = inference.load(inference.with_task(inference.ModelSpec(str(ZOO / "mimoconv16-2-n4-dynamic"))))
    batch_sizes = []
    hook = loaded.model.register_forward_pre_hook(
        lambda module, args, kwargs: batch_sizes.append(kwargs["pixel_values"].shape[0]), with_kwargs=True
    )
    try:
        result = inference.classify_images(loaded, [Image.open(p) for p in paths], "k=4", top_k=2)
    finally:
        hook.remove()
    assert batch_sizes == [6]  # six images, one call: the model makes the bundles
    assert result["num_inputs"] == 6 and result["inputs_per_pass"] == 4 and result["operating_point"] == "k=4"
    timing = result["timing"]
    assert timing["forward_ms"] > 0
    assert timing["forward_ms_per_input"] == pytest.approx(timing["forward_ms"] / 6)
    expected = _direct_image_predictions(ZOO / "mimoconv16-2-n4-dynamic", paths, {"num_superpositions": 4}, k=2)
    _assert_same_predictions([p["top"] for p in result["predictions"]], expected)


def test_classify_rejects_bad_requests():
    loaded = inference.load(inference.with_task(inference.ModelSpec(str(ZOO / "mimoconv16-2-n2"))))
    image = Image.new("RGB", (32, 32))
    with pytest.raises(ValueError, match=r"'k=4' is not an operating point of mimoconv16-2-n2.*'k=1', 'k=2'"):
        inference.classify_images(loaded, [image], "k=4")
    with pytest.raises(ValueError, match="no inputs"):
        inference.classify_images(loaded, [], "k=1")
    with pytest.raises(ValueError, match="at most"):
        inference.classify_images(loaded, [image] * (inference.MAX_INPUTS + 1), "k=1")


def test_texts_longer_than_the_checkpoint_takes_are_refused_not_cut():
    loaded = inference.load(inference.with_task(inference.ModelSpec(str(ZOO / "mimoformer-attmlp-listops-cpu"))))
    short = "[MAX 2 9 [MIN 4 7 ] 0 ]"
    result = inference.classify_texts(loaded, [short] * 3, "grid=2x2")
    assert result["num_inputs"] == 3
    too_long = "[SM " + "1 " * 600 + "]"
    with pytest.raises(ValueError, match=r"inputs \[1\] have more than 500 tokens"):
        inference.classify_texts(loaded, [short, too_long], "grid=2x2")


# ---------------------------------------------------------------------------------------------
# The running app


LAUNCHER = """
import runpy, sys
sys.path.insert(0, {tests!r})
from hub_testing import BlockMimoHf
sys.meta_path.insert(0, BlockMimoHf())  # a Space has no mimo_hf: the app must not need it
sys.path[0] = {space!r}                  # as `python app.py` would have it
sys.argv = [{app!r}]
runpy.run_path({app!r}, run_name="__main__")
"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url, proc, log, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the app exited with {proc.returncode}:\n{log.read_text()[-6000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the app did not answer at {url} within {timeout} s:\n{log.read_text()[-6000:]}")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app without mimo_hf, serving the zoo's Hub folders (assembled as push_to_hub.py would, each
    named like its zoo folder), a Hub id from the offline cache and the tiny text folder."""
    from mimo_hf.hub.export import assemble
    from mimo_hf.hub.push_config import load_push_configs

    tmp = tmp_path_factory.mktemp("space")
    text_folder = _make_text_folder(tmp / "tiny-text")
    exported = {push.folder_path.name: assemble(push, tmp / "exported" / push.folder_path.name)
                for push in load_push_configs(REPO / "push_configs")}
    hub_cache = tmp / "hf_home" / "hub"
    commit = prefill_hub_cache(exported["mimoconv16-2-n4-dynamic"], hub_cache, HUB_ID)
    zoo = [str(exported[p.name]) for p in sorted(ZOO.iterdir()) if (p / "config.json").is_file()]
    models = zoo + [f"{HUB_ID}@{commit}", str(text_folder)]
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "PYTHON", "GRADIO_"))
    }
    env.update(
        MIMO_DEMO_MODELS=",".join(models),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",  # no telemetry calls from tests
        GRADIO_TEMP_DIR=str(tmp / "gradio"),
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp / "hf_home"),
        HF_HUB_CACHE=str(hub_cache),
        HF_MODULES_CACHE=str(tmp / "modules"),
        HF_HUB_DISABLE_TELEMETRY="1",
        OMP_NUM_THREADS="1",
        PYTHONNOUSERSITE="1",
    )
    launcher = tmp / "launch_space.py"
    app_py = SPACE / "app.py"
    launcher.write_text(LAUNCHER.format(tests=str(Path(__file__).parent / "helpers"), space=str(SPACE), app=str(app_py)))
    log = tmp / "app.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, str(launcher)], cwd=str(tmp), env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, proc, log)
        # analytics off: the client would otherwise report usage over the network
        client = gradio_client.Client(
            url, verbose=False, download_files=str(tmp / "downloads"), analytics_enabled=False
        )
        yield SimpleNamespace(url=url, client=client, commit=commit, text_folder=text_folder, tmp=tmp, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _classify_images(app, model, paths, point, top_k=3):
    files = [gradio_client.handle_file(str(p)) for p in paths]
    gallery, table, timing, result = app.client.predict(model, files, point, top_k, api_name="/classify_images")
    return gallery, table, timing, result


def test_api_lists_the_classify_endpoints(app):
    endpoints = app.client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/classify_images", "/classify_texts"}


@pytest.mark.parametrize("point", ["k=1", "k=4"])
def test_api_classifies_cifar_images_like_a_direct_call(app, point):
    paths = _write_cifar_samples(app.tmp)
    gallery, table, timing, result = _classify_images(app, "mimoconv16-2-n4-dynamic", paths, point)
    k = int(point.split("=")[1])
    expected = _direct_image_predictions(ZOO / "mimoconv16-2-n4-dynamic", paths, {"num_superpositions": k})
    _assert_same_predictions([p["top"] for p in result["predictions"]], expected)
    assert [p["input"] for p in result["predictions"]] == [p.name for p in paths]
    assert result["operating_point"] == point and result["inputs_per_pass"] == k and result["num_inputs"] == 6
    assert result["timing"]["forward_ms_per_input"] == pytest.approx(result["timing"]["forward_ms"] / 6)
    assert "ms per input" in timing and f"at **{point}**" in timing
    assert len(gallery) == 6 and gallery[0]["caption"].startswith(expected[0][0]["label"])
    assert len(table["data"]) == 6 * 3


def test_api_operating_point_reaches_the_model(app):
    """Different bundling gives different scores: the chosen k is what the model ran at."""
    paths = _write_cifar_samples(app.tmp)
    scores = {}
    for point in ("k=1", "k=4"):
        result = _classify_images(app, "mimoconv16-2-n4-dynamic", paths, point, top_k=1)[3]
        scores[point] = [p["top"][0]["score"] for p in result["predictions"]]
    assert scores["k=1"] != scores["k=4"]


def test_api_loads_a_hub_id_pinned_to_a_commit(app):
    paths = _write_cifar_samples(app.tmp)
    name = f"{HUB_ID}@{app.commit}"
    hub = _classify_images(app, name, paths, "k=2")[3]
    local = _classify_images(app, "mimoconv16-2-n4-dynamic", paths, "k=2")[3]
    assert hub["model"] == name
    assert hub["predictions"] == local["predictions"]


def test_api_rejects_an_operating_point_the_model_lacks(app):
    paths = _write_cifar_samples(app.tmp, count=1)
    with pytest.raises(gradio_client.exceptions.AppError, match="not an operating point of mimoconv16-2-n2"):
        _classify_images(app, "mimoconv16-2-n2", paths, "k=4")


def _text_models(app):
    """The tiny text folder, and every text folder (MIMOFormer) that the zoo holds."""
    folders = [app.text_folder] + [
        p for p in sorted(ZOO.iterdir()) if (p / "tokenizer.json").is_file() and (p / "config.json").is_file()
    ]
    return folders


def test_api_classifies_texts_like_a_direct_call(app):
    for folder in _text_models(app):
        from transformers import AutoConfig, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        special = set(tokenizer.all_special_tokens)
        words = [w for w, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]) if w not in special][:8]
        texts = [" ".join(words[i : i + 3]) for i in range(5)]
        points = operating_point_kwargs(AutoConfig.from_pretrained(folder, trust_remote_code=True))
        for point in dict.fromkeys([list(points)[0], list(points)[-1]]):  # smallest and largest
            _table, timing, result = app.client.predict(
                folder.name, "\n".join(texts), point, 3, api_name="/classify_texts"
            )
            expected, _ = _direct_text_predictions(folder, texts, points[point])
            _assert_same_predictions([p["top"] for p in result["predictions"]], expected)
            assert result["num_inputs"] == 5 and result["operating_point"] == point, folder.name
            assert "ms per input" in timing


# ---------------------------------------------------------------------------------------------
# The page in a real browser


def _find_chromium():
    """A Chromium binary, or None. Checked: MIMO_TEST_CHROMIUM, playwright's own, the system's."""
    candidates = [os.environ.get("MIMO_TEST_CHROMIUM")]
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            candidates.append(p.chromium.executable_path)  # exists only after `playwright install chromium`
    except Exception:  # no playwright, or no driver: the other candidates still count
        pass
    candidates += [shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome", "chrome")]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


def test_page_in_headless_chromium(request):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # installed with gradio by the test extras: missing is a setup error, not a skip
        pytest.fail("playwright is missing: pip install -e '.[test,space]'")
    chromium = _find_chromium()
    if chromium is None:
        pytest.skip(
            "no Chromium binary: `playwright install chromium` downloads from a CDN this machine cannot reach, "
            "and no PyPI package ships a usable one; install Debian's (`apt-get install chromium`) or set "
            "MIMO_TEST_CHROMIUM to a chromium executable"
        )
    app = request.getfixturevalue("app")  # only now: no server start for a skipped check

    paths = _write_cifar_samples(app.tmp, count=10)
    # What the page must show: every image checkpoint served (the zoo's MIMOConv folders and the pinned
    # Hub id), and for the uploaded images at k=2 the top-1 labels a direct model call gives.
    image_models = sorted([p.name for p in ZOO.iterdir() if (p / "config.json").is_file()
                           and json.loads((p / "config.json").read_text())["model_type"] == "mimoconv"]
                          + [f"{HUB_ID}@{app.commit}"])
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "space_mimo_hf_demo.png"
    with sync_playwright() as p:
        # --no-sandbox: CI and this machine run as root, where Chromium's sandbox refuses to start.
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            # Not "networkidle": the page may keep trying web fonts from a CDN that is unreachable here.
            page.goto(app.url, wait_until="domcontentloaded", timeout=60_000)
            page.get_by_role("tab", name="Text (MIMOFormer)").wait_for(timeout=60_000)  # the app has rendered
            assert page.title() == "MIMONets demo"
            # The model list, as a visitor opens it.
            checkpoint = page.get_by_label("Checkpoint").first
            checkpoint.click()
            options = page.get_by_role("option")
            options.first.wait_for(timeout=10_000)
            shown = sorted(name.strip().splitlines()[-1].strip() for name in options.all_inner_texts())  # no "✓" mark
            assert shown == image_models, shown
            page.keyboard.press("Escape")
            model = checkpoint.input_value()
            # Upload, pick k=2, classify; the summary with its time per input and the predictions table.
            page.locator("input[type=file]").first.set_input_files([str(p) for p in paths])
            page.get_by_text("k=2 (2 inputs per pass)").first.click()
            page.get_by_role("button", name="Classify").first.click()
            page.get_by_text("ms per input").first.wait_for(timeout=60_000)
            summary = page.locator("p", has_text="ms per input").first.inner_text()
            assert "10 inputs at k=2 (2 per pass)" in summary, summary
            ms_per_input = float(re.search(r"([0-9.]+) ms per input", summary).group(1))
            assert ms_per_input > 0, summary
            # The predictions grid (virtualised: only the rows in view are in the page): its row count,
            # and every rendered row's input, rank and label.
            grid = page.locator('[role=grid][aria-label="Predictions"]')
            page.wait_for_function("document.querySelector('[role=grid][aria-label=\"Predictions\"]')"
                                   ".getAttribute('aria-rowcount') === '31'", timeout=30_000)  # 10 x top-3 + header
            grid.locator("[data-testid=cell-0-0]").wait_for(timeout=30_000)
            rows = {}
            for cell in grid.locator("[role=gridcell]").all():
                row, col = int(cell.get_attribute("data-row")), int(cell.get_attribute("data-col"))
                rows.setdefault(row, {})[col] = cell.inner_text().strip()
            page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=30_000)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    expected = _direct_image_predictions(app.tmp / "exported" / model, paths, {"num_superpositions": 2}, k=3)
    assert len(rows) >= 6, rows  # at least the first two images' rows are in view
    for row, cells in rows.items():
        image, rank = divmod(row, 3)
        assert cells[0] == paths[image].name and cells[1] == str(rank + 1), (row, cells)
        assert cells[2] == expected[image][rank]["label"], (row, cells, expected[image])
        assert float(cells[3]) == pytest.approx(expected[image][rank]["score"], abs=1e-4), (row, cells)
    assert screenshot.stat().st_size > 10_000
