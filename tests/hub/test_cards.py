"""Every zoo card, rendered at export from its template and its checkpoint folder's files, says only true things.

Checked per push config (one per committed zoo folder), on the assembled Hub folder: it is the
checkpoint folder's files plus the package's model code plus the rendered card; the card's YAML parses
with huggingface_hub and round-trips; every model-index number equals the
results JSON; the body quotes the measured numbers; every command it quotes exists and its script
accepts the flags; the training command parses back to training_args.json; the widget images are the
shipped CIFAR-10 samples; and the quickstart runs unchanged, offline, as a Hub user without mimo_hf.
MIMOFormer cards: the body quotes the GPU accuracies, the CPU throughput and the steps reached; LRA
Image (pixel-id inputs, no tokenizer) declares the pipeline tag "other" and no widget.
"""

import json
import re
import runpy
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard

from mimo_hf.hub.isolation import run_isolated
from mimo_hf.hub.cards import (
    COMMON_TAGS,
    NO_PIPELINE,
    check_model_index,
    operating_point_config,
    render_card,
)
from mimo_hf.hub.push_config import load_push_configs

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = load_push_configs(ROOT / "push_configs")
IDS = [push.path.stem for push in CONFIGS]
# The MIMOConv cards' own content (image widgets, CIFAR data, the MIMOConv scripts); a MIMOFormer
# template brings its own tests of that kind, the checks on every card apply to it unchanged.
MIMOCONV = [push for push in CONFIGS if push.card_template == "model_cards/mimoconv.md"]
MIMOCONV_IDS = [push.path.stem for push in MIMOCONV]
MIMOFORMER = [push for push in CONFIGS if push.card_template == "model_cards/mimoformer.md"]
MIMOFORMER_IDS = [push.path.stem for push in MIMOFORMER]
ZOO_FOLDERS = sorted(p.parent for p in (ROOT / "zoo").glob("*/eval_results.json"))
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


def _pipeline_tag(push):
    """MIMOConv: images; MIMOFormer with a tokenizer: text; MIMOFormer on LRA Image (pixel ids, no
    tokenizer, no pipeline): "other", so the Hub neither offers a widget nor infers a text pipeline."""
    model_type = json.loads((push.folder_path / "config.json").read_text())["model_type"]
    if model_type == "mimoconv":
        return "image-classification"
    return "text-classification" if (push.folder_path / "tokenizer.json").is_file() else NO_PIPELINE


def _card(push, assembled_zoo):
    """The card of the push config's assembled Hub folder."""
    return ModelCard.load(assembled_zoo[push.folder_path.name] / "README.md")


def _results(push):
    return json.loads(push.results_path.read_text())


def _code_blocks(text, language):
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_every_zoo_folder_has_a_push_config():
    published = {push.folder_path.resolve() for push in CONFIGS}
    assert ZOO_FOLDERS and {folder.resolve() for folder in ZOO_FOLDERS} <= published


@pytest.mark.parametrize("push", CONFIGS, ids=IDS)
def test_hub_folder_is_the_checkpoint_the_package_code_and_the_rendered_card(push, assembled_zoo):
    from mimo_hf.hub.export import AUTO_MAPS, CODE_ROOT, CUSTOM_PIPELINES, MODEL_CODE_FILES, checkpoint_files, generated_files

    folder, source = assembled_zoo[push.folder_path.name], push.folder_path
    assert generated_files(source) == [], "a checkpoint folder carries no card or model code"
    config = json.loads((source / "config.json").read_text())
    assert "auto_map" not in config
    assert (folder / "README.md").read_text(encoding="utf-8") == str(render_card(push))
    code = MODEL_CODE_FILES[config["model_type"]]
    for name in code:  # what a Hub user runs as remote code is exactly the tested package code
        assert (folder / name).read_bytes() == (CODE_ROOT / config["model_type"] / name).read_bytes(), name
    assert json.loads((folder / "config.json").read_text()) == {**config, "auto_map": AUTO_MAPS[config["model_type"]],
                                                               "custom_pipelines": CUSTOM_PIPELINES[config["model_type"]]}
    files = checkpoint_files(source)
    for name in files:
        if name != "config.json":
            assert (folder / name).read_bytes() == (source / name).read_bytes(), name
    # Relative paths of every file (a local, git-ignored onnx/ export is part of the checkpoint folder's files).
    assembled = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert assembled == sorted([*files, *code, "README.md"])


