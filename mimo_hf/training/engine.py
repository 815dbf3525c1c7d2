"""The run/checkpoint engine both training loops share: accelerator set-up, run state, atomic
checkpoints, resume, logging and the final export.

Checkpoints are `accelerator.save_state` folders named `<unit>_<count>` (`epoch_3`, `step_2000`),
written under a `.partial` name and renamed when complete, so a run killed mid-save never leaves a
half-written checkpoint that `--resume latest` would pick up.

The checkpoint format is a contract with runs in progress: `accelerator.prepare` sees (model,
optimizer, train loader, validation loader) and `register_for_checkpointing` (scheduler, TrainState,
extra objects such as a weight EMA) in that order, and `TrainState` keeps its fields, so that a run
started by an earlier version continues with `--resume latest`.
"""

import hashlib
import json
import math
import os
import re
import shutil

CHECKPOINT_DIR = re.compile(r"^(?:epoch|step)_(\d+)$")


class TrainState:
    """Counters and history that must survive a resume (registered with `accelerator.register_for_checkpointing`)."""

    def __init__(self):
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken (step-based recipes)
        self.prev_grad_norm = math.inf  # mean accepted gradient norm of the last epoch
        self.best = None  # best validation score so far (best-on-validation recipes)
        self.history = []  # one dict of metrics per evaluation

    def state_dict(self):
        return {"epoch": self.epoch, "step": self.step, "prev_grad_norm": self.prev_grad_norm,
                "best": self.best, "history": self.history}

    def load_state_dict(self, state):
        self.epoch = int(state["epoch"])
        self.step = int(state.get("step", 0))
        self.prev_grad_norm = float(state["prev_grad_norm"])
        self.best = state.get("best")
        self.history = list(state["history"])


def _checkpoints(checkpoint_dir):
    if not os.path.isdir(checkpoint_dir):
        return []
    return sorted((int(m.group(1)), name) for name in os.listdir(checkpoint_dir) if (m := CHECKPOINT_DIR.match(name)))


def latest_checkpoint(checkpoint_dir):
    """Path of the newest complete checkpoint in `checkpoint_dir`, or None."""
    found = _checkpoints(checkpoint_dir)
    return os.path.join(checkpoint_dir, found[-1][1]) if found else None


def prune_checkpoints(checkpoint_dir, keep):
    """Delete all but the newest `keep` checkpoints."""
    for _, name in _checkpoints(checkpoint_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(os.path.join(checkpoint_dir, name), ignore_errors=True)


def save_checkpoint(accelerator, checkpoint_dir, name, keep):
    """`accelerator.save_state` into `checkpoint_dir/name`, atomically, then prune old ones."""
    final = os.path.join(checkpoint_dir, name)
    staging = final + ".partial"
    accelerator.save_state(staging)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(staging, final)
        prune_checkpoints(checkpoint_dir, keep)
    accelerator.wait_for_everyone()
    return final


def weights_digest(model):
    """sha256 over a model's state dict (names and bytes): equal digests mean bitwise-equal weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def base_optimizer(optimizer):
    """The torch optimizer inside accelerate's wrapper (LR schedulers need the real one)."""
    return optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer


def write_run_files(hub_dir, recipe, history):
    """training_args.json (the recipe, paths made portable) and metrics_history.json beside the exported model."""
    with open(os.path.join(hub_dir, "training_args.json"), "w") as f:
        json.dump(recipe.record(), f, indent=2)
    with open(os.path.join(hub_dir, "metrics_history.json"), "w") as f:
        json.dump(history, f, indent=2)


class TrainingRun:
    """One training run of a recipe on `accelerate`: seeds, threads, state, checkpoints, logs, export.

    Use: `run = TrainingRun(recipe, project)` (before the model is built: it seeds the RNGs), then
    `run.prepare(...)`, then per evaluation `run.record(...)` and `run.checkpoint(...)`, then `run.finish(...)`.
    """

    def __init__(self, recipe, project):
        import torch
        from accelerate import Accelerator
        from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed

        if recipe.num_threads:
            torch.set_num_threads(recipe.num_threads)
        self.recipe, self.project = recipe, project
        self.accelerator = Accelerator(
            mixed_precision=recipe.mixed_precision,
            gradient_accumulation_steps=recipe.gradient_accumulation_steps,
            log_with="tensorboard",
            project_config=ProjectConfiguration(project_dir=recipe.output_dir,
                                                logging_dir=os.path.join(recipe.output_dir, "logs")),
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=recipe.seed),
        )
        set_seed(recipe.seed)
        self.state = TrainState()

    def prepare(self, model, optimizer, train_loader, val_loader, make_scheduler, extra=()):
        """`accelerator.prepare` the four objects, build the scheduler on the prepared optimizer and loader
        (`make_scheduler(optimizer, train_loader)`), register (scheduler, state, *extra) for checkpointing,
        resume if the recipe says so, start tracking. Returns the prepared objects and the scheduler."""
        accelerator = self.accelerator
        model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
        scheduler = make_scheduler(base_optimizer(optimizer), train_loader)
        extra = [obj(accelerator.unwrap_model(model)) if callable(obj) else obj for obj in extra]
        # Registration order is part of the checkpoint format: runs without extras keep (scheduler, state).
        accelerator.register_for_checkpointing(scheduler, self.state, *extra)
        if self.recipe.resume:
            self.resume()
        accelerator.init_trackers(self.project, config=self.recipe.scalars())
        return model, optimizer, train_loader, val_loader, scheduler, extra

    def resume(self):
        """Load `--resume` ('latest' or a checkpoint folder) into the registered objects."""
        resume, folder = self.recipe.resume, self.recipe.checkpoint_folder
        path = latest_checkpoint(folder) if resume == "latest" else resume
        if path is None or not os.path.isdir(path):
            raise FileNotFoundError(f"--resume {resume}: no checkpoint found (looked in {folder})")
        self.accelerator.load_state(path)
        where = f"after epoch {self.state.epoch}" if self.recipe.unit == "epoch" else f"at step {self.state.step}"
        self.accelerator.print(f"resumed from {path} {where}")

    def record(self, entry):
        """Append a history entry, log its numbers and print it."""
        self.state.history.append(entry)
        step = self.state.epoch if self.recipe.unit == "epoch" else self.state.step
        numbers = {key: value for key, value in entry.items() if key != self.recipe.unit and isinstance(value, (int, float))
                   and not isinstance(value, bool)}
        self.accelerator.log(numbers, step=step)
        self.accelerator.print(json.dumps(entry))

    def checkpoint(self, count):
        """An atomic checkpoint `<unit>_<count>`, keeping the newest --keep-checkpoints."""
        return save_checkpoint(self.accelerator, self.recipe.checkpoint_folder, f"{self.recipe.unit}_{count}",
                               self.recipe.keep_checkpoints)

    def stop_early(self, message):
        """End a run that will be resumed later."""
        self.accelerator.print(f"{message}; continue with --resume latest")
        self.accelerator.end_training()

    def finish(self, model, export=None):
        """Wait for every process, write the per-process weight digests (--report-process-weights), run
        `export()` on the main process, end."""
        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        if self.recipe.report_process_weights:
            os.makedirs(self.recipe.output_dir, exist_ok=True)
            path = os.path.join(self.recipe.output_dir, f"weights_rank{accelerator.process_index}.sha256")
            with open(path, "w") as f:
                f.write(weights_digest(model))
        if export is not None and accelerator.is_main_process:
            export()
        accelerator.end_training()
