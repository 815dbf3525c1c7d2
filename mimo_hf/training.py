"""The MIMOConv training recipe (spec section 2) on `accelerate`.

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

import argparse
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from .fast_training import (
    PRESETS,
    WeightEMA,
    flip_decisions,
    make_scheduler,
    set_batchnorm_momentum,
    smooth_targets,
    tune_cpu_allocator,
)
from .checkpointing import (
    TrainState,
    add_run_arguments,
    base_optimizer,
    checkpoint_folder,
    make_accelerator,
    report_process_weights,
    resume_from,
    save_checkpoint,
    start_tracking,
    write_run_files,
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


def build_arg_parser():
    p = argparse.ArgumentParser(
        description="Train MIMOConv (or its Wide ResNet baseline) with the paper's recipe on accelerate. "
        "Runs unchanged under `accelerate launch` on CPUs, one GPU or many.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = p.add_argument_group("data")
    d.add_argument("--dataset", default="uoft-cs/cifar10", help="Hub dataset id (uoft-cs/cifar10, uoft-cs/cifar100, ylecun/mnist)")
    d.add_argument("--data-dir", default=None, help="local folder of parquet shards in the Hub schema (e.g. ../shared/data/cifar10)")
    d.add_argument("--validation-size", type=int, default=5000, help="training images held out for validation (never tune on test)")
    d.add_argument("--max-train-samples", type=int, default=None, help="use only the first N training images (smoke tests)")
    d.add_argument("--max-eval-samples", type=int, default=None, help="use only the first N validation images (smoke tests)")
    m = p.add_argument_group("model")
    m.add_argument("--num-superpositions", type=int, default=4, help="capacity N")
    m.add_argument("--binding", choices=["hrr", "mbat", "none"], default="hrr")
    m.add_argument("--depth", type=int, default=16, help="Wide ResNet depth 6n+4")
    m.add_argument("--width", type=int, default=4, help="Wide ResNet width factor")
    m.add_argument("--initial-width", type=float, default=4, help="stem width factor (C = 16 * s)")
    m.add_argument("--activation", choices=["relu", "prelu", "srelu"], default="prelu")
    m.add_argument("--activation-init", type=float, default=None, help="PReLU slope / SReLU offset init (default 0.5 / -1)")
    m.add_argument("--skip-init", action="store_true", help="scale residual branches by a learned scalar initialised at 0")
    m.add_argument("--frozen-keys", action="store_true", help="keep the binding keys fixed at their initialisation")
    o = p.add_argument_group("optimisation (defaults from --preset; an explicit flag wins)")
    o.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                   help="'paper': the authors' recipe (one-cycle, mixup, wd 1e-5) for long GPU runs; 'fast': the "
                   "short-schedule recipe of docs/mimoconv_recipe_study.md (label smoothing 0.2, Nesterov, triangular "
                   "LR, weight EMA, BN momentum 0.4, alternating flips, wd 5e-4, no mixup)")
    o.add_argument("--epochs", type=int, default=200, help="epochs; each passes over the data N times (fairness rule)")
    o.add_argument("--batch-size", type=int, default=128, help="bundles per step per process; a step sees batch_size * N images")
    o.add_argument("--eval-batch-size", type=int, default=512, help="images per evaluation batch per process")
    o.add_argument("--lr-schedule", choices=["onecycle", "triangular"], default=None,
                   help="onecycle: torch's OneCycleLR (cosine, cycling momentum); triangular: linear up, linear down to 0")
    o.add_argument("--lr", type=float, default=None, help="peak learning rate")
    o.add_argument("--pct-start", type=float, default=None, help="fraction of steps spent warming up to the peak LR")
    o.add_argument("--momentum", type=float, default=None, help="SGD momentum (one-cycle cycles it down to 0.85 at the peak)")
    o.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None, help="Nesterov momentum")
    o.add_argument("--weight-decay", type=float, default=None, help="weight decay (not on PReLU/SReLU parameters)")
    o.add_argument("--mixup-alpha", type=float, default=None, help="mixup Beta(alpha, alpha); 0 disables mixup")
    o.add_argument("--label-smoothing", type=float, default=None, help="label smoothing of the (mixed) targets")
    o.add_argument("--ema-decay", type=float, default=None,
                   help="per-step decay of an exponential moving average of the weights; the average is validated and "
                   "exported instead of the raw weights; 0 disables")
    o.add_argument("--bn-momentum", type=float, default=None, help="BatchNorm running-statistics momentum (PyTorch convention)")
    o.add_argument("--alternating-flip", action=argparse.BooleanOptionalAction, default=None,
                   help="flip each image in every other pass over the data (else: random flips)")
    o.add_argument("--binding-coef", type=float, default=0.1, help="coefficient of the binding regulariser")
    o.add_argument("--isometry-coef", type=float, default=1e-4, help="coefficient of the isometry regulariser")
    o.add_argument("--grad-filter", type=float, default=10.0, help="skip steps whose gradient norm exceeds this times last epoch's mean")
    o.add_argument("--full-capacity-prob", type=float, default=1.0, help="dynamic training: probability of k = N per step (paper: 0.8)")
    o.add_argument("--low-superpositions", type=int, default=1, help="dynamic training: the lower operating point")
    r = p.add_argument_group("run")
    r.add_argument("--eval-superpositions", type=int, nargs="*", default=None, help="operating points validated each epoch (default: the trained ones)")
    r.add_argument("--stop-after-epochs", type=int, default=None, help="stop (after checkpointing) once this many epochs are done; resume later")
    r.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="train in channels-last memory format (faster convolutions on CPUs and GPUs; same results)")
    r.add_argument("--tune-cpu-allocator", action=argparse.BooleanOptionalAction, default=True,
                   help="on CPUs with glibc, keep freed memory for reuse instead of unmapping it (much faster steps)")
    add_run_arguments(o, r, unit="epoch", keep=2, output_help="run folder: logs, final Hub-ready folder under <output-dir>/hub")
    return p


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


def parse_args(argv=None):
    """Parse the command line and fill every optimisation flag left unset from its --preset."""
    return apply_preset(build_arg_parser().parse_args(argv))


def apply_preset(args):
    """Set each optimisation value that is None to its preset's default (in place); returns args."""
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def _trained_operating_points(args):
    points = {args.num_superpositions}
    if args.full_capacity_prob < 1.0:
        points.add(args.low_superpositions)
    return sorted(points)