@pytest.mark.parametrize("push", CONFIGS, ids=IDS)
def test_card_metadata_parses_and_round_trips(push, assembled_zoo):
    card = _card(push, assembled_zoo)
    data = card.data
    # The project's license (pyproject.toml: license = { text = "Apache-2.0" }) as a Hub license id.
    license_id = re.search(r'^license = \{ text = "([^"]+)" \}', (ROOT / "pyproject.toml").read_text(), re.M)[1].lower()
    assert data.library_name == "transformers" and data.license == push.license == license_id
    assert data.pipeline_tag == _pipeline_tag(push)
    assert data.datasets == [push.dataset] and data.metrics == ["accuracy"]
    assert set(COMMON_TAGS) | {*push.tags} <= set(data.tags) and NO_PIPELINE not in data.tags
    assert data.pipeline_tag in data.tags or data.pipeline_tag == NO_PIPELINE
    assert data.model_name == push.repo_name
    # Round trip: the YAML the card writes parses back to the same metadata.
    assert ModelCard(str(card)).data.to_dict() == data.to_dict()
    widget = data.to_dict().get("widget")
    assert bool(widget) == (data.pipeline_tag != NO_PIPELINE)  # no pipeline, no widget
    for example in widget or []:  # image examples are files of this repo; text examples carry their text
        assert example.get("text") or (example["src"].startswith(f"https://huggingface.co/{push.repo_id}/resolve/")
                                       and (push.folder_path / example["src"].rsplit("/", 1)[1]).is_file()), example


@pytest.mark.parametrize("push", CONFIGS, ids=IDS)
def test_model_index_is_exactly_the_results_json(push, assembled_zoo):
    card, results = _card(push, assembled_zoo), _results(push)
    by_point = {result.metric_config: result for result in card.data.eval_results}
    assert len(card.data.eval_results) == len(by_point) == len(results["results"])  # one per operating point
    for row in results["results"]:
        result = by_point[operating_point_config(row)]
        assert result.metric_type == "accuracy" and result.metric_value == row["accuracy"]
        assert (result.dataset_type, result.dataset_split) == (results["dataset"], results["split"])
        # The task measured; LRA Image (pipeline tag "other") is image classification on CIFAR-10.
        assert result.task_type == (card.data.pipeline_tag if card.data.pipeline_tag != NO_PIPELINE
                                    else "image-classification")
    assert check_model_index(card, results) == []


def test_model_index_check_reports_a_number_that_disagrees(assembled_zoo):
    push = CONFIGS[0]
    card, results = _card(push, assembled_zoo), _results(push)
    card.data.eval_results[0].metric_value += 0.01
    del results["results"][-1]
    problems = check_model_index(card, results)
    assert any("the results JSON says" in problem for problem in problems), problems
    assert any("does not measure" in problem for problem in problems), problems


@pytest.mark.parametrize("push", MIMOCONV, ids=MIMOCONV_IDS)
def test_body_quotes_the_measurements(push, assembled_zoo):
    text, results = _card(push, assembled_zoo).text, _results(push)
    for row in results["results"]:
        line = next(line for line in text.splitlines() if line.startswith(f"| {row['operating_point']} |"))
        assert f"{100 * row['accuracy']:.2f}%" in line and f"{row['images_per_s']}" in line, line
    hardware = results["hardware"]
    assert f"measured on {hardware['cpu']}" in text and hardware["torch"] in text
    assert f"with {hardware['threads']} thread" + ("s" if hardware["threads"] != 1 else "") + "," in text
    epochs = json.loads((push.folder_path / "training_args.json").read_text())["epochs"]
    assert f"({epochs} epoch" + ("s" if epochs != 1 else "") + " on a CPU)" in text and "(s)" not in text
    assert "JPEG" in text and results["data_note"] in text
    assert "accuracy_throughput.png" in text and (push.folder_path / "accuracy_throughput.png").is_file()
    assert f'repo_id, revision = "{push.repo_id}", "{push.revision}"' in text
    assert "trust_remote_code=True" in text and "AutoModelForImageClassification" in text
    assert "arXiv" in text and "2312.02829" in text and "@inproceedings" in text


