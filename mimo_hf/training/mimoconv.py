"""The MIMOConv training loop (spec section 2) on `accelerate`, for a `MIMOConvRecipe`.

What makes it the paper's recipe:
- one-cycle SGD (max LR 0.2, cycling momentum), weight decay except on PReLU/SReLU parameters;
- mixup on the images before superposition (targets become label mixtures);
- loss = cross-entropy + binding regulariser + isometry regulariser;
- fairness rule: one "epoch" passes over the training data N times, so every capacity N gets the
  same number of optimizer steps and the same trunk compute per epoch (a batch holds B*N images);
- gradient-norm filter: skip the step when the norm is not finite or above `grad_filter` times the
  previous epoch's mean accepted norm;
- dynamic training: each step runs at k = N with probability `full_capacity_prob`, else at k = `low_k`.

`--preset fast` swaps the optimisation defaults for a short-schedule recipe chosen on validation data
(label smoothing, Nesterov, triangular LR, weight EMA, alternating flips, no mixup: fast_training.py);
explicit flags override either preset. Speed: channels-last tensors and, on CPUs, a tuned allocator.

Reproducibility and resume: every random choice of an epoch (shuffling, crops, flips, mixup, operating
points) is drawn from generators seeded with (seed, epoch[, process]), and checkpoints are taken at
epoch ends, so a run resumed from a checkpoint continues exactly as if it had never stopped.
"""

import math
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mimo_hf.training.engine import TrainingRun, write_run_files
from mimo_hf.training.fast_training import (
    WeightEMA,
    flip_decisions,
    make_scheduler,
    set_batchnorm_momentum,
    smooth_targets,
    tune_cpu_allocator,
)


def epoch_generators(seed, epoch, process_index):
    """(shared numpy rng, per-process torch generator) for one epoch.

    The shared rng draws the operating point of each step, which must agree across processes; the
    per-process generator draws crops, flips and mixup partners of that process's shard.
    """
    shared = np.random.default_rng([seed, epoch])
    local = torch.Generator().manual_seed(int(np.random.default_rng([seed, epoch, process_index + 1]).integers(2**62)))
    return shared, local


