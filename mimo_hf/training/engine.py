"""The run/checkpoint engine both training loops share: accelerator set-up, run state, atomic
checkpoints, resume, logging and the final export.

Checkpoints are `accelerator.save_state` folders named `<unit>_<count>` (`epoch_3`, `step_2000`),
written under a `.partial` name and renamed when complete, so a run killed mid-save never leaves a
half-written checkpoint that `--resume latest` would pick up.

The checkpoint format is a contract with runs in progress: `accelerator.prepare` sees (model,
optimizer, train loader, validation loader) and `register_for_checkpointing` (scheduler, TrainState,
extra objects such as a weight EMA) in that order, and `TrainState` keeps its fields, so that a run
started by an earlier version continues with `--resume latest`.

A run's folders are guarded (`check_run_folders`, before anything is loaded):
- a run without --resume refuses an output folder that holds a previous run (checkpoints, complete
  or partial, or a Hub folder with weights) unless --overwrite-output-dir, which deletes them first;
- the recipe of a run is recorded in `<checkpoint folder>/run_recipe.json` when it starts, and
  `--resume` refuses flags that differ from it, naming each (a card must never state a recipe that did
  not run). Flags in RESUME_FREE may differ: they change how a run executes or reports, not what it
  computes. Runs started by a version without the record are compared with `<output-dir>/hub/
  training_args.json` where it exists (paths there are relative to the run's unknown working folder,
  so they are resolved against the output folder's location, or skipped when that is not possible).
"""

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil

CHECKPOINT_DIR = re.compile(r"^(?:epoch|step)_(\d+)$")
RECIPE_RECORD = "run_recipe.json"
# Flags that may differ between a run and its resume: where and how it runs, when it stops, what it
# reports. Every other flag is part of the recipe (the schedule, the data, the model, the evaluation).
RESUME_FREE = frozenset({
    "resume", "overwrite_output_dir", "output_dir", "checkpoint_dir", "keep_checkpoints", "num_threads",
    "tune_cpu_allocator", "channels_last", "report_process_weights", "stop_after_epochs", "stop_after_steps",
    "max_minutes",
})
# Flags that fix the schedule's length: a resume cannot change them (the schedule spans the whole run).
SCHEDULE_LENGTH = ("epochs", "max_steps")
PATH_SETTINGS = ("data_dir",)  # compared as resolved paths


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


class RunRefused(Exception):
    """A run the flags ask for would overwrite a previous run or misstate its recipe (the training scripts
    print the message and exit with status 1, without a traceback)."""


class PreviousRunExists(RunRefused, FileExistsError):
    pass


class ResumeMismatch(RunRefused, ValueError):
    pass


def _flag(name):
    return "--" + name.replace("_", "-")


def _show(value):
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value)) if value else "(none)"
    return str(value)


def previous_run_files(recipe):
    """What a previous run left in the recipe's folders: its checkpoints (complete or partial) and its
    Hub folder (when it holds weights). Logs alone are not a previous run."""
    found = []
    folder = recipe.checkpoint_folder
    if os.path.isdir(folder):
        found += [os.path.join(folder, name) for name in sorted(os.listdir(folder))
                  if CHECKPOINT_DIR.match(name.removesuffix(".partial"))]
    if os.path.isfile(os.path.join(recipe.hub_folder, "model.safetensors")):
        found.append(recipe.hub_folder)
    return found


def _record_folder(recipe):
    """The checkpoint folder a resume reads: the recipe's, or the parent of an explicit checkpoint."""
    if recipe.resume and recipe.resume != "latest":
        return os.path.dirname(os.path.abspath(recipe.resume))
    return recipe.checkpoint_folder


def resolved_paths(values, base):
    return {key: (os.path.realpath(os.path.join(base, values[key])) if values.get(key) else None)
            for key in PATH_SETTINGS if key in values}


def recorded_recipe(recipe):
    """(record dict, where it came from, resolved paths or None) of the run that `recipe` resumes, or None."""
    path = os.path.join(_record_folder(recipe), RECIPE_RECORD)
    if os.path.isfile(path):
        with open(path) as f:
            record = json.load(f)["recipe"]
        return record, path, resolved_paths(record, os.path.dirname(path))  # paths are absolute there
    legacy = os.path.join(recipe.hub_folder, "training_args.json")
    if not os.path.isfile(legacy):
        return None
    with open(legacy) as f:
        record = json.load(f)
    # Paths in training_args.json are relative to the working folder of the run, which is the part of
    # this output folder's absolute path before the recorded output_dir.
    here, recorded_out = os.path.realpath(recipe.output_dir), os.path.normpath(record.get("output_dir") or "")
    paths = None
    if os.path.isabs(recorded_out):
        paths = resolved_paths(record, "/")
    elif recorded_out not in ("", ".") and here.endswith(os.sep + recorded_out):
        paths = resolved_paths(record, here[: -len(recorded_out) - 1])
    return record, legacy, paths