@pytest.mark.parametrize("push", MIMOFORMER, ids=MIMOFORMER_IDS)
def test_mimoformer_body_quotes_the_measurements(push, assembled_zoo):
    from mimo_hf.hub.card_mimoformer import training_segments

    text, results = _card(push, assembled_zoo).text, _results(push)
    baseline = results["baseline"]
    for row in results["results"]:
        line = next(line for line in text.splitlines() if line.startswith(f"| {row['grid']} | {row['inputs_per_group']} |"))
        assert f"{100 * row['accuracy']:.2f}%" in line and f"| {row['sequences_per_s']} |" in line, line
        if baseline:
            assert f"{row['speedup_vs_baseline']:.2f}x" in line, line
    if baseline:
        line = next(line for line in text.splitlines() if line.startswith("| Performer baseline"))
        assert f"{100 * baseline['accuracy']:.2f}%" in line and f"| {baseline['sequences_per_s']} |" in line, line
        full = next(row for row in results["results"] if row["grid"] == results["grid"])
        if full["accuracy"] < baseline["accuracy"]:  # the limitation, in numbers, only where the table shows it
            assert f"**{100 * baseline['accuracy']:.2f}%** for the Performer" in text
            # ...and the grid faster than the Performer that loses least, computed here from the JSON
            faster = [row for row in results["results"] if row["grid"] != "1x1" and row["speedup_vs_baseline"] > 1]
            if faster:
                best = max(faster, key=lambda row: row["accuracy"])
                points = 100 * (best["accuracy"] - baseline["accuracy"])
                assert (f"the {best['grid']} grid loses least: {100 * best['accuracy']:.2f}% ({points:+.2f} points) "
                        f"at {best['speedup_vs_baseline']:.2f}x the baseline's sequences/s") in " ".join(text.split())
        else:
            assert "Below the Performer baseline" not in text
    # Where each number was measured: accuracy on the GPU (the first text zoo) or the CPU, throughput on this CPU.
    if results["hardware"].get("gpu"):
        assert f"measured on an {results['hardware']['gpu']}" in text and "test accuracy (GPU)" in text
    else:
        assert f"measured on {results['hardware']['cpu']}" in text and "test accuracy (CPU)" in text
        assert "NVIDIA" not in text  # a CPU-trained checkpoint's card tells no GPU story
        assert f"python scripts/train_zoo.py --runs-dir ../runs/zoo --only {push.folder_path.name}" in text
    cpu = results["throughput_hardware"]
    threads = f"{cpu['threads']} thread" + ("s" if cpu["threads"] != 1 else "")
    assert f"measured on {cpu['cpu']} with {threads}" in text and "sequences/s (CPU)" in text
    assert results["command"] in text and results["throughput_command"] in text
    # Steps reached against --max-steps, and the wall-clock segments, from the history.
    history = json.loads((push.folder_path / "metrics_history.json").read_text())
    args = json.loads((push.folder_path / "training_args.json").read_text())
    assert f"Steps reached: {history[-1]['step']} of {args['max_steps']}" in text
    segments = training_segments(history)
    if len(segments) > 1:  # a queue run cut by the end of a session and continued with --resume latest
        times = f"{len(segments) - 1} time" + ("s" if len(segments) != 2 else "")
        assert f"resumed {times} (`--resume latest`)" in text
    # Every zoo folder comes from the CPU queue's full schedules, which its card names.
    assert not args.get("max_minutes") and "scripts/train_zoo.py" in text and "NVIDIA" not in text
    assert f'repo_id, revision = "{push.repo_id}", "{push.revision}"' in text
    assert "trust_remote_code=True" in text and "AutoModelForSequenceClassification" in text
    assert "arXiv" in text and "2312.02829" in text and "@inproceedings" in text
    if results["task"] == "listops" and "--preset cpu" in results["dataset"]:
        assert "not\ncomparable with LRA ListOps scores" in text
    if results["task"] == "image":
        assert "JPEG" in text and "pipeline(" not in text
    else:
        assert 'pipeline("text-classification"' in text and 'padding="max_length"' in text


@pytest.mark.parametrize("push", MIMOFORMER, ids=MIMOFORMER_IDS)
def test_mimoformer_training_command_reproduces_training_args(push, assembled_zoo):
    from mimo_hf.training.recipes import MIMOFormerRecipe

    args = json.loads((push.folder_path / "training_args.json").read_text())
    command = MIMOFormerRecipe.from_record(args).command()
    assert f"```bash\n{command}\n```" in _card(push, assembled_zoo).text
    parsed = vars(MIMOFormerRecipe.from_flags(shlex.split(command)[2:]))
    assert {key: parsed[key] for key in args} == args


