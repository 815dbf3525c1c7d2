"""A card for a user's own small run says only what that run's records hold.

One tiny MIMOConv run trained and evaluated with the real scripts (on the shipped CIFAR-10 sample,
as a train shard and 200 of its rows as a test shard; 64 training images, 100 held out, 40 of them validated,
accuracy without throughput), published from a push config next to it (outside push_configs/).
Its card must not borrow the zoo's facts: no 5,000 held-out images, no throughput hardware, no zoo
scripts or machines, and "most accurate" names the k its own table shows. The dry run validates it
end to end (the load check in a fresh Python without mimo_hf included). The MIMOFormer card is checked
the same way on a zoo folder's records edited into an own run's (CPU accuracy, no baseline, no
throughput), outside zoo/.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mimo_hf.hub.cards import render_card
from mimo_hf.hub.push_config import load_push_config

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "mimo_hf" / "samples" / "cifar10" / "test-00000-of-00001.parquet"
TRAIN = ["--data-dir", "data", "--max-train-samples", "64", "--validation-size", "100", "--max-eval-samples", "40",
         "--depth", "10", "--width", "1", "--initial-width", "1", "--num-superpositions", "2", "--batch-size", "8",
         "--eval-batch-size", "20", "--epochs", "1", "--num-threads", "1", "--output-dir", "run"]
EVALUATE = ["--model", "run/hub", "--data-dir", "data", "--baseline", "none", "--no-throughput", "--batch-size", "100",
            "--threads", "1", "--output-dir", "run/hub", "--results-file", "eval_results.json"]
PUSH = ("repo_id: someone/tiny-mimoconv\nfolder: hub\ndataset: uoft-cs/cifar10\nlicense: apache-2.0\ntags: []\n"
        "results: eval_results.json\nprivate: true\nrevision: v1\n")


def _run(script, args, cwd):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1",
               HF_DATASETS_CACHE=str(cwd / "datasets-cache"))
    env.pop("ACCELERATE_CONFIG_FILE", None)
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The run's folder (`run/`, with `run/hub` and `run/push.yaml`), trained and evaluated by the scripts."""
    tmp = tmp_path_factory.mktemp("small-run")
    (tmp / "data").mkdir()
    import pyarrow.parquet as pq

    # The sample as a tiny data folder: all of it to train on (100 rows held out), its last 200 rows as the test split.
    shutil.copyfile(SAMPLE, tmp / "data" / "train-00000-of-00001.parquet")
    table = pq.read_table(SAMPLE)
    pq.write_table(table.slice(len(table) - 200), tmp / "data" / "test-00000-of-00001.parquet")
    _run("train_mimoconv.py", TRAIN, tmp)
    _run("evaluate_mimoconv.py", EVALUATE, tmp)
    (tmp / "run" / "push.yaml").write_text(PUSH)
    return tmp / "run"


def _text(card):
    return re.sub(r"\s+", " ", card.text)  # sentences wrap anywhere in the template


