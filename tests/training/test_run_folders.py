"""Training runs refuse what would overwrite a run or misstate its recipe, naming the flag to change.

- a run without --resume into an output folder that holds a previous run: refused, unless
  --overwrite-output-dir (which deletes that run's checkpoints, Hub folder, logs and record, nothing else);
- --resume with recipe flags that differ from the run's record (run_recipe.json, or a run's
  training_args.json for runs that predate it): refused, each changed flag named with both values;
  extending a run's schedule (--epochs / --max-steps) says that a schedule cannot be extended;
- run flags (RESUME_FREE: --num-threads, --stop-after-*, ...) may differ on a resume;
- a run without any record resumed with other model flags: the differing tensors and the model flags
  are named instead of torch's key dump.
MIMOConv folders are built from records (the refusals happen before any data or weights are read);
MIMOFormer runs for real on tiny ListOps data.
"""

import json
import os
import re
import sys
from pathlib import Path

import pytest

from mimo_hf.data.listops import write_listops_dataset
from mimo_hf.training.engine import RECIPE_RECORD, check_run_folders, remove_previous_run, write_recipe_record
from mimo_hf.training.recipes import MIMOConvRecipe, MIMOFormerRecipe

ROOT = Path(__file__).resolve().parents[2]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
CONV = ["--data-dir", str(CIFAR), "--depth", "10", "--width", "1", "--initial-width", "1", "--num-superpositions", "2",
        "--epochs", "1", "--num-threads", "1"]
FORMER = ["--hidden-size", "16", "--num-attention-heads", "2", "--head-dim", "8", "--intermediate-size", "16",
          "--num-random-features", "8", "--batch-size", "8", "--eval-batch-size", "16", "--warmup-steps", "2",
          "--num-threads", "1", "--task", "listops", "--max-length", "64", "--mimo-m", "2", "--mimo-n", "2",
          "--max-steps", "4", "--eval-every", "2"]


def conv_recipe(out, *extra):
    return MIMOConvRecipe.from_flags([*CONV, "--output-dir", str(out), *extra])


@pytest.fixture
def conv_run(tmp_path):
    """A MIMOConv run folder after one epoch: its record, a checkpoint, a finished Hub folder, logs."""
    out = tmp_path / "run"
    recipe = conv_recipe(out)
    write_recipe_record(recipe, "test")
    (out / "checkpoints" / "epoch_1").mkdir(parents=True)
    (out / "hub").mkdir()
    (out / "hub" / "model.safetensors").write_bytes(b"weights")
    (out / "logs").mkdir()
    (out / "notes.txt").write_text("the user's own file")
    return out


def test_rerun_without_resume_is_refused(conv_run):
    from mimo_hf.training.mimoconv import train

    with pytest.raises(FileExistsError, match=r"holds a previous run .*epoch_1.*--resume latest.*--overwrite-output-dir"):
        train(conv_recipe(conv_run))
    with pytest.raises(ValueError, match="pass one"):
        train(conv_recipe(conv_run, "--resume", "latest", "--overwrite-output-dir"))


def test_the_script_exits_with_the_refusal_not_a_traceback(conv_run, monkeypatch):
    """scripts/train_mimoconv.py as run from the command line (in this process: no second torch import)."""
    import runpy

    script = str(ROOT / "scripts" / "train_mimoconv.py")
    monkeypatch.setattr(sys, "argv", [script, *CONV, "--output-dir", str(conv_run), "--resume", "latest", "--lr", "0.05"])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(script, run_name="__main__")
    message = str(info.value.code)  # sys.exit(message): printed to stderr, exit status 1
    assert message.startswith(f"{script}: error: --resume latest: flags differ") and "--lr 0.05" in message


def test_logs_alone_are_not_a_previous_run(tmp_path):
    (tmp_path / "run" / "logs").mkdir(parents=True)  # e.g. a run killed before its first checkpoint
    assert check_run_folders(conv_recipe(tmp_path / "run")) == []


def test_overwrite_output_dir_deletes_the_previous_run_and_nothing_else(conv_run):
    recipe = conv_recipe(conv_run, "--overwrite-output-dir")
    found = check_run_folders(recipe)
    remove_previous_run(recipe, found, print_fn=lambda *_: None)
    assert sorted(p.name for p in conv_run.iterdir()) == ["checkpoints", "notes.txt"]
    assert list((conv_run / "checkpoints").iterdir()) == []


