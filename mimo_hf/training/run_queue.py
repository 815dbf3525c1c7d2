"""Long training campaigns as a queue of resumable runs, one at a time.

A run is a training command with its own output folder. The queue runs them in order: a run whose
Hub-ready folder (`<output-dir>/hub`) records the end of its schedule is finished and skipped, a run
with epoch or step checkpoints is continued with `--resume latest`, any other run starts fresh. (A
MIMOFormer run exports its best checkpoint to `hub/` during training, so the folder's existence alone
does not mean the run ended.) So the same command picks a campaign up wherever the last session
left it (a session's processes end when it stops).
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class QueuedRun:
    name: str
    script: str  # path of the training script
    arguments: list = field(default_factory=list)  # its flags, without --output-dir / --resume
    output_dir: str = ""

    @property
    def finished(self):
        """The run reached the end of its schedule: the last record of `hub/metrics_history.json` is the
        last epoch (`epochs` in `hub/training_args.json`) or step (`max_steps`), or a time budget ended it."""
        hub = Path(self.output_dir) / "hub"
        history_file, args_file = hub / "metrics_history.json", hub / "training_args.json"
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
        raise ValueError(f"{hub}: cannot tell whether the run ended (no epochs / max_steps in training_args.json "
                         "matching its metrics_history.json)")

    def has_checkpoint(self):
        checkpoints = Path(self.output_dir) / "checkpoints"
        return checkpoints.is_dir() and any(p.name.split("_")[0] in ("epoch", "step") and not p.name.endswith(".partial")
                                            for p in checkpoints.iterdir())

    def command(self):
        cmd = [sys.executable, self.script, *self.arguments, "--output-dir", self.output_dir]
        return cmd + (["--resume", "latest"] if self.has_checkpoint() else [])


def run_queue(runs, on_finished=None, stop_after=None):
    """Run `runs` (QueuedRun) in order, each to its end, logging to `<output-dir>.log`.

    on_finished(run) is called after a run finishes in this call (e.g. export it to the zoo and commit).
    stop_after: optional list of run names; the queue stops after the first of them that finishes.
    Raises SystemExit naming the log when a run fails.
    """
    for run in runs:
        if run.finished:
            print(f"[{run.name}] finished earlier: skipped", flush=True)
            continue
        Path(run.output_dir).mkdir(parents=True, exist_ok=True)
        cmd = run.command()
        log_path = f"{run.output_dir.rstrip('/')}.log"
        print(f"[{run.name}] {' '.join(cmd)}  (log: {log_path})", flush=True)
        with open(log_path, "a") as log:
            result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        if result.returncode or not run.finished:
            sys.exit(f"[{run.name}] failed (exit code {result.returncode}); see {log_path}")
        if on_finished is not None:
            on_finished(run)
        if stop_after and run.name in stop_after:
            print(f"[{run.name}] finished; stopping as asked", flush=True)
            return
