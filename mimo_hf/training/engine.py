"""Run arguments, accelerator set-up, run state, atomic checkpoints and resume, shared by the MIMOConv
and MIMOFormer training loops.

Checkpoints are `accelerator.save_state` folders named `<unit>_<count>` (`epoch_3`, `step_2000`),
written under a `.partial` name and renamed when complete, so a run killed mid-save never leaves a
half-written checkpoint that `--resume latest` would pick up.
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


def resume_from(accelerator, resume, checkpoint_dir):
    """Load `--resume` ('latest' or a checkpoint folder) into the prepared objects; returns its path."""
    path = latest_checkpoint(checkpoint_dir) if resume == "latest" else resume
    if path is None or not os.path.isdir(path):
        raise FileNotFoundError(f"--resume {resume}: no checkpoint found (looked in {checkpoint_dir})")
    accelerator.load_state(path)
    return path


def portable_arguments(args):
    """The run's arguments with local paths made relative to the working directory (for publishing)."""
    out = dict(vars(args))
    for key in ("output_dir", "checkpoint_dir", "data_dir", "resume"):
        value = out.get(key)
        if isinstance(value, str) and os.path.isabs(value):
            out[key] = os.path.relpath(value)
    return out


def write_run_files(hub_dir, args, history):
    """training_args.json (paths made portable) and metrics_history.json beside the exported model."""
    with open(os.path.join(hub_dir, "training_args.json"), "w") as f:
        json.dump(portable_arguments(args), f, indent=2)
    with open(os.path.join(hub_dir, "metrics_history.json"), "w") as f:
        json.dump(history, f, indent=2)


def weights_digest(model):
    """sha256 over a model's state dict (names and bytes): equal digests mean bitwise-equal weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def add_run_arguments(optimisation, run, unit, keep, output_help):
    """The flags every training script shares: precision/accumulation/seed and run-folder handling.

    `unit` names what checkpoints are taken at ("epoch" or "step"); `keep` is how many are kept.
    """
    optimisation.add_argument("--gradient-accumulation-steps", type=int, default=1)
    optimisation.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default=None, help="default: accelerate's config")
    optimisation.add_argument("--seed", type=int, default=0)
    run.add_argument("--output-dir", required=True, help=output_help)
    run.add_argument("--checkpoint-dir", default=None, help=f"{unit} checkpoints (default <output-dir>/checkpoints); keep outside git")
    run.add_argument("--keep-checkpoints", type=int, default=keep, help=f"newest {unit} checkpoints to keep")
    run.add_argument("--resume", default=None, help="'latest' or a checkpoint folder: continue that run exactly")
    run.add_argument("--num-threads", type=int, default=None, help="torch intra-op threads per process (CPU)")
    run.add_argument("--report-process-weights", action="store_true", help="write a sha256 of each process's final weights (DDP checks)")


def make_accelerator(args):
    """The Accelerator of a training run (TensorBoard logs in <output-dir>/logs, seeded sampling), seeds and threads set."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed

    if args.num_threads:
        torch.set_num_threads(args.num_threads)

    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=args.output_dir, logging_dir=os.path.join(args.output_dir, "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
    )
    set_seed(args.seed)
    return accelerator


def checkpoint_folder(args):
    """Where a run's checkpoints go: --checkpoint-dir, else <output-dir>/checkpoints."""
    return args.checkpoint_dir or os.path.join(args.output_dir, "checkpoints")


def start_tracking(accelerator, project, args):
    """TensorBoard tracking with the run's scalar arguments as its config."""
    accelerator.init_trackers(project, config={k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))})


def base_optimizer(optimizer):
    """The torch optimizer inside accelerate's wrapper (LR schedulers need the real one)."""
    return optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer


def report_process_weights(accelerator, model, args):
    """With --report-process-weights: <output-dir>/weights_rank<i>.sha256 of this process's weights (DDP checks)."""
    if not args.report_process_weights:
        return
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, f"weights_rank{accelerator.process_index}.sha256"), "w") as f:
        f.write(weights_digest(model))