def parameter_groups(model, weight_decay):
    """Weight decay on everything except activation parameters (PReLU slopes, SReLU offsets)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_activation = ".relu1." in name or ".relu2." in name
        (no_decay if is_activation else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def mixup(images, labels, num_labels, alpha, shared_rng, generator):
    """Mix each image with a random partner of the same batch: (images, soft targets (B, num_labels))."""
    targets = F.one_hot(labels, num_labels).to(images.dtype)
    if alpha <= 0:
        return images, targets
    lam = float(shared_rng.beta(alpha, alpha))
    perm = torch.randperm(images.shape[0], generator=generator).to(images.device)
    return lam * images + (1 - lam) * images[perm], lam * targets + (1 - lam) * targets[perm]


def choose_operating_point(capacity, full_capacity_prob, low_k, shared_rng):
    """k = N with probability `full_capacity_prob`, else `low_k` (dynamic training)."""
    if full_capacity_prob >= 1.0 or shared_rng.random() < full_capacity_prob:
        return capacity
    return low_k


def training_loss(model, raw_model, pixel_values, targets, k, binding_coef, isometry_coef):
    """(model output, loss) of one training step: cross-entropy + binding and isometry regularisers.

    `model` may be wrapped (DDP); the regularisers read the weights of the unwrapped `raw_model`.
    Also what `scripts/benchmark_throughput.py --mode train` times.
    """
    out = model(pixel_values=pixel_values, labels=targets, num_superpositions=k)
    loss = out.loss
    if binding_coef:
        loss = loss + binding_coef * raw_model.binding_regularization()
    if isometry_coef:
        loss = loss + isometry_coef * raw_model.isometry_regularization()
    return out, loss


def slow_bf16_warning(device_type, mixed_precision, features=None):
    """A warning for bf16 autocast on a CPU without bf16 instructions (AVX-512 BF16 or AMX), where torch
    emulates bf16 and a step runs slower than in fp32; None where there is nothing to warn about.
    `features`: the CPU's flags of interest (default: this machine's, from /proc/cpuinfo)."""
    if device_type != "cpu" or mixed_precision != "bf16":
        return None
    if features is None:
        from mimo_hf.evaluation.throughput import machine_description

        features = machine_description().get("cpu_features")
    if features is None or {"avx512_bf16", "amx_bf16"} & set(features):
        return None
    return ("warning: --mixed-precision bf16 on a CPU without AVX-512 BF16 or AMX: torch emulates bf16 here and "
            "training steps run slower than in fp32 (a run keeps its recorded precision when resumed)")


@dataclass
class ImageData:
    """The training and validation parts of an image dataset, with what the model and the export need."""

    train: object  # data.images.ImageTensors
    validation: object
    dataset: str  # short name: selects the normalisation statistics and the saved image processor
    mean: tuple
    std: tuple

    @classmethod
    def load(cls, recipe):
        from mimo_hf.data.image_processing import dataset_stats
        from mimo_hf.data.images import load_image_dataset, train_validation_split

        full = load_image_dataset(recipe.dataset, data_dir=recipe.data_dir, split="train")
        train, validation = train_validation_split(full, validation_size=recipe.validation_size, seed=recipe.seed)
        if recipe.max_train_samples:
            train = train.subset(torch.arange(min(recipe.max_train_samples, len(train))))
        if recipe.max_eval_samples:
            validation = validation.subset(torch.arange(min(recipe.max_eval_samples, len(validation))))
        return cls(train, validation, full.dataset, *dataset_stats(full.dataset))

    @property
    def image_shape(self):
        """(channels, size) of the images."""
        return self.train.images.shape[1], self.train.images.shape[2]


def build_model(recipe, label_names, num_channels, image_size):
    """A freshly initialised `MIMOConvForImageClassification` of the recipe's architecture."""
    from mimo_hf.models.mimoconv.configuration_mimoconv import MIMOConvConfig
    from mimo_hf.models.mimoconv.modeling_mimoconv import MIMOConvForImageClassification

    config = MIMOConvConfig(
        num_superpositions=recipe.num_superpositions, binding=recipe.binding, depth=recipe.depth, width=recipe.width,
        initial_width=recipe.initial_width, num_channels=num_channels, image_size=image_size,
        activation=recipe.activation, activation_init=recipe.activation_init, skip_init=recipe.skip_init,
        trainable_keys=not recipe.frozen_keys, trained_superpositions=recipe.trained_operating_points,
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
    )
    return MIMOConvForImageClassification(config)