def test_small_run_card_states_only_what_the_run_recorded(small_run):
    push = load_push_config(small_run / "push.yaml")
    card = render_card(push)
    text = _text(card)
    results = json.loads((small_run / "hub" / "eval_results.json").read_text())
    assert all("images_per_s" not in row for row in results["results"])  # the run measured no throughput
    # Held out, validated and trained on: the run's own sizes, never the zoo's.
    assert "100 training images were held out for validation, of which the first 40 were used" in text
    assert "At most the first 64 of the remaining training images were trained on" in text
    assert not re.search(r"\b5,?000\b|\b50,?000\b", text), "the zoo's split sizes on a card of a small run"
    # Throughput: not measured, so no throughput table column, hardware or speed-up claim.
    assert "Throughput was not measured" in text and "images/s |" not in card.text
    assert results["hardware"]["cpu"] not in text and "fastest" not in text and "speed-up on your hardware" not in text
    # "Most accurate": the k of the highest accuracy in its own table.
    best = max(row["accuracy"] for row in results["results"])
    most = [row["operating_point"] for row in results["results"] if row["accuracy"] == best]
    assert f"In the table above, k = {' and k = '.join(map(str, most))} {'is' if len(most) == 1 else 'are'} the most accurate" in text
    # Nothing from the zoo's story: its scripts, its CPU, its budget.
    for zoo_fact in ("reproduce_zoo.sh", "on a CPU", "the zoo demonstrates"):
        assert zoo_fact not in text, zoo_fact
    assert "32×32 RGB images of 10 classes" in text
    # One epoch is "1 epoch" (the zoo's cards say "240 epochs").
    assert "for 1 epoch;" in text or "for 1 epoch " in text, text
    assert "1 epochs" not in text and "epoch(s)" not in text
    assert "JPEG" in results["data_note"] and results["data_note"] in text  # the shipped sample is JPEG
    # No widget images in the folder: no widget, and the quickstart does not download them.
    assert not card.data.to_dict().get("widget") and "example_cat.png" not in text
    # The training command quoted is the recorded recipe.
    from mimo_hf.training.recipes import MIMOConvRecipe

    args = json.loads((small_run / "hub" / "training_args.json").read_text())
    command = re.search(r"```bash\n(python scripts/train_mimoconv.py .*)\n```", card.text).group(1)
    assert vars(MIMOConvRecipe.from_flags(shlex.split(command)[2:])) == vars(MIMOConvRecipe.from_record(args))


def test_most_accurate_follows_the_table(small_run, tmp_path):
    """Another ranking in the results JSON makes another sentence: nothing is assumed about k = 1."""
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    path = run / "hub" / "eval_results.json"
    results = json.loads(path.read_text())
    for row, accuracy in zip(results["results"], (0.25, 0.5)):
        row["accuracy"] = accuracy
    path.write_text(json.dumps(results))
    text = _text(render_card(load_push_config(run / "push.yaml")))
    assert "In the table above, k = 2 is the most accurate (throughput was not measured)" in text


def test_small_run_publishes_from_its_own_folder(small_run, capsys, monkeypatch):
    """The dry run of push_to_hub.py, from another working directory: every check, the load check too
    (no widget images: the pipeline runs on a synthetic image)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("push_to_hub", ROOT / "scripts" / "push_to_hub.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.chdir(small_run.parent)
    assert script.main(["run/push.yaml", "--dry-run"]) == []
    out = capsys.readouterr().out
    assert "== someone/tiny-mimoconv <- hub (branch main, tag v1, private" in out
    assert "dry run: 1 repo(s) assembled and validated, nothing uploaded" in out


def test_mimoformer_card_of_an_own_run_borrows_nothing_from_the_zoo(tmp_path):
    """A MIMOFormer folder outside zoo/ whose results were measured on a CPU, without a baseline and
    without throughput (the records of a zoo folder, edited to say so): its card names no GPU, no zoo
    machine, budget or script, no Performer comparison and no throughput."""
    source = ROOT / "zoo" / "mimoformer-att-listops-cpu"
    run = tmp_path / "my-listops"
    shutil.copytree(source, run / "hub")
    path = run / "hub" / "eval_results.json"
    results = json.loads(path.read_text())
    for key in ("throughput_hardware", "throughput_device", "throughput_batch_size", "throughput_command"):
        results.pop(key, None)
    results["baseline"] = None
    results["hardware"].pop("gpu", None)  # a CPU-scored zoo folder has none
    results["command"] = "python scripts/evaluate_mimoformer.py --model hub --no-throughput --batch-size 64 --output-dir hub"
    for row in results["results"]:
        for key in ("sequences_per_s", "speedup_vs_baseline"):
            row.pop(key, None)
    path.write_text(json.dumps(results))
    (run / "push.yaml").write_text(PUSH.replace("tiny-mimoconv", "my-listops").replace(
        "uoft-cs/cifar10", json.dumps(results["dataset"])))
    card = render_card(load_push_config(run / "push.yaml"))
    text = _text(card)
    for borrowed in ("GPU", "H200", "Performer baseline", "sequences/s (",
                     "speed-up on your hardware"):
        assert borrowed not in text, borrowed
    assert f"measured on {results['hardware']['cpu']}" in text and "test accuracy (CPU)" in text
    assert "Throughput has not been measured" in text and "in batches of 64" in text