def test_listops_presets_drive_the_generator_script_and_the_cards(assembled_zoo):
    import importlib.util

    from mimo_hf.data.listops import LISTOPS_PRESETS

    spec = importlib.util.spec_from_file_location("generate_listops", ROOT / "scripts" / "generate_listops.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for name, preset in LISTOPS_PRESETS.items():
        parsed = script.parse_args(["--preset", name, "--output-dir", "x"])
        assert [getattr(parsed, k) for k in ("train_size", "validation_size", "test_size", "min_length", "max_length")] \
            == [preset.train_size, preset.validation_size, preset.test_size, preset.min_length, preset.max_length]
    listops_cards = [push for push in MIMOFORMER if _results(push)["task"] == "listops"]
    assert listops_cards
    for push in listops_cards:
        preset = LISTOPS_PRESETS[next(name for name in LISTOPS_PRESETS if f"--preset {name}" in _results(push)["dataset"])]
        text = _card(push, assembled_zoo).text
        assert preset.title in text and f"{preset.train_size:,} / {preset.validation_size:,} / {preset.test_size:,}" in text


TEXT_CARDS = [push for push in MIMOFORMER if _results(push)["task"] == "text"]


@pytest.mark.parametrize("push", TEXT_CARDS, ids=[push.path.stem for push in TEXT_CARDS])
def test_text_card_names_its_length_and_never_claims_lra_text_at_another(push, assembled_zoo):
    """LRA Text reads 4,000 bytes; a Text-1k card says it is not comparable, an LRA Text card says "as in LRA"."""
    length = _results(push)["sequence_length"]
    text = _card(push, assembled_zoo).text
    assert f"truncated to the first {length:,} bytes" in text
    assert ("not comparable with LRA Text scores" in text) == (length != 4000) != ("as in LRA." in text)
    assert ("**LRA Text**" in text) == (length == 4000)


SHARED_CIFAR10 = ROOT.parent / "shared" / "data" / "cifar10"
TINY_IMAGE_RUN = ["--task", "image", "--data-dir", str(SHARED_CIFAR10), "--max-train-samples", "32", "--validation-size", "100",
                  "--max-eval-samples", "16", "--max-steps", "2", "--warmup-steps", "1", "--grid-warmup-steps", "0",
                  "--batch-size", "8", "--eval-every", "2", "--hidden-size", "16", "--num-attention-heads", "2",
                  "--head-dim", "8", "--intermediate-size", "16", "--num-random-features", "8", "--num-hidden-layers", "1",
                  "--attention-type", "mimo_att", "--mimo-m", "2", "--mimo-n", "2", "--num-threads", "1"]


@pytest.fixture(scope="module")
def lra_image_card(tmp_path_factory):
    """The card of a user's own (tiny) LRA Image run, trained and evaluated by the scripts: the zoo has no
    LRA Image checkpoint (issue 10), but the card template's pixel-id route is still what such a run gets."""
    from mimo_hf.hub.export import assemble
    from mimo_hf.hub.push_config import load_push_config
    from mimo_hf.training.mimoformer import train
    from mimo_hf.training.recipes import MIMOFormerRecipe

    tmp = tmp_path_factory.mktemp("lra-image-run")
    train(MIMOFormerRecipe.from_flags(TINY_IMAGE_RUN + ["--output-dir", str(tmp / "run")]))
    evaluate = runpy.run_path(str(ROOT / "scripts" / "evaluate_mimoformer.py"))["main"]
    evaluate(["--model", str(tmp / "run" / "hub"), "--max-eval-samples", "16", "--batch-size", "8", "--no-throughput",
              "--output-dir", str(tmp / "run" / "hub"), "--results-file", "eval_results.json"])
    (tmp / "run" / "push.yaml").write_text("repo_id: someone/tiny-lra-image\nfolder: hub\ndataset: uoft-cs/cifar10\n"
                                           "license: apache-2.0\ntags: []\nresults: eval_results.json\nprivate: true\n"
                                           "revision: v1\n")
    push = load_push_config(tmp / "run" / "push.yaml")
    return push, ModelCard.load(assemble(push, tmp / "assembled", replace_generated=True) / "README.md")


@pytest.mark.skipif(not SHARED_CIFAR10.is_dir(), reason="needs ../shared/data/cifar10")
def test_lra_image_card_has_no_pipeline_and_its_pixels_are_the_training_pixels(lra_image_card):
    """An LRA Image model reads pixel ids and has no tokenizer: no pipeline tag, no widget; the numpy
    conversion its card shows equals mimo_hf.data.images.rgb_to_grayscale (training)."""
    import io

    import pyarrow.parquet as pq
    import torch
    from PIL import Image

    from mimo_hf.data.images import CIFAR10_SAMPLE, rgb_to_grayscale

    push, card = lra_image_card
    assert _pipeline_tag(push) == NO_PIPELINE == card.data.pipeline_tag and not card.data.get("widget")
    code = _code_blocks(card.text, "python")[0]
    source = re.search(r"^def pixel_ids\(image\):\n(?:    .*\n)+", code, flags=re.M).group(0)
    namespace = {}
    exec("import numpy as np\n" + source, namespace)
    images = [Image.open(io.BytesIO(row["bytes"])).convert("RGB")
              for row in pq.read_table(CIFAR10_SAMPLE, columns=["img"]).column("img").to_pylist()[:64]]
    ours = np.stack([namespace["pixel_ids"](image) for image in images])
    rgb = torch.from_numpy(np.stack([np.asarray(image) for image in images])).permute(0, 3, 1, 2).contiguous()
    assert np.array_equal(ours, rgb_to_grayscale(rgb).reshape(len(images), -1).numpy())


def test_mimoconv_card_names_the_stem_and_the_activation_it_was_built_with(tmp_path):
    """The card says which activation the checkpoint uses (config.json), and why where it is not the paper's."""
    import dataclasses

    push = next(push for push in MIMOCONV if json.loads((push.folder_path / "config.json").read_text())["binding"] != "none")
    folder = tmp_path / "relu"
    shutil.copytree(push.folder_path, folder)
    config = json.loads((folder / "config.json").read_text())
    own = render_card(push).text
    stem = int(16 * config["initial_width"])
    assert f"a {stem}-channel stem per image and {config['activation'].replace('prelu', 'PReLU').replace('relu', 'ReLU')} activations" in own
    (folder / "config.json").write_text(json.dumps({**config, "activation": "relu"}))
    text = render_card(dataclasses.replace(push, folder=str(folder))).text
    assert f"a {stem}-channel stem per image and ReLU activations" in text and "the paper's MIMOConv uses PReLU" in text
    (folder / "config.json").write_text(json.dumps({**config, "activation": "prelu"}))
    assert "the paper's MIMOConv uses PReLU" not in render_card(dataclasses.replace(push, folder=str(folder))).text


def test_rendering_refuses_unknown_template_variables_and_architectures(tmp_path):
    import dataclasses

    push = MIMOCONV[0]
    template = tmp_path / "typo.md"
    template.write_text(push.template_path.read_text().replace("{{ title }}", "{{ titel }}"))
    with pytest.raises(ValueError, match=r"variables nobody provides: \['titel'\]"):
        render_card(dataclasses.replace(push, card_template=str(template)))

    folder = tmp_path / "other"
    shutil.copytree(push.folder_path, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "newformer"}))
    with pytest.raises(ValueError, match="no model card for model_type 'newformer'"):
        render_card(dataclasses.replace(push, folder=str(folder)))