def build_model(args, label_names, num_channels, image_size):
    from .mimoconv.configuration_mimoconv import MIMOConvConfig
    from .mimoconv.modeling_mimoconv import MIMOConvForImageClassification

    config = MIMOConvConfig(
        num_superpositions=args.num_superpositions, binding=args.binding, depth=args.depth, width=args.width,
        initial_width=args.initial_width, num_channels=num_channels, image_size=image_size,
        activation=args.activation, activation_init=args.activation_init, skip_init=args.skip_init,
        trainable_keys=not args.frozen_keys, trained_superpositions=_trained_operating_points(args),
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
    )
    return MIMOConvForImageClassification(config)


def train(args):
    """Run (or resume) a training run described by `build_arg_parser()`'s arguments."""
    import json

    from torch.utils.data import DataLoader, TensorDataset
    from tqdm.auto import tqdm

    from .augment import TrainTransform
    from .data import load_image_dataset, train_validation_split
    from .evaluation import evaluate_operating_points
    from .hub import save_hub_folder
    from .image_processing import dataset_stats, make_image_processor
    from .metrics import load_metric

    apply_preset(args)
    if args.num_superpositions % args.low_superpositions:
        raise ValueError(f"--low-superpositions {args.low_superpositions} must divide --num-superpositions {args.num_superpositions}")
    checkpoint_dir = checkpoint_folder(args)
    accelerator = make_accelerator(args)
    if args.tune_cpu_allocator and accelerator.device.type == "cpu" and tune_cpu_allocator():
        accelerator.print("CPU allocator tuned: freed activations are reused instead of unmapped")

    full_train = load_image_dataset(args.dataset, data_dir=args.data_dir, split="train")
    train_data, val_data = train_validation_split(full_train, validation_size=args.validation_size, seed=args.seed)
    if args.max_train_samples:
        train_data = train_data.subset(torch.arange(min(args.max_train_samples, len(train_data))))
    if args.max_eval_samples:
        val_data = val_data.subset(torch.arange(min(args.max_eval_samples, len(val_data))))
    mean, std = dataset_stats(full_train.dataset)
    num_channels, image_size = full_train.images.shape[1], full_train.images.shape[2]

    model = build_model(args, full_train.label_names, num_channels, image_size)
    set_batchnorm_momentum(model, args.bn_momentum)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    n = args.num_superpositions
    # Each example carries its index, which fixes its alternating flips.
    train_set = TensorDataset(train_data.images, train_data.labels, torch.arange(len(train_data)))
    train_dl = DataLoader(train_set, batch_size=args.batch_size * n, shuffle=True)
    val_dl = DataLoader(TensorDataset(val_data.images, val_data.labels), batch_size=args.eval_batch_size, shuffle=False)
    optimizer = torch.optim.SGD(parameter_groups(model, args.weight_decay), lr=args.lr, momentum=args.momentum,
                                nesterov=args.nesterov)
    model, optimizer, train_dl, val_dl = accelerator.prepare(model, optimizer, train_dl, val_dl)

    # One epoch = N passes over the data (fairness rule); the schedule counts optimizer steps.
    steps_per_epoch = math.ceil(n * len(train_dl) / args.gradient_accumulation_steps)
    scheduler = make_scheduler(base_optimizer(optimizer), args.lr_schedule, args.lr, args.epochs * steps_per_epoch,
                               args.pct_start, args.momentum)
    state = TrainState()
    raw_model = accelerator.unwrap_model(model)
    ema = WeightEMA(raw_model, args.ema_decay) if args.ema_decay else None
    # Registration order is part of the checkpoint format: runs without EMA keep (scheduler, state).
    accelerator.register_for_checkpointing(scheduler, state, *([ema] if ema else []))

    if args.resume:
        path = resume_from(accelerator, args.resume, checkpoint_dir)
        accelerator.print(f"resumed from {path} after epoch {state.epoch}")

    start_tracking(accelerator, "train_mimoconv", args)
    metric = load_metric("accuracy")
    eval_points = args.eval_superpositions or _trained_operating_points(args)
    num_labels = raw_model.config.num_labels

    while state.epoch < args.epochs:
        epoch = state.epoch
        shared_rng, generator = epoch_generators(args.seed, epoch, accelerator.process_index)
        augment = TrainTransform(mean=mean, std=std, padding=4, generator=generator)
        model.train()
        started = time.perf_counter()
        loss_sum, seen, accepted_norms, skipped = 0.0, 0, [], 0
        bar = tqdm(total=n * len(train_dl), desc=f"epoch {epoch + 1}/{args.epochs}", disable=not accelerator.is_local_main_process)
        for data_pass in range(n):
            train_dl.set_epoch(epoch * n + data_pass)
            for images, labels, indices in train_dl:
                k = choose_operating_point(n, args.full_capacity_prob, args.low_superpositions, shared_rng)
                with accelerator.accumulate(model):
                    flips = (flip_decisions(indices, epoch * n + data_pass, args.seed, len(train_set))
                             if args.alternating_flip else None)
                    x = augment(images, flip=flips)
                    x, targets = mixup(x, labels, num_labels, args.mixup_alpha, shared_rng, generator)
                    targets = smooth_targets(targets, args.label_smoothing)
                    x = x.contiguous(memory_format=memory_format)
                    out, loss = training_loss(model, raw_model, x, targets, k, args.binding_coef, args.isometry_coef)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        norm = float(accelerator.clip_grad_norm_(model.parameters(), float("inf")))
                        if math.isfinite(norm) and norm <= args.grad_filter * state.prev_grad_norm:
                            optimizer.step()
                            accepted_norms.append(norm)
                            if ema is not None:
                                ema.update(raw_model)
                        else:
                            skipped += 1
                        scheduler.step()
                        optimizer.zero_grad()
                loss_sum += float(out.loss.detach()) * labels.shape[0]
                seen += labels.shape[0]
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", k=k)
        bar.close()
        if accepted_norms:
            state.prev_grad_norm = float(np.mean(accepted_norms))

        record = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "lr": scheduler.get_last_lr()[0],
                  "skipped_steps": skipped, "grad_norm_mean": state.prev_grad_norm,
                  "train_seconds": round(time.perf_counter() - started, 1)}
        if ema is not None:  # the raw weights too, so the history shows what the average adds
            raw = evaluate_operating_points(model, val_dl, eval_points, accelerator, metric, mean=mean, std=std)
            record.update({f"raw_val_accuracy@k{k}": r["accuracy"] for k, r in raw.items()})
        evaluated = model if ema is None else ema.averaged_copy(raw_model)
        results = evaluate_operating_points(evaluated, val_dl, eval_points, accelerator, metric, mean=mean, std=std)
        for k, r in results.items():
            record[f"val_accuracy@k{k}"] = r["accuracy"]
            record[f"val_count@k{k}"] = r["count"]
        state.history.append(record)
        state.epoch = epoch + 1
        accelerator.log({key: v for key, v in record.items() if key != "epoch"}, step=state.epoch)
        accelerator.print(json.dumps(record))

        save_checkpoint(accelerator, checkpoint_dir, f"epoch_{state.epoch}", args.keep_checkpoints)
        if args.stop_after_epochs is not None and state.epoch >= args.stop_after_epochs and state.epoch < args.epochs:
            accelerator.print(f"stopping after epoch {state.epoch}; continue with --resume latest")
            accelerator.end_training()
            return None

    accelerator.wait_for_everyone()
    report_process_weights(accelerator, raw_model, args)
    hub_dir = os.path.join(args.output_dir, "hub")
    if accelerator.is_main_process:
        if ema is not None:
            raw_model.load_state_dict(ema.shadow)  # the exported weights are the validated average
        raw_model.to(memory_format=torch.contiguous_format).eval()
        save_hub_folder(raw_model, hub_dir, make_image_processor(full_train.dataset, image_size))
        write_run_files(hub_dir, args, state.history)
    accelerator.end_training()
    return hub_dir