def recipe_differences(recipe, record, recorded_paths=None, source="the record"):
    """[(flag name, this value, the run's value)] for every recipe flag that differs from the record."""
    previous = type(recipe).from_record(record, source)
    differences = []
    for field in dataclasses.fields(recipe):
        name = field.name
        if name in RESUME_FREE:
            continue
        ours, theirs = getattr(recipe, name), getattr(previous, name)
        if name in PATH_SETTINGS:
            if recorded_paths is None:
                continue  # the record's working folder is unknown: a relative path cannot be compared
            ours = os.path.realpath(ours) if ours else None
            theirs = recorded_paths.get(name)
        if ours != theirs:
            differences.append((name, ours, theirs))
    return differences


def check_run_folders(recipe):
    """Refuse what would overwrite or misstate a run (see the module docstring); returns the files of a
    previous run that --overwrite-output-dir asks to delete (the caller deletes them on the main process)."""
    if recipe.resume and getattr(recipe, "overwrite_output_dir", False):
        raise ResumeMismatch("--resume continues the run in --output-dir and --overwrite-output-dir deletes it: pass one")
    if not recipe.resume:
        found = previous_run_files(recipe)
        if found and not getattr(recipe, "overwrite_output_dir", False):
            shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
            raise PreviousRunExists(
                f"--output-dir {recipe.output_dir} holds a previous run ({shown}): continue it with --resume latest, "
                "choose another --output-dir, or pass --overwrite-output-dir to delete that run and start over"
            )
        return found
    found = recorded_recipe(recipe)
    if found is None:
        return []  # a run started by a version that kept no record: nothing to compare (prepare() records it)
    record, source, paths = found
    differences = recipe_differences(recipe, record, paths, source)
    if differences:
        lines = [f"  {_flag(name)} {_show(ours)} (the run: {_show(theirs)})" for name, ours, theirs in differences]
        advice = ("A resume continues the recorded run exactly: pass the run's values (or leave the flags out of a "
                  "run that used the defaults), or start a new run in another --output-dir.")
        if any(name in SCHEDULE_LENGTH for name, _, _ in differences):
            advice += (" The learning-rate schedule spans the run's whole length, fixed when it started, so a run "
                       "cannot be extended: train a new run with the longer schedule.")
        raise ResumeMismatch(f"--resume {recipe.resume}: flags differ from the run being resumed ({source}):\n"
                         + "\n".join(lines) + "\n" + advice)
    return []


def remove_previous_run(recipe, found, print_fn=print):
    """--overwrite-output-dir: delete a previous run's checkpoints, Hub folder, logs and recipe record."""
    extra = [os.path.join(recipe.output_dir, "logs"), os.path.join(recipe.checkpoint_folder, RECIPE_RECORD)]
    for path in [*found, *(p for p in extra if os.path.exists(p))]:
        print_fn(f"--overwrite-output-dir: deleting {path}")
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def write_recipe_record(recipe, note):
    """`<checkpoint folder>/run_recipe.json`: every field of the recipe, paths absolute (an internal file)."""
    os.makedirs(recipe.checkpoint_folder, exist_ok=True)
    values = dataclasses.asdict(recipe)
    for key in PATH_SETTINGS:
        if values.get(key):
            values[key] = os.path.realpath(values[key])
    path = os.path.join(recipe.checkpoint_folder, RECIPE_RECORD)
    with open(path + ".tmp", "w") as f:
        json.dump({"recipe": values, "note": note}, f, indent=2)
    os.replace(path + ".tmp", path)