class MIMOConvLoop:
    """The prepared objects of a run and its epochs: `train_epoch`, `validate`, `export`."""

    def __init__(self, recipe):
        from torch.utils.data import DataLoader

        from mimo_hf.data.batches import TensorDict
        from mimo_hf.evaluation.metrics import load_metric

        self.recipe = recipe
        self.run = TrainingRun(recipe, "train_mimoconv")  # seeds the RNGs: before the model is built
        accelerator = self.run.accelerator
        if recipe.tune_cpu_allocator and accelerator.device.type == "cpu" and tune_cpu_allocator():
            accelerator.print("CPU allocator tuned: freed activations are reused instead of unmapped")
        if (message := slow_bf16_warning(accelerator.device.type, accelerator.mixed_precision)) is not None:
            accelerator.print(message)
        if recipe.uses_own_data:  # fine-tuning a checkpoint (training/finetune.py)
            from mimo_hf.training.finetune import image_model_and_data

            model, data = image_model_and_data(recipe)
            self.data = data
            self.train_set, val_set = data.train_set, data.validation_set
        else:
            self.data = data = ImageData.load(recipe)
            model = build_model(recipe, data.train.label_names, *data.image_shape)
            # Each example carries its index, which fixes its alternating flips.
            self.train_set = TensorDict({**data.train.tensors(), "index": torch.arange(len(data.train))})
            val_set = TensorDict(data.validation.tensors())
        set_batchnorm_momentum(model, recipe.bn_momentum)
        self.memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
        model = model.to(memory_format=self.memory_format)
        train_dl = DataLoader(self.train_set, batch_size=recipe.batch_size * recipe.num_superpositions, shuffle=True)
        val_dl = DataLoader(val_set, batch_size=recipe.eval_batch_size, shuffle=False)
        optimizer = torch.optim.SGD(parameter_groups(model, recipe.weight_decay), lr=recipe.lr,
                                    momentum=recipe.momentum, nesterov=recipe.nesterov)
        ema = [lambda raw: WeightEMA(raw, recipe.ema_decay)] if recipe.ema_decay else []
        prepared = self.run.prepare(model, optimizer, train_dl, val_dl, self.make_scheduler, extra=ema)
        self.model, self.optimizer, self.train_dl, self.val_dl, self.scheduler, extra = prepared
        self.ema = extra[0] if extra else None
        self.raw_model = accelerator.unwrap_model(self.model)
        self.metric = load_metric("accuracy")

    def make_scheduler(self, optimizer, train_dl):
        # One epoch = N passes over the data (fairness rule); the schedule counts optimizer steps.
        r = self.recipe
        steps_per_epoch = math.ceil(r.num_superpositions * len(train_dl) / r.gradient_accumulation_steps)
        return make_scheduler(optimizer, r.lr_schedule, r.lr, r.epochs * steps_per_epoch, r.pct_start, r.momentum)

    def train_epoch(self, epoch):
        """One epoch (N passes over the data); returns its history entry's training part."""
        from tqdm.auto import tqdm

        from mimo_hf.data.augment import TrainTransform

        r, n, accelerator = self.recipe, self.recipe.num_superpositions, self.run.accelerator
        shared_rng, generator = epoch_generators(r.seed, epoch, accelerator.process_index)
        augment = TrainTransform(mean=self.data.mean, std=self.data.std, padding=4, generator=generator)
        self.model.train()
        started = time.perf_counter()
        totals = {"loss": 0.0, "seen": 0, "accepted": [], "skipped": 0}
        bar = tqdm(total=n * len(self.train_dl), desc=f"epoch {epoch + 1}/{r.epochs}",
                   disable=not accelerator.is_local_main_process)
        for data_pass in range(n):
            self.train_dl.set_epoch(epoch * n + data_pass)
            for batch in self.train_dl:
                k = choose_operating_point(n, r.full_capacity_prob, r.low_superpositions, shared_rng)
                loss = self.step(batch, k, epoch * n + data_pass, augment, shared_rng, generator, totals)
                totals["loss"] += loss * batch["labels"].shape[0]
                totals["seen"] += batch["labels"].shape[0]
                bar.update(1)
                bar.set_postfix(loss=f"{totals['loss'] / totals['seen']:.3f}", k=k)
        bar.close()
        state = self.run.state
        if totals["accepted"]:
            state.prev_grad_norm = float(np.mean(totals["accepted"]))
        return {"epoch": epoch + 1, "train_loss": totals["loss"] / max(totals["seen"], 1),
                "lr": self.scheduler.get_last_lr()[0], "skipped_steps": totals["skipped"],
                "grad_norm_mean": state.prev_grad_norm, "train_seconds": round(time.perf_counter() - started, 1)}

    def step(self, batch, k, data_pass, augment, shared_rng, generator, totals):
        """One optimizer step (under gradient accumulation, one micro-step); returns the batch's loss."""
        r, accelerator, raw = self.recipe, self.run.accelerator, self.raw_model
        with accelerator.accumulate(self.model):
            flips = (flip_decisions(batch["index"], data_pass, r.seed, len(self.train_set))
                     if r.alternating_flip else None)
            if not r.horizontal_flip:  # the generator still draws its flips: the crops stay those of a flipping run
                flips = torch.zeros(batch["labels"].shape[0], dtype=torch.bool)
            x = augment(batch["pixel_values"], flip=flips)
            x, targets = mixup(x, batch["labels"], raw.config.num_labels, r.mixup_alpha, shared_rng, generator)
            targets = smooth_targets(targets, r.label_smoothing)
            x = x.contiguous(memory_format=self.memory_format)
            out, loss = training_loss(self.model, raw, x, targets, k, r.binding_coef, r.isometry_coef)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                norm = float(accelerator.clip_grad_norm_(self.model.parameters(), float("inf")))
                if math.isfinite(norm) and norm <= r.grad_filter * self.run.state.prev_grad_norm:
                    self.optimizer.step()
                    totals["accepted"].append(norm)
                    if self.ema is not None:
                        self.ema.update(raw)
                else:
                    totals["skipped"] += 1
                self.scheduler.step()
                self.optimizer.zero_grad()
        return float(out.loss.detach())

    def validate(self):
        """Validation accuracy at the recipe's operating points (of the weight average, with EMA, and of
        the raw weights too, so the history shows what the average adds)."""
        from mimo_hf.evaluation.accuracy import NormalizedImages, accuracy_at_points

        points, inputs = self.recipe.eval_operating_points, NormalizedImages(self.data.mean, self.data.std)
        entry = {}
        if self.ema is not None:
            raw = accuracy_at_points(self.model, self.val_dl, points, self.run.accelerator, self.metric, inputs)
            entry.update({f"raw_val_accuracy@k{k}": r["accuracy"] for k, r in raw.items()})
        evaluated = self.model if self.ema is None else self.ema.averaged_copy(self.raw_model)
        results = accuracy_at_points(evaluated, self.val_dl, points, self.run.accelerator, self.metric, inputs)
        for k, r in results.items():
            entry[f"val_accuracy@k{k}"] = r["accuracy"]
            entry[f"val_count@k{k}"] = r["count"]
        return entry

    def export(self):
        """The Hub-ready folder <output-dir>/hub: the (averaged) weights, image processor and records."""
        from mimo_hf.data.image_processing import make_image_processor
        from mimo_hf.hub.export import save_hub_folder

        if self.ema is not None:
            self.raw_model.load_state_dict(self.ema.shadow)  # the exported weights are the validated average
        self.raw_model.to(memory_format=torch.contiguous_format).eval()
        own = self.recipe.uses_own_data
        processor = self.data.processor if own else make_image_processor(self.data.dataset, self.data.image_shape[1])
        save_hub_folder(self.raw_model, self.recipe.hub_folder, processor, overwrite=True)
        write_run_files(self.recipe.hub_folder, self.recipe, self.run.state.history)
        if own:
            from mimo_hf.training.finetune import write_card

            write_card(self.recipe.hub_folder, self.recipe, self.run.state.history, self.data.info, "val_accuracy@")


