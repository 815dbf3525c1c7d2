"""Every zoo card is the card rendered from its template and its folder's files, and says only true things.

Checked per push config (one per committed zoo folder): README.md is exactly the freshly rendered
card; its YAML parses with huggingface_hub and round-trips; every model-index number equals the
results JSON; the body quotes the measured numbers; every command it quotes exists and its script
accepts the flags; the training command parses back to training_args.json; the widget images are the
shipped CIFAR-10 samples; and the quickstart runs unchanged, offline, as a Hub user without mimo_hf.
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

from mimo_hf.isolation import run_isolated
from mimo_hf.model_card import COMMON_TAGS, check_model_index, render_card, training_command
from mimo_hf.push_config import load_push_configs

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = load_push_configs(ROOT / "push_configs")
IDS = [push.path.stem for push in CONFIGS]
# The MIMOConv cards' own content (image widgets, CIFAR data, the MIMOConv scripts); a MIMOFormer
# template brings its own tests of that kind, the checks on every card apply to it unchanged.
MIMOCONV = [push for push in CONFIGS if push.card_template == "model_cards/mimoconv.md"]
MIMOCONV_IDS = [push.path.stem for push in MIMOCONV]
PIPELINE_TAGS = {"mimoconv": "image-classification", "mimoformer": "text-classification"}
ZOO_FOLDERS = sorted(p.parent for p in (ROOT / "zoo").glob("*/eval_results.json"))
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


def _card(push):
    return ModelCard.load(push.folder_path / "README.md")


def _results(push):
    return json.loads(push.results_path.read_text())


def _code_blocks(text, language):
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_every_zoo_folder_has_a_push_config():
    published = {push.folder_path.resolve() for push in CONFIGS}
    assert ZOO_FOLDERS and {folder.resolve() for folder in ZOO_FOLDERS} <= published


@pytest.mark.parametrize("push", CONFIGS, ids=IDS)
def test_committed_card_is_the_rendered_card(push):
    committed = (push.folder_path / "README.md").read_text(encoding="utf-8")
    assert committed == str(render_card(push)), "regenerate with: python scripts/write_model_card.py --all"


@pytest.mark.parametrize("push", CONFIGS, ids=IDS)
def test_card_metadata_parses_and_round_trips(push):
    card = _card(push)
    data = card.data
    # The project's license (pyproject.toml: license = { text = "Apache-2.0" }) as a Hub license id.
    license_id = re.search(r'^license = \{ text = "([^"]+)" \}', (ROOT / "pyproject.toml").read_text(), re.M)[1].lower()
    assert data.library_name == "transformers" and data.license == push.license == license_id
    model_type = json.loads((push.folder_path / "config.json").read_text())["model_type"]
    assert data.pipeline_tag == PIPELINE_TAGS[model_type]
    assert data.datasets == [push.dataset] and data.metrics == ["accuracy"]
    assert set(COMMON_TAGS) | {data.pipeline_tag, *push.tags} <= set(data.tags)
    assert data.model_name == push.repo_name
    # Round trip: the YAML the card writes parses back to the same metadata.
    assert ModelCard(str(card)).data.to_dict() == data.to_dict()
    widget = data.to_dict()["widget"]
    assert widget
    for example in widget:  # image examples are files of this repo; text examples carry their text
        assert example.get("text") or (example["src"].startswith(f"https://huggingface.co/{push.repo_id}/resolve/")
                                       and (push.folder_path / example["src"].rsplit("/", 1)[1]).is_file()), example


@pytest.mark.parametrize("push", CONFIGS, ids=IDS)
def test_model_index_is_exactly_the_results_json(push):
    card, results = _card(push), _results(push)
    by_point = {result.metric_config: result for result in card.data.eval_results}
    assert len(card.data.eval_results) == len(by_point) == len(results["results"])  # one per operating point
    for row in results["results"]:
        result = by_point[f"k={row['operating_point']}"]
        assert result.metric_type == "accuracy" and result.metric_value == row["accuracy"]
        assert (result.dataset_type, result.dataset_split) == (results["dataset"], results["split"])
        assert result.task_type == card.data.pipeline_tag
    assert check_model_index(card, results) == []


def test_model_index_check_reports_a_number_that_disagrees():
    push = CONFIGS[0]
    card, results = _card(push), _results(push)
    card.data.eval_results[0].metric_value += 0.01
    del results["results"][-1]
    problems = check_model_index(card, results)
    assert any("the results JSON says" in problem for problem in problems), problems
    assert any("does not measure" in problem for problem in problems), problems


@pytest.mark.parametrize("push", MIMOCONV, ids=MIMOCONV_IDS)
def test_body_quotes_the_measurements(push):
    text, results = _card(push).text, _results(push)
    for row in results["results"]:
        line = next(line for line in text.splitlines() if line.startswith(f"| {row['operating_point']} |"))
        assert f"{100 * row['accuracy']:.2f}%" in line and f"{row['images_per_s']}" in line, line
    hardware = results["hardware"]
    assert f"measured on {hardware['cpu']}" in text and hardware["torch"] in text
    assert "JPEG" in text and results["data_note"] in text
    assert "accuracy_throughput.png" in text and (push.folder_path / "accuracy_throughput.png").is_file()
    assert f'repo_id, revision = "{push.repo_id}", "{push.revision}"' in text
    assert "trust_remote_code=True" in text and "AutoModelForImageClassification" in text
    assert "arXiv" in text and "2312.02829" in text and "@inproceedings" in text


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
def test_every_quoted_command_exists(push, capsys):
    commands = _quoted_commands(_card(push).text)
    assert any("scripts/train_" in c for c in commands) and any("scripts/evaluate_" in c for c in commands)
    for command in commands:
        words = shlex.split(command)
        assert words[0] in ("python", "bash") and words[1].startswith("scripts/"), command
        assert (ROOT / words[1]).is_file(), command
        if words[0] == "python":
            usage = _help(words[1], capsys)
            for flag in (word.split("=")[0] for word in words[2:] if word.startswith("--")):
                assert re.search(rf"{re.escape(flag)}\b", usage), (flag, words[1])


@pytest.mark.parametrize("push", MIMOCONV, ids=MIMOCONV_IDS)
def test_training_command_reproduces_training_args(push):
    from mimo_hf.training import build_arg_parser

    args = json.loads((push.folder_path / "training_args.json").read_text())
    command = training_command(args, build_arg_parser(), "scripts/train_mimoconv.py")
    assert f"```bash\n{command}\n```" in _card(push).text
    parsed = vars(build_arg_parser().parse_args(shlex.split(command)[2:]))
    # Arguments the parser gained after this run take their defaults, which is what the run used.
    assert {key: parsed[key] for key in args} == args


@pytest.mark.parametrize("push", MIMOCONV, ids=MIMOCONV_IDS)
def test_widget_images_are_the_shipped_cifar10_samples(push):
    from mimo_hf.model_card import _sample_image, cifar10_widget_samples
    from PIL import Image

    config = json.loads((push.folder_path / "config.json").read_text())
    samples = cifar10_widget_samples(config["id2label"])
    assert [name for name, _, _ in samples] == ["example_cat.png", "example_ship.png"]
    for name, _, row in samples:
        stored = np.asarray(Image.open(push.folder_path / name).convert("RGB"))
        assert stored.shape == (32, 32, 3) and np.array_equal(stored, np.asarray(_sample_image(row))), name


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """Every zoo folder as its Hub repo in a pre-filled HF cache: snapshot plus refs/main and the
    pinned revision tag, so the quickstart resolves `repo_id` at `revision` with HF_HUB_OFFLINE=1."""
    cache = tmp_path_factory.mktemp("hf_hub_cache")
    for push in CONFIGS:
        repo = cache / ("models--" + push.repo_id.replace("/", "--"))
        shutil.copytree(push.folder_path, repo / "snapshots" / SNAPSHOT)
        (repo / "refs").mkdir()
        for ref in ("main", push.revision):
            (repo / "refs" / ref).write_text(SNAPSHOT)
    return cache


def test_quickstarts_run_offline_without_mimo_hf(hub_cache, tmp_path):
    """The quickstart block of every card, unchanged, in ONE fresh Python where mimo_hf is blocked."""
    scripts = []
    for push in CONFIGS:
        text = _card(push).text
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
        if push not in MIMOCONV:
            continue  # it ran without error; what it prints is its template's business
        labels = json.loads((push.folder_path / "config.json").read_text())["id2label"].values()
        points = [row["operating_point"] for row in _results(push)["results"]]
        for k in points:  # one line "k [label, label]" per operating point
            match = re.search(rf"^{k} \[(.*)\]$", output, flags=re.M)
            assert match, (push.repo_id, k, output)
            assert {label.strip("' ") for label in match.group(1).split(",")} <= set(labels)
        assert "'score'" in output  # the pipeline's output