@pytest.mark.parametrize("flags, named", [
    (["--lr", "0.05"], [r"--lr 0.05 \(the run: 0.2\)"]),
    (["--epochs", "2"], [r"--epochs 2 \(the run: 1\)", "cannot be extended"]),
    (["--depth", "16", "--binding", "mbat"], [r"--binding mbat \(the run: hrr\)", r"--depth 16 \(the run: 10\)"]),
    (["--preset", "fast"], [r"--preset fast \(the run: paper\)", r"--lr-schedule triangular \(the run: onecycle\)"]),
    (["--data-dir", str(ROOT)], [r"--data-dir .* \(the run: .*cifar10\)"]),
])
def test_resume_with_changed_recipe_flags_is_refused_naming_them(conv_run, flags, named):
    from mimo_hf.training.mimoconv import train

    with pytest.raises(ValueError) as info:
        train(conv_recipe(conv_run, "--resume", "latest", *flags))
    message = str(info.value)
    assert "flags differ from the run being resumed" in message and RECIPE_RECORD in message
    for pattern in named:
        assert re.search(pattern, message), (pattern, message)


def test_resume_may_change_run_flags(conv_run, monkeypatch):
    """Threads, checkpoint count, stop points, reporting and the path spelling may differ on a resume."""
    monkeypatch.chdir(conv_run.parent)  # the same folders through relative paths
    recipe = conv_recipe("run", "--resume", "latest", "--num-threads", "2", "--keep-checkpoints", "5",
                         "--stop-after-epochs", "1", "--report-process-weights", "--no-channels-last")
    recipe = type(recipe)(**{**recipe.__dict__, "data_dir": os.path.relpath(CIFAR)})
    assert check_run_folders(recipe) == []


@pytest.fixture(scope="module")
def listops_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("listops")
    write_listops_dataset(str(out), train_size=64, validation_size=16, test_size=16, min_length=10, max_length=60,
                          seed=3, progress=False)
    return out


def test_mimoformer_run_records_its_recipe_refuses_changes_and_resumes_with_other_run_flags(listops_dir, tmp_path,
                                                                                             capsys):
    import torch

    from mimo_hf.training.mimoformer import train

    out = tmp_path / "former"
    threads = torch.get_num_threads()
    assert train(MIMOFormerRecipe.from_flags([*FORMER, "--data-dir", str(listops_dir), "--output-dir", str(out),
                                              "--stop-after-steps", "2"])) is None  # stopped early
    record = json.loads((out / "checkpoints" / RECIPE_RECORD).read_text())["recipe"]
    assert record["max_steps"] == 4 and record["stop_after_steps"] == 2

    def recipe(*extra):
        return MIMOFormerRecipe.from_flags([*FORMER, "--data-dir", str(listops_dir), "--output-dir", str(out), *extra])

    with pytest.raises(FileExistsError, match="--overwrite-output-dir"):
        train(recipe())
    with pytest.raises(ValueError, match=r"--max-steps 8 \(the run: 4\)(.|\n)*cannot be extended"):
        train(recipe("--resume", "latest", "--max-steps", "8"))
    with pytest.raises(ValueError, match=r"--mimo-m 4 \(the run: 2\)"):
        train(recipe("--resume", "latest", "--mimo-m", "4"))

    # Without any record (a run started by an older version) other model flags are named from the weights.
    (out / "checkpoints" / RECIPE_RECORD).unlink()
    (out / "hub" / "training_args.json").unlink()
    with pytest.raises(ValueError, match=r"another architecture than these flags build: .*hidden-size.*training_args"):
        train(recipe("--resume", "latest", "--hidden-size", "32"))

    # The same recipe resumes, with run flags changed (no stop, two threads); the history is complete.
    capsys.readouterr()
    try:
        assert train(recipe("--resume", "latest", "--num-threads", "2")) == str(out / "hub")
    finally:
        torch.set_num_threads(threads)
    assert "resumed from" in capsys.readouterr().out
    history = json.loads((out / "hub" / "metrics_history.json").read_text())
    assert [entry["step"] for entry in history] == [2, 4]
    note = json.loads((out / "checkpoints" / RECIPE_RECORD).read_text())["note"]
    assert "resumed at step 2 from latest (the checkpoint folder had no record" in note