def _quoted_commands(text):
    """Commands the card tells a user to run: lines of ```bash blocks and inline `bash|python scripts/...`."""
    lines = [line for block in _code_blocks(text, "bash") for line in block.splitlines() if line.strip()]
    return lines + re.findall(r"`((?:bash|python) scripts/[^`]+)`", text)


def _command_words(command):
    """The words of a quoted command without its leading environment assignments (`TASKS="..." bash ...`)."""
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        words.pop(0)
    return words


_HELP = {}


def _help(script, capsys):
    if script not in _HELP:
        argv = sys.argv
        sys.argv = [script, "--help"]
        try:
            with pytest.raises(SystemExit) as exit_info:
                runpy.run_path(str(ROOT / script), run_name="__main__")
        finally:
            sys.argv = argv
        assert exit_info.value.code == 0
        _HELP[script] = capsys.readouterr().out
    return _HELP[script]


@pytest.mark.parametrize("push", CONFIGS, ids=IDS)
def test_every_quoted_command_exists(push, capsys, assembled_zoo):
    commands = _quoted_commands(_card(push, assembled_zoo).text)
    assert any("scripts/train_" in c for c in commands) and any("scripts/evaluate_" in c for c in commands)
    for command in commands:
        words = _command_words(command)
        assert words[0] in ("python", "bash") and words[1].startswith("scripts/"), command
        assert (ROOT / words[1]).is_file(), command
        if words[0] == "python":
            usage = _help(words[1], capsys)
            for flag in (word.split("=")[0] for word in words[2:] if word.startswith("--")):
                assert re.search(rf"{re.escape(flag)}\b", usage), (flag, words[1])