class TrainingRun:
    """One training run of a recipe on `accelerate`: seeds, threads, state, checkpoints, logs, export.

    Use: `run = TrainingRun(recipe, project)` (before the model is built: it seeds the RNGs), then
    `run.prepare(...)`, then per evaluation `run.record(...)` and `run.checkpoint(...)`, then `run.finish(...)`.
    """

    def __init__(self, recipe, project):
        import torch
        from accelerate import Accelerator
        from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed

        previous = check_run_folders(recipe)  # before anything is loaded or written
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
        if previous and self.accelerator.is_main_process:
            remove_previous_run(recipe, previous, self.accelerator.print)
        self.accelerator.wait_for_everyone()
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
            self.resume(model, scheduler)
        record = os.path.join(self.recipe.checkpoint_folder, RECIPE_RECORD)
        if accelerator.is_main_process and not (self.recipe.resume and os.path.isfile(record)):
            unit = self.recipe.unit
            count = self.state.epoch if unit == "epoch" else self.state.step
            write_recipe_record(self.recipe, "the run's flags, recorded when it started" if not self.recipe.resume else
                                f"recorded when the run was resumed at {unit} {count} from {self.recipe.resume} "
                                "(the checkpoint folder had no record: the run started without one)")
        accelerator.wait_for_everyone()
        accelerator.init_trackers(self.project, config=self.recipe.scalars())
        return model, optimizer, train_loader, val_loader, scheduler, extra

    def resume(self, model=None, scheduler=None):
        """Load `--resume` ('latest' or a checkpoint folder) into the registered objects.

        A checkpoint whose weights do not fit the model these flags build (a run without a recipe
        record resumed with other model flags) is reported with the differing tensors and the model
        flags, not with torch's key dump; so is a schedule of another length.
        """
        resume, folder = self.recipe.resume, self.recipe.checkpoint_folder
        path = latest_checkpoint(folder) if resume == "latest" else resume
        if path is None or not os.path.isdir(path):
            raise FileNotFoundError(f"--resume {resume}: no checkpoint found (looked in {folder})")
        expected_steps = getattr(scheduler, "total_steps", None)
        try:
            self.accelerator.load_state(path)
        except RuntimeError as error:
            mismatch = self._weights_mismatch(model, path)
            if mismatch is None:
                raise
            raise ResumeMismatch(mismatch) from error
        loaded_steps = getattr(scheduler, "total_steps", None)
        if expected_steps != loaded_steps:
            raise ResumeMismatch(f"--resume {resume}: the checkpoint's learning-rate schedule has {loaded_steps} steps, "
                             f"these flags give {expected_steps}: --epochs, --batch-size or --gradient-accumulation-steps "
                             "differ from the run's; a run cannot be extended (train a new run instead)")
        where = f"after epoch {self.state.epoch}" if self.recipe.unit == "epoch" else f"at step {self.state.step}"
        self.accelerator.print(f"resumed from {path} {where}")

    def _weights_mismatch(self, model, path):
        """A message naming how the checkpoint's weights differ from `model`'s, or None if they do not."""
        weights = os.path.join(path, "model.safetensors")
        if model is None or not os.path.isfile(weights):
            return None
        from safetensors import safe_open

        with safe_open(weights, "pt") as f:
            saved = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
        ours = {key: tuple(value.shape) for key, value in self.accelerator.unwrap_model(model).state_dict().items()}
        missing, unexpected = sorted(set(ours) - set(saved)), sorted(set(saved) - set(ours))
        reshaped = sorted(key for key in set(ours) & set(saved) if ours[key] != saved[key])
        if not (missing or unexpected or reshaped):
            return None
        details = []
        if reshaped:
            key = reshaped[0]
            details.append(f"{len(reshaped)} tensors have other shapes (e.g. {key}: {saved[key]} in the checkpoint, "
                           f"{ours[key]} here)")
        if missing:
            details.append(f"{len(missing)} tensors of this model are not in the checkpoint (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} tensors of the checkpoint are not in this model (e.g. {unexpected[0]})")
        model_flags = [_flag(f.name) for f in dataclasses.fields(self.recipe) if f.metadata.get("group") == "model"]
        return (f"--resume {self.recipe.resume}: {path} holds another architecture than these flags build: "
                f"{'; '.join(details)}. The model flags ({', '.join(model_flags)}) must be the run's own; "
                "its training_args.json (written when it finishes) lists them")

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


def run_training_script(recipe_class, train, argv=None):
    """The training scripts' entry point: parse the flags into a recipe and train it. Flags that contradict
    each other, the data or the checkpoint are usage errors (exit status 2); a refused run, own data that
    cannot be used as given or a missing file end with one error line (exit status 1); neither prints a
    traceback, and nothing is written before the recipe is accepted."""
    import sys

    from mimo_hf.data import DataError

    try:
        recipe = recipe_class.from_flags(argv)
    except (ValueError, FileNotFoundError) as error:
        recipe_class.parser().error(str(error))
    try:
        return train(recipe)
    except (RunRefused, DataError, FileNotFoundError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