def time_left(history, planned_epochs, window=5):
    """"epoch E of P done; about H h left ..." from the median training seconds of the last `window` epochs
    (the progress bar only times the epoch under way); None when no epoch is timed or none is left."""
    seconds = [entry["train_seconds"] for entry in history[-window:] if entry.get("train_seconds")]
    done = history[-1]["epoch"] if history else 0
    if not seconds or done >= planned_epochs:
        return None
    per_epoch = statistics.median(seconds)
    hours = (planned_epochs - done) * per_epoch / 3600
    return (f"epoch {done} of {planned_epochs} done; about {hours:.1f} h of training left at {per_epoch:.0f} s "
            f"per epoch (median of the last {len(seconds)}), plus validation")


def train(recipe):
    """Run (or resume) the training run of a `MIMOConvRecipe`; returns the Hub folder (None when stopped early)."""
    loop = MIMOConvLoop(recipe)
    run = loop.run
    while run.state.epoch < recipe.epochs:
        epoch = run.state.epoch
        entry = loop.train_epoch(epoch)
        entry.update(loop.validate())
        run.state.epoch = epoch + 1
        run.record(entry)
        if (left := time_left(run.state.history, recipe.epochs)) is not None:
            run.accelerator.print(left)
        run.checkpoint(run.state.epoch)
        if recipe.stop_after_epochs is not None and recipe.stop_after_epochs <= run.state.epoch < recipe.epochs:
            run.stop_early(f"stopping after epoch {run.state.epoch}")
            return None
    run.finish(loop.raw_model, export=loop.export)
    return recipe.hub_folder