@pytest.mark.parametrize("push", MIMOCONV, ids=MIMOCONV_IDS)
def test_training_command_reproduces_training_args(push, assembled_zoo):
    from mimo_hf.training.recipes import MIMOConvRecipe

    args = json.loads((push.folder_path / "training_args.json").read_text())
    command = MIMOConvRecipe.from_record(args).command()
    assert f"```bash\n{command}\n```" in _card(push, assembled_zoo).text
    parsed = vars(MIMOConvRecipe.from_flags(shlex.split(command)[2:]))
    # Arguments the parser gained after this run take their defaults, which is what the run used.
    assert {key: parsed[key] for key in args} == args


@pytest.mark.parametrize("push", MIMOCONV, ids=MIMOCONV_IDS)
def test_widget_images_are_the_shipped_cifar10_samples(push):
    from mimo_hf.hub.card_mimoconv import _sample_image, cifar10_widget_samples
    from PIL import Image

    config = json.loads((push.folder_path / "config.json").read_text())
    samples = cifar10_widget_samples(config["id2label"])
    assert [name for name, _, _ in samples] == ["example_cat.png", "example_ship.png"]
    for name, _, row in samples:
        stored = np.asarray(Image.open(push.folder_path / name).convert("RGB"))
        assert stored.shape == (32, 32, 3) and np.array_equal(stored, np.asarray(_sample_image(row))), name


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, assembled_zoo):
    """Every zoo folder's Hub folder as its Hub repo in a pre-filled HF cache: snapshot plus refs/main
    and the pinned revision tag, so the quickstart resolves `repo_id` at `revision` with HF_HUB_OFFLINE=1."""
    cache = tmp_path_factory.mktemp("hf_hub_cache")
    for push in CONFIGS:
        repo = cache / ("models--" + push.repo_id.replace("/", "--"))
        shutil.copytree(assembled_zoo[push.folder_path.name], repo / "snapshots" / SNAPSHOT)
        (repo / "refs").mkdir()
        for ref in ("main", push.revision):
            (repo / "refs" / ref).write_text(SNAPSHOT)
    return cache


def test_quickstarts_run_offline_without_mimo_hf(hub_cache, tmp_path, assembled_zoo):
    """The quickstart block of every card, unchanged, in ONE fresh Python where mimo_hf is blocked."""
    scripts = []
    for push in CONFIGS:
        text = _card(push, assembled_zoo).text
        quickstart = text[text.index("## Quickstart"):]
        code = _code_blocks(quickstart, "python")[0]
        assert f'"{push.repo_id}"' in code and "revision=revision" in code
        path = tmp_path / f"quickstart_{push.path.stem.replace('-', '_')}.py"
        path.write_text(code)
        scripts.append(str(path))
    driver = tmp_path / "driver.py"
    driver.write_text("import runpy, sys\n"
                      f"for script in {scripts!r}:\n"
                      "    print('== ' + script, flush=True)\n"
                      "    runpy.run_path(script, run_name='__main__')\n"
                      "assert not [m for m in sys.modules if m.startswith('mimo_hf')]\n")
    proc = run_isolated(["exec", str(driver)], tmp_path, timeout=600, HF_HUB_CACHE=hub_cache)
    assert proc.returncode == 0, proc.stderr[-4000:]
    outputs = proc.stdout.split("== ")[1:]
    assert len(outputs) == len(CONFIGS)
    for push, output in zip(CONFIGS, outputs):
        if push in MIMOFORMER:
            labels = json.loads((push.folder_path / "config.json").read_text())["id2label"].values()
            for row in _results(push)["results"]:  # one line "MxN [label]" per grid of the table
                match = re.search(rf"^{row['grid']} \[(.*)\]$", output, flags=re.M)
                assert match and match.group(1).strip("'") in labels, (push.repo_id, row["grid"], output)
            assert ("'score'" in output) == (_pipeline_tag(push) != NO_PIPELINE)  # the pipeline's output
            continue
        if push not in MIMOCONV:
            continue  # it ran without error; what it prints is its template's business
        labels = json.loads((push.folder_path / "config.json").read_text())["id2label"].values()
        points = [row["operating_point"] for row in _results(push)["results"]]
        for k in points:  # one line "k [label, label]" per operating point
            match = re.search(rf"^{k} \[(.*)\]$", output, flags=re.M)
            assert match, (push.repo_id, k, output)
            assert {label.strip("' ") for label in match.group(1).split(",")} <= set(labels)
        assert "'score'" in output  # the pipeline's output
