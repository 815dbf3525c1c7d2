"""Long training campaigns as a queue of resumable runs, one at a time.

A run is a training command with its own output folder. The queue runs them in order: a run whose
Hub-ready folder (`<output-dir>/hub`) records the end of its schedule is finished and skipped, a run
with epoch or step checkpoints is continued with `--resume latest`, any other run starts fresh. (A
MIMOFormer run exports its best checkpoint to `hub/` during training, so the folder's existence alone
does not mean the run ended.) So the same command picks a campaign up wherever the last session
left it (a session's processes end when it stops).

Runs outlive machines too. The output folders live outside git and a new machine starts without them,
so two committed folders stand in for them:
- `zoo_dir` (zoo/<name>): a run whose committed folder records the end of its schedule and this very
  recipe (its `training_args.json`) is finished, whatever the output folder holds;
- `carry_dir` (campaign/<name>): while a run trains, the queue copies its newest complete checkpoint
  there, without pickles, with the run's recipe record; a machine without the output folder's checkpoints
  starts from that copy. Committing the carry folder at the end of a session makes a lost machine cost at most the
  epochs since that commit instead of the run.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mimo_hf.training.engine import (CHECKPOINT_DIR, PATH_SETTINGS, RECIPE_RECORD, latest_checkpoint, recipe_differences,
                                     resolved_paths)
from mimo_hf.training.portable_checkpoint import from_portable, read_portable, to_portable

# Paths of a recipe record stored relative to the working folder in a carried copy (the data paths are compared
# on resume; the run folders are where the run executes and may differ).
CARRIED_PATHS = (*PATH_SETTINGS, "output_dir", "checkpoint_dir")
CARRY_POLL_SECONDS = 30  # how often a running run's checkpoints are looked at (an epoch takes minutes)


def _copy_record(source_folder, target_folder, convert_path):
    """Copy the recipe record (if any) with its paths passed through `convert_path`."""
    source = Path(source_folder) / RECIPE_RECORD
    if source.is_file():
        record = json.loads(source.read_text())
        for key in CARRIED_PATHS:
            if record["recipe"].get(key):
                record["recipe"][key] = convert_path(record["recipe"][key])
        (Path(target_folder) / RECIPE_RECORD).write_text(json.dumps(record, indent=2))


def _count(checkpoint):
    """The epoch or step count of a checkpoint folder (`epoch_12` -> 12), -1 for None."""
    return -1 if checkpoint is None else int(CHECKPOINT_DIR.match(Path(checkpoint).name).group(1))


def schedule_ended(folder):
    """Whether an exported run folder records the end of its schedule: the last record of
    `metrics_history.json` is the last epoch (`epochs` in `training_args.json`) or step (`max_steps`), or
    a time budget ended it."""
    folder = Path(folder)
    history_file, args_file = folder / "metrics_history.json", folder / "training_args.json"
    if not (history_file.is_file() and args_file.is_file()):
        return False
    history, recipe = json.loads(history_file.read_text()), json.loads(args_file.read_text())
    if not history:
        return False
    last = history[-1]
    if last.get("stopped_by") == "time_budget":
        return True
    if recipe.get("epochs") is not None and "epoch" in last:
        return last["epoch"] >= recipe["epochs"]
    if recipe.get("max_steps") is not None and "step" in last:
        return last["step"] >= recipe["max_steps"]
    raise ValueError(f"{folder}: cannot tell whether the run ended (no epochs / max_steps in training_args.json "
                     "matching its metrics_history.json)")


@dataclass
class QueuedRun:
    name: str
    script: str  # path of the training script
    arguments: list = field(default_factory=list)  # its flags, without --output-dir / --resume
    output_dir: str = ""
    recipe_class: type = None  # MIMOConvRecipe / MIMOFormerRecipe: parses `arguments` (needed for zoo_dir)
    zoo_dir: str = None  # the committed folder of the finished run (zoo/<name>)
    carry_dir: str = None  # the committed copy of its newest checkpoint while it trains (campaign/<name>)

    @property
    def finished(self):
        """The run reached the end of its schedule in its output folder (`<output-dir>/hub`)."""
        return schedule_ended(Path(self.output_dir) / "hub")

    def recipe_differences(self, folder):
        """[(flag, these flags' value, the folder's value)] between the recipe of `arguments` and the
        `training_args.json` of an exported run folder (relative paths there are relative to the folder the
        run started in, which is the queue's working folder, the repository root); [] without a recipe_class."""
        if self.recipe_class is None:
            return []
        record = json.loads((Path(folder) / "training_args.json").read_text())
        return recipe_differences(self.recipe, record, resolved_paths(record, os.getcwd()), str(folder))

    @cached_property
    def recipe(self):
        """The recipe `arguments` give (parsed once: the queue asks several times)."""
        return self.recipe_class.from_flags([*self.arguments, "--output-dir", self.output_dir])

    def committed_in_zoo(self):
        """`zoo_dir` holds this run finished: its records reach the end of the schedule and its
        `training_args.json` is the recipe these flags give."""
        if not (self.zoo_dir and self.recipe_class) or not schedule_ended(self.zoo_dir):
            return False
        return not self.recipe_differences(self.zoo_dir)

    def status(self):
        """What the queue does with the run: "finished" or "in zoo" (skipped: its output folder, or its
        committed zoo folder, records the end of this recipe's schedule), "refused" (its output folder holds a
        finished run of another recipe), "carried" (continues from the carried checkpoint, later than any of
        this machine's), "resumes" (from this machine's newest checkpoint) or "starts"."""
        if self.finished:
            return "refused" if self.recipe_differences(Path(self.output_dir) / "hub") else "finished"
        if self.committed_in_zoo():
            return "in zoo"
        if _count(self.carried_checkpoint()) > _count(latest_checkpoint(str(self.checkpoint_folder))):
            return "carried"
        return "resumes" if self.has_checkpoint() else "starts"

    @property
    def checkpoint_folder(self):
        return Path(self.output_dir) / "checkpoints"

    def has_checkpoint(self):
        return latest_checkpoint(str(self.checkpoint_folder)) is not None

    def command(self):
        cmd = [sys.executable, self.script, *self.arguments, "--output-dir", self.output_dir]
        return cmd + (["--resume", "latest"] if self.has_checkpoint() or self.carried_checkpoint() else [])

    def carried_checkpoint(self):
        """The checkpoint folder in `carry_dir`, or None."""
        return latest_checkpoint(str(self.carry_dir)) if self.carry_dir else None

    def carry(self):
        """Copy the newest complete checkpoint and the recipe record into `carry_dir` without pickles
        (mimo_hf/training/portable_checkpoint.py), replacing what is there (through a staging folder, so an
        interrupted copy leaves the previous one). The record's paths are stored relative to the working
        folder (they are absolute in the run's own record). Returns the new copy, or None when there was
        nothing newer to carry."""
        latest = latest_checkpoint(str(self.checkpoint_folder))
        if not self.carry_dir or latest is None:
            return None
        carry = Path(self.carry_dir)
        if _count(self.carried_checkpoint()) >= _count(latest):
            return None  # the copy is this checkpoint already, or a later one (made on another machine)
        staging = carry.with_name(carry.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        to_portable(latest, staging / Path(latest).name)
        _copy_record(self.checkpoint_folder, staging, os.path.relpath)
        shutil.rmtree(carry, ignore_errors=True)
        os.replace(staging, carry)
        return carry / Path(latest).name

    def restore_carried(self):
        """On a machine without the run's checkpoints, or with older ones (the run went on elsewhere): turn
        the carried one back into an `accelerate` checkpoint in the output folder (and the record, its paths
        made absolute again), so `--resume latest` continues from it. Returns the restored checkpoint or None."""
        carried = self.carried_checkpoint()
        if carried is None or _count(latest_checkpoint(str(self.checkpoint_folder))) >= _count(carried):
            return None
        self.checkpoint_folder.mkdir(parents=True, exist_ok=True)
        target = self.checkpoint_folder / Path(carried).name
        from_portable(carried, target)
        _copy_record(self.carry_dir, self.checkpoint_folder, os.path.realpath)
        return target

    def drop_carried(self):
        if self.carry_dir and Path(self.carry_dir).exists():
            shutil.rmtree(self.carry_dir)


def carried_history(carry_dir):
    """The per-epoch records of the run in `carry_dir` so far (the training state saved in its carried
    checkpoint), or None without a checkpoint."""
    checkpoint = latest_checkpoint(str(carry_dir))
    if checkpoint is None:
        return None
    for path in sorted(Path(checkpoint).glob("custom_checkpoint_*.json")):
        state = read_portable(path)
        if isinstance(state, dict) and {"epoch", "history"} <= state.keys():
            return list(state["history"])
    raise ValueError(f"{checkpoint}: no training state (epoch, history) among its custom_checkpoint_*.json files")


def _train(run, cmd, log):
    """Run the training command, copying each new checkpoint into the run's carry folder as it appears."""
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    while True:
        try:
            returncode = process.wait(timeout=CARRY_POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            pass
        finally:
            if run.carry_dir and (carried := run.carry()) is not None:
                print(f"[{run.name}] carried {carried}", flush=True)
    return returncode


def run_queue(runs, on_finished=None, stop_after=None):
    """Run `runs` (QueuedRun) in order, each to its end, logging to `<output-dir>.log`.

    on_finished(run) is called after a run finishes in this call (e.g. export it to the zoo and commit);
    the run's carry folder is deleted after it.
    stop_after: optional list of run names; the queue stops after the first of them that finishes.
    Raises SystemExit naming the log when a run fails.
    """
    for run in runs:
        status = run.status()
        if status == "refused":
            differences = run.recipe_differences(Path(run.output_dir) / "hub")
            shown = ", ".join(f"--{name.replace('_', '-')} {theirs} (queued: {ours})" for name, ours, theirs in differences)
            sys.exit(f"[{run.name}] {run.output_dir} holds a finished run of another recipe ({shown}): move it "
                     "away or choose another --runs-dir")
        if status == "finished":
            print(f"[{run.name}] finished earlier: skipped", flush=True)
            continue
        if status == "in zoo":
            print(f"[{run.name}] finished earlier ({run.zoo_dir} records this recipe's whole schedule): skipped", flush=True)
            continue
        Path(run.output_dir).mkdir(parents=True, exist_ok=True)
        if (restored := run.restore_carried()) is not None:
            print(f"[{run.name}] continues from the carried checkpoint: {restored}", flush=True)
        cmd = run.command()
        log_path = f"{run.output_dir.rstrip('/')}.log"
        print(f"[{run.name}] {' '.join(cmd)}  (log: {log_path})", flush=True)
        with open(log_path, "a") as log:
            returncode = _train(run, cmd, log)
        if returncode:
            sys.exit(f"[{run.name}] failed (exit code {returncode}); see {log_path}")
        if not run.finished:
            sys.exit(f"[{run.name}] stopped before the end of its schedule (e.g. --stop-after-epochs); the same "
                     f"command continues it; see {log_path}")
        if on_finished is not None:
            on_finished(run)
        run.drop_carried()
        if stop_after and run.name in stop_after:
            print(f"[{run.name}] finished; stopping as asked", flush=True)
            return
