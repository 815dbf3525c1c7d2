"""The zoo's training queue: the flags it passes are the recipes the zoo claims, and the queue resumes."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mimo_hf.training.recipes import MIMOConvRecipe, MIMOFormerRecipe
from mimo_hf.training import run_queue as run_queue_module
from mimo_hf.training.engine import RECIPE_RECORD, latest_checkpoint
from mimo_hf.training.run_queue import QueuedRun, run_queue
from mimo_hf.training.zoo_runs import TEXT_RUNS, TRUNK, ZOO_EPOCHS, ZOO_RUNS

ROOT = Path(__file__).resolve().parents[2]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"


def _train_zoo():
    spec = importlib.util.spec_from_file_location("train_zoo", ROOT / "scripts" / "train_zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, capacity, binding, full_capacity_prob", [
    ("wrn16-2-baseline", 1, "none", 1.0), ("mimoconv16-2-n2", 2, "hrr", 1.0), ("mimoconv16-2-n4", 4, "hrr", 1.0),
    ("mimoconv16-2-n4-dynamic", 4, "hrr", 0.8)])
def test_zoo_runs_parse_into_the_recipes_the_zoo_names(name, capacity, binding, full_capacity_prob):
    recipe = MIMOConvRecipe.from_flags(["--data-dir", "x", "--output-dir", "y", *TRUNK, *ZOO_RUNS[name]])
    assert (recipe.depth, recipe.width, recipe.num_superpositions, recipe.binding) == (16, 2, capacity, binding)
    assert recipe.preset == "fast" and recipe.label_smoothing == 0.2 and recipe.mixup_alpha == 0
    assert recipe.full_capacity_prob == full_capacity_prob
    assert recipe.validation_size == 5000  # validation held out of the training split; test never read
    assert recipe.mixed_precision == "bf16"  # the second campaign trains under bf16 autocast (fp32 weights)


def _write_hub(run_dir, training_args, history):
    hub = run_dir / "hub"
    hub.mkdir(parents=True)
    (hub / "training_args.json").write_text(json.dumps(training_args))
    (hub / "metrics_history.json").write_text(json.dumps(history))


def test_a_run_is_finished_when_its_records_reach_the_end_of_its_schedule(tmp_path):
    run = QueuedRun("r", "train.py", [], str(tmp_path / "r"))
    assert not run.finished  # nothing yet
    _write_hub(tmp_path / "r", {"max_steps": 6000}, [{"step": 500}, {"step": 5500}])
    assert not run.finished
    (tmp_path / "r" / "hub" / "metrics_history.json").write_text(json.dumps([{"step": 5500}, {"step": 6000}]))
    assert run.finished
    (tmp_path / "r" / "hub" / "metrics_history.json").write_text(json.dumps([{"step": 700, "stopped_by": "time_budget"}]))
    assert run.finished  # --max-minutes ended it
    epochs = QueuedRun("e", "train.py", [], str(tmp_path / "e"))
    _write_hub(tmp_path / "e", {"epochs": 3}, [{"epoch": 1}, {"epoch": 2}])
    assert not epochs.finished
    (tmp_path / "e" / "hub" / "metrics_history.json").write_text(json.dumps([{"epoch": 3}]))
    assert epochs.finished


def test_train_zoo_prints_each_run_once_and_resumes_those_with_checkpoints(tmp_path, capsys):
    (tmp_path / "mimoconv16-2-n4" / "checkpoints" / "epoch_3").mkdir(parents=True)
    _write_hub(tmp_path / "wrn16-2-baseline", {"epochs": 30}, [{"epoch": 29}, {"epoch": 30}])
    # A MIMOFormer run exports its best checkpoint during training: a hub/ folder mid-run is not the end.
    _write_hub(tmp_path / "performer-text1k", {"max_steps": 6000}, [{"step": 500}, {"step": 3000}])
    (tmp_path / "performer-text1k" / "checkpoints" / "step_3000").mkdir(parents=True)
    runs = _train_zoo().main(["--runs-dir", str(tmp_path), "--print-commands", "--epochs", "7",
                              "--zoo-dir", str(tmp_path / "zoo"), "--carry-dir", str(tmp_path / "campaign")])
    out = capsys.readouterr().out
    assert [r.name for r in runs] == [*ZOO_RUNS, *TEXT_RUNS]
    assert "# wrn16-2-baseline (holds a finished run of another recipe: the queue refuses it)" in out  # not 7 epochs
    assert "# mimoconv16-2-n4 (resumes)" in out
    assert "# mimoconv16-2-n2 (starts)" in out and "# performer-text1k (resumes)" in out
    n4 = next(r for r in runs if r.name == "mimoconv16-2-n4").command()
    assert n4[-2:] == ["--resume", "latest"] and n4[n4.index("--epochs") + 1] == "7"
    assert "--resume" not in next(r for r in runs if r.name == "mimoconv16-2-n2").command()


def test_train_zoo_gives_each_cifar_run_its_own_epochs(tmp_path):
    runs = {r.name: r.command() for r in _train_zoo().main(["--runs-dir", str(tmp_path), "--print-commands"])}
    epochs = {name: int(command[command.index("--epochs") + 1]) for name, command in runs.items() if name in ZOO_RUNS}
    assert epochs == ZOO_EPOCHS and epochs["wrn16-2-baseline"] == 120 and epochs["mimoconv16-2-n4"] == 360
    # MIMOConv gets more epochs than its baseline (the paper's rule: 6x), never fewer.
    assert all(epochs[name] >= epochs["wrn16-2-baseline"] for name in ZOO_RUNS)


@pytest.mark.parametrize("name, attention, grid, grid_warmup, task, length", [
    ("performer-listops-cpu", "performer", (1, 1), 0, "listops", 500),
    ("mimoformer-att-listops-cpu", "mimo_att", (4, 4), 2400, "listops", 500),
    ("mimoformer-attmlp-text1k", "mimo_att_mlp", (2, 2), 0, "text", 1000)])
def test_text_runs_parse_into_the_recipe_of_the_diagnosis(tmp_path, name, attention, grid, grid_warmup, task, length):
    run = next(r for r in _train_zoo().queued_runs(_train_zoo().parse_args(
        ["--runs-dir", str(tmp_path), "--listops-dir", "L", "--imdb-dir", "I", "--only", name])))
    assert run.script.endswith("train_mimoformer.py")
    recipe = MIMOFormerRecipe.from_flags([*run.arguments, "--output-dir", run.output_dir])
    assert (recipe.attention_type, (recipe.mimo_m, recipe.mimo_n), recipe.task, recipe.max_length) == (
        attention, grid, task, length)
    assert recipe.data_dir == ("L" if task == "listops" else "I")
    assert (recipe.hidden_size, recipe.head_dim, recipe.num_random_features, recipe.num_hidden_layers) == (64, 16, 64, 2)
    assert (recipe.lr, recipe.max_steps, recipe.batch_size, recipe.warmup_steps) == (1e-3, 6000, 32, 600)
    assert (recipe.grid_warmup_steps or 0) == grid_warmup


def test_train_zoo_generates_missing_listops_data_before_the_text_runs(tmp_path, monkeypatch):
    train_zoo = _train_zoo()
    calls = []
    monkeypatch.setattr(train_zoo.subprocess, "run", lambda command, check: calls.append(command))
    monkeypatch.setattr(train_zoo, "run_queue", lambda runs, on_finished: None)
    train_zoo.main(["--runs-dir", str(tmp_path), "--listops-dir", str(tmp_path / "lo"), "--only", "performer-listops-cpu"])
    assert len(calls) == 1 and calls[0][1].endswith("generate_listops.py")
    assert calls[0][2:] == ["--preset", "cpu", "--output-dir", str(tmp_path / "lo")]
    calls.clear()
    train_zoo.main(["--runs-dir", str(tmp_path), "--listops-dir", str(tmp_path / "lo"), "--only", "performer-text1k"])
    assert calls == []  # a Text run needs no ListOps data


def test_finished_runs_go_into_the_zoo_with_their_evaluation(tmp_path):
    train_zoo = _train_zoo()
    runs = {r.name: r for r in train_zoo.queued_runs(train_zoo.parse_args(["--runs-dir", str(tmp_path)]))}

    def scripts_of(name):
        return [(c[1], c[c.index("--baseline") + 1] if "--baseline" in c else None)
                for c in train_zoo.zoo_commands(runs[name], "D", 3)]

    assert scripts_of("wrn16-2-baseline")[:3] == [("scripts/export_hub_folder.py", None),
                                                  ("scripts/evaluate_mimoconv.py", "none"), ("scripts/export_hub_folder.py", None)]
    # A new baseline: the MIMOConv folders in the zoo are evaluated again beside it.
    after = train_zoo.zoo_commands(runs["wrn16-2-baseline"], "D", 3)[3:]
    again = [(c[c.index("--model") + 1], c[c.index("--baseline") + 1]) for c in after
             if c[1] == "scripts/evaluate_mimoconv.py" and "--onnx" not in c]
    assert again == [(f"zoo/{name}", "zoo/wrn16-2-baseline") for name in ZOO_RUNS
                     if name != "wrn16-2-baseline" and (ROOT / "zoo" / name / "eval_results.json").is_file()]
    assert again
    assert scripts_of("mimoconv16-2-n4-dynamic")[1] == ("scripts/evaluate_mimoconv.py", "zoo/wrn16-2-baseline")
    assert scripts_of("performer-text1k") == [("scripts/export_hub_folder.py", None), ("scripts/evaluate_mimoformer.py", None)]
    assert scripts_of("mimoformer-att-listops-cpu")[1] == ("scripts/evaluate_mimoformer.py", "zoo/performer-listops-cpu")
    # Evaluations time on the runs' --num-threads, image and text alike.
    for name in ("mimoconv16-2-n2", "performer-text1k"):
        evaluation = train_zoo.zoo_commands(runs[name], "D", 3)[1]
        assert evaluation[evaluation.index("--threads") + 1] == "3"
    export = train_zoo.zoo_commands(runs["mimoconv16-2-n2"], "D", 3)[0]
    assert export[2:] == [str(tmp_path / "mimoconv16-2-n2" / "hub"), "--checkpoint-only", "--output", "zoo/mimoconv16-2-n2"]
    # Text runs come after their task's Performer in the queue: its folder exists when they are evaluated.
    order = list(runs)
    assert order.index("performer-text1k") < order.index("mimoformer-att-text1k")


def test_a_new_baseline_measures_the_deploy_results_that_quote_it_again(tmp_path, monkeypatch):
    """Deploy results quote the baseline's exported models and accuracy: a new baseline is exported and the
    MIMOConv folders with deploy results are measured again beside it; a new MIMOConv gets deploy results when
    the baseline has them (its export made again first: onnx/ folders are not committed)."""
    train_zoo = _train_zoo()
    zoo = tmp_path / "zoo"
    for name, files in (("mimoconv16-2-n4-dynamic", ["eval_results.json", "deploy_results.json"]),
                        ("mimoconv16-2-n4", ["eval_results.json"])):
        (zoo / name).mkdir(parents=True)
        for file in files:
            (zoo / name / file).write_text("{}")
    monkeypatch.setattr(train_zoo, "ROOT", tmp_path)
    runs = {r.name: r for r in train_zoo.queued_runs(train_zoo.parse_args(["--runs-dir", str(tmp_path / "runs"),
                                                                            "--zoo-dir", str(zoo)]))}

    def steps(name):
        return [(c[1], c[c.index("--model") + 1] if "--model" in c else None, "--onnx" in c,
                 c[c.index("--baseline") + 1] if "--baseline" in c else None) for c in train_zoo.zoo_commands(runs[name], "D", 2)]

    baseline_steps = steps("wrn16-2-baseline")
    assert baseline_steps[3:] == [
        ("scripts/evaluate_mimoconv.py", "zoo/mimoconv16-2-n4", False, "zoo/wrn16-2-baseline"),
        ("scripts/evaluate_mimoconv.py", "zoo/mimoconv16-2-n4-dynamic", False, "zoo/wrn16-2-baseline"),
        ("scripts/export_onnx.py", "zoo/wrn16-2-baseline", False, None),
        ("scripts/evaluate_mimoconv.py", "zoo/wrn16-2-baseline", True, "none"),
        ("scripts/export_onnx.py", "zoo/mimoconv16-2-n4-dynamic", False, None),
        ("scripts/evaluate_mimoconv.py", "zoo/mimoconv16-2-n4-dynamic", True, "zoo/wrn16-2-baseline")]
    assert len(steps("mimoconv16-2-n2")) == 3  # the baseline has no deploy results: nothing to compare with
    (zoo / "wrn16-2-baseline").mkdir()
    (zoo / "wrn16-2-baseline" / "deploy_results.json").write_text("{}")
    assert steps("mimoconv16-2-n2")[3:] == [
        ("scripts/export_onnx.py", "zoo/wrn16-2-baseline", False, None),
        ("scripts/export_onnx.py", "zoo/mimoconv16-2-n2", False, None),
        ("scripts/evaluate_mimoconv.py", "zoo/mimoconv16-2-n2", True, "zoo/wrn16-2-baseline")]


def test_run_queue_skips_finished_runs_and_reports_each_new_one(tmp_path):
    # A stand-in training script: writes the Hub folder a finished run has, recording its arguments.
    script = tmp_path / "fake_train.py"
    script.write_text("import json, sys, pathlib\n"
                      "out = pathlib.Path(sys.argv[sys.argv.index('--output-dir') + 1]) / 'hub'\n"
                      "out.mkdir(parents=True)\n"
                      "(out / 'training_args.json').write_text(json.dumps({'epochs': 1, 'argv': sys.argv[1:]}))\n"
                      "(out / 'metrics_history.json').write_text(json.dumps([{'epoch': 1}]))\n")
    runs = [QueuedRun(name, str(script), ["--flag", name], str(tmp_path / name)) for name in ("a", "b", "c")]
    _write_hub(tmp_path / "a", {"epochs": 2}, [{"epoch": 2}])
    finished = []
    run_queue(runs, on_finished=lambda run: finished.append(run.name), stop_after=["b"])
    assert finished == ["b"] and not runs[2].finished  # a skipped, b run, stopped before c
    assert json.loads((tmp_path / "b" / "hub" / "training_args.json").read_text())["argv"][:2] == ["--flag", "b"]


def test_run_queue_names_the_log_of_a_failed_run(tmp_path):
    script = tmp_path / "failing.py"
    script.write_text("import sys; print('boom'); sys.exit(3)\n")
    with pytest.raises(SystemExit, match=r"exit code 3\); see .*x\.log"):
        run_queue([QueuedRun("x", str(script), [], str(tmp_path / "x"))])
    assert "boom" in (tmp_path / "x.log").read_text()


def _zoo_folder(folder, recipe, last_epoch):
    folder.mkdir(parents=True)
    (folder / "training_args.json").write_text(json.dumps(recipe.record()))
    (folder / "metrics_history.json").write_text(json.dumps([{"epoch": e} for e in range(1, last_epoch + 1)]))


def test_a_run_committed_in_the_zoo_with_its_recipe_and_whole_schedule_is_finished(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the queue's working folder: the zoo records paths relative to it
    flags = ["--data-dir", "../shared/data/cifar10", *TRUNK, *ZOO_RUNS["mimoconv16-2-n2"], "--epochs", "5"]

    def queued(zoo_dir, extra=()):
        return QueuedRun("n2", "train.py", [*flags, *extra], str(tmp_path / "runs" / "n2"),
                         recipe_class=MIMOConvRecipe, zoo_dir=str(zoo_dir))

    recipe = MIMOConvRecipe.from_flags([*flags, "--output-dir", "elsewhere"])
    _zoo_folder(tmp_path / "done", recipe, 5)
    _zoo_folder(tmp_path / "short", recipe, 4)
    assert queued(tmp_path / "done").committed_in_zoo()
    assert not queued(tmp_path / "short").committed_in_zoo()  # its history stops before the schedule's end
    assert not queued(tmp_path / "missing").committed_in_zoo()
    # Another recipe (a flag that changes what is computed) is not that run, a run flag is.
    assert not queued(tmp_path / "done", ["--seed", "1"]).committed_in_zoo()
    assert not queued(tmp_path / "done", ["--data-dir", str(tmp_path)]).committed_in_zoo()
    assert queued(tmp_path / "done", ["--num-threads", "1"]).committed_in_zoo()
    assert queued(tmp_path / "done", ["--data-dir", str(CIFAR)]).committed_in_zoo()  # the same folder, spelled absolutely


def _fake_checkpoint(checkpoints, name, data_dir):
    (checkpoints / name).mkdir(parents=True)
    (checkpoints / name / "model.safetensors").write_bytes(os.urandom(64))
    torch.save({"state": {0: {"momentum_buffer": torch.randn(3)}}, "epoch": name}, checkpoints / name / "optimizer.bin")
    (checkpoints / RECIPE_RECORD).write_text(json.dumps({"recipe": {"data_dir": data_dir, "epochs": 9}, "note": "n"}))


def test_carry_copies_the_newest_checkpoint_and_a_new_machine_restores_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    run = QueuedRun("r", "train.py", [], str(tmp_path / "machine1" / "r"), carry_dir=str(tmp_path / "campaign" / "r"))
    assert run.carry() is None and run.restore_carried() is None  # nothing to carry or restore
    _fake_checkpoint(run.checkpoint_folder, "epoch_3", str(tmp_path / "data"))
    _fake_checkpoint(run.checkpoint_folder, "epoch_4", str(tmp_path / "data"))
    carried = run.carry()
    assert carried == tmp_path / "campaign" / "r" / "epoch_4"
    assert sorted(p.name for p in (tmp_path / "campaign" / "r").iterdir()) == ["epoch_4", RECIPE_RECORD]
    assert json.loads((tmp_path / "campaign" / "r" / RECIPE_RECORD).read_text())["recipe"]["data_dir"] == "data"
    assert run.carry() is None  # already there
    assert run.restore_carried() is None  # the machine has its own checkpoints

    other = QueuedRun("r", "train.py", [], str(tmp_path / "machine2" / "r"), carry_dir=run.carry_dir)
    assert "--resume" in other.command()  # it will resume from the carried checkpoint
    restored = other.restore_carried()
    assert restored == other.checkpoint_folder / "epoch_4"
    assert (restored / "model.safetensors").read_bytes() == (run.checkpoint_folder / "epoch_4" / "model.safetensors").read_bytes()
    saved, back = (torch.load(folder / "epoch_4" / "optimizer.bin", weights_only=True)
                   for folder in (run.checkpoint_folder, other.checkpoint_folder))
    assert back["epoch"] == "epoch_4" and torch.equal(back["state"][0]["momentum_buffer"], saved["state"][0]["momentum_buffer"])
    carried_files = [p.name for p in (tmp_path / "campaign" / "r" / "epoch_4").iterdir()]
    assert sorted(carried_files) == ["model.safetensors", "optimizer.bin.json", "optimizer.bin.safetensors"]  # no pickle
    record = json.loads((other.checkpoint_folder / RECIPE_RECORD).read_text())
    assert record["recipe"] == {"data_dir": str(tmp_path / "data"), "epochs": 9}

    _fake_checkpoint(run.checkpoint_folder, "epoch_5", str(tmp_path / "data"))
    assert run.carry().name == "epoch_5"
    assert sorted(p.name for p in (tmp_path / "campaign" / "r").iterdir()) == ["epoch_5", RECIPE_RECORD]

    # The run went on from epoch 4 on machine 2 and was carried there; machine 1 (at epoch 5) comes back.
    _fake_checkpoint(other.checkpoint_folder, "epoch_9", str(tmp_path / "data"))
    assert other.carry().name == "epoch_9"
    assert run.carry() is None  # an older checkpoint never replaces a later copy
    assert run.restore_carried() == run.checkpoint_folder / "epoch_9"  # the later copy is restored over it
    assert latest_checkpoint(str(run.checkpoint_folder)).endswith("epoch_9")


def test_the_queue_carries_checkpoints_while_a_run_trains_and_drops_them_when_it_finishes(tmp_path, monkeypatch):
    monkeypatch.setattr(run_queue_module, "CARRY_POLL_SECONDS", 0.05)
    script = tmp_path / "fake_train.py"
    script.write_text("import json, sys, pathlib, time\n"
                      "out = pathlib.Path(sys.argv[sys.argv.index('--output-dir') + 1])\n"
                      "(out / 'checkpoints' / 'epoch_1').mkdir(parents=True)\n"
                      "time.sleep(1.0)\n"
                      "if '--fail' in sys.argv: sys.exit(3)\n"
                      "(out / 'hub').mkdir()\n"
                      "(out / 'hub' / 'training_args.json').write_text(json.dumps({'epochs': 1}))\n"
                      "(out / 'hub' / 'metrics_history.json').write_text(json.dumps([{'epoch': 1}]))\n")
    failing = QueuedRun("f", str(script), ["--fail"], str(tmp_path / "f"), carry_dir=str(tmp_path / "campaign" / "f"))
    with pytest.raises(SystemExit, match="exit code 3"):
        run_queue([failing])
    assert (tmp_path / "campaign" / "f" / "epoch_1").is_dir()  # kept: the next machine continues from it
    finishing = QueuedRun("g", str(script), [], str(tmp_path / "g"), carry_dir=str(tmp_path / "campaign" / "g"))
    seen = []
    run_queue([finishing], on_finished=lambda run: seen.append((tmp_path / "campaign" / "g" / "epoch_1").is_dir()))
    assert seen == [True] and not (tmp_path / "campaign" / "g").exists()  # carried while it ran, dropped after


@pytest.mark.skipif(not CIFAR.is_dir(), reason="needs ../shared/data/cifar10")
def test_a_run_carried_to_a_new_machine_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    tiny = ["--data-dir", str(CIFAR), "--max-train-samples", "64", "--max-eval-samples", "32", "--depth", "10",
            "--width", "1", "--initial-width", "1", "--num-superpositions", "2", "--batch-size", "8",
            "--eval-batch-size", "16", "--num-threads", "1", "--preset", "fast", "--epochs", "2"]
    script = str(ROOT / "scripts" / "train_mimoconv.py")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    full = subprocess.run([sys.executable, script, *tiny, "--output-dir", str(tmp_path / "full")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr[-3000:]
    carry = str(tmp_path / "campaign" / "run")
    first = QueuedRun("run", script, [*tiny, "--stop-after-epochs", "1"], str(tmp_path / "machine1" / "run"),
                      recipe_class=MIMOConvRecipe, carry_dir=carry)
    with pytest.raises(SystemExit, match="stopped before the end"):
        run_queue([first])
    second = QueuedRun("run", script, tiny, str(tmp_path / "machine2" / "run"), recipe_class=MIMOConvRecipe,
                       carry_dir=carry)
    run_queue([second])
    expected = load_file(tmp_path / "full" / "hub" / "model.safetensors")
    got = load_file(tmp_path / "machine2" / "run" / "hub" / "model.safetensors")
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert "resumed from" in (tmp_path / "machine2" / "run.log").read_text()
    assert not (tmp_path / "campaign" / "run").exists()


def test_the_queue_refuses_an_output_folder_that_holds_a_finished_run_of_another_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    flags = ["--data-dir", "../shared/data/cifar10", *TRUNK, *ZOO_RUNS["wrn16-2-baseline"]]
    old = MIMOConvRecipe.from_flags([*flags, "--epochs", "30", "--output-dir", "x"])
    _zoo_folder(tmp_path / "runs" / "b" / "hub", old, 30)
    longer = QueuedRun("b", "train.py", [*flags, "--epochs", "60"], str(tmp_path / "runs" / "b"), recipe_class=MIMOConvRecipe)
    with pytest.raises(SystemExit, match=r"finished run of another recipe \(--epochs 30 \(queued: 60\)\)"):
        run_queue([longer])


CARRIED = sorted(p.name for p in (ROOT / "campaign").iterdir() if p.is_dir() and not p.name.endswith(".partial")) if (ROOT / "campaign").is_dir() else []


@pytest.mark.parametrize("name", CARRIED)
def test_each_committed_campaign_checkpoint_resumes_its_queued_run(name, tmp_path, monkeypatch):
    """What a new machine's queue would resume: the record is the queued recipe (else the resume is refused)
    and the carried weights load into the model that recipe builds, every tensor shaped as saved."""
    from mimo_hf.training.engine import latest_checkpoint, recipe_differences
    from mimo_hf.training.mimoconv import build_model

    monkeypatch.chdir(ROOT)
    train_zoo = _train_zoo()
    run = next(r for r in train_zoo.queued_runs(train_zoo.parse_args(["--runs-dir", str(tmp_path), "--only", name])))
    assert name in ZOO_RUNS, f"campaign/{name} is not a run of the CIFAR-10 queue"
    record = json.loads((ROOT / "campaign" / name / RECIPE_RECORD).read_text())["recipe"]
    recipe = MIMOConvRecipe.from_flags([*run.arguments, "--output-dir", run.output_dir])
    paths = {"data_dir": os.path.realpath(record["data_dir"])}
    assert recipe_differences(recipe, record, paths) == []
    assert not run.committed_in_zoo()  # a finished run's campaign copy is deleted with its export
    files = [p for p in (ROOT / "campaign" / name).rglob("*") if p.is_file()]
    assert all(p.suffix in (".json", ".safetensors") for p in files), files  # nothing pickled is committed
    checkpoint = Path(latest_checkpoint(str(ROOT / "campaign" / name)))
    state = load_file(checkpoint / "model.safetensors")
    model = build_model(recipe, [str(i) for i in range(10)], 3, 32)
    expected = model.state_dict()
    assert state.keys() == expected.keys()
    assert all(state[k].shape == expected[k].shape for k in state)
    model.load_state_dict(state)
