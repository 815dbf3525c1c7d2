"""The MIMOFormer Long Range Arena recipe (spec section 3) on `accelerate`.

What makes it the authors' recipe:
- AdamW (betas 0.9/0.999, eps 1e-6, no weight decay), peak LR 1e-4, one-cycle schedule with linear
  warm-up and linear anneal, counted in optimizer steps (ListOps: batch 64, 20k steps, 1k warm-up);
- MIMO warm-up curriculum: the first `--grid-warmup-steps` steps run at a smaller grid (2x2), the rest
  at the full M x N grid;
- the test score is taken at the best validation checkpoint: the Hub-ready folder `<output-dir>/hub`
  is rewritten whenever the validation accuracy at the full grid improves.

Reproducibility and resume: shuffling is seeded per pass over the data, `accelerator.save_state`
stores the RNG states, and a resumed run skips the batches its interrupted pass had already used,
so it continues as if it had never stopped. `--max-minutes` is a wall-clock budget: the run stops at
the budget (the schedule is then not finished; the history says so) and still exports its best model.
"""

import json
import os
import time

import torch

from mimo_hf.training.engine import (
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

# Per-task recipe defaults of the authors' LRA configs (batch size, optimizer steps, LR warm-up steps).
LRA_RECIPES = {
    "listops": {"batch_size": 64, "max_steps": 20000, "warmup_steps": 1000},
    "text": {"batch_size": 32, "max_steps": 40000, "warmup_steps": 8000},
    "retrieval": {"batch_size": 32, "max_steps": 60000, "warmup_steps": 8000},
    "image": {"batch_size": 256, "max_steps": 70000, "warmup_steps": 175},
    "pathfinder": {"batch_size": 256, "max_steps": 124800, "warmup_steps": 312},
}


def parse_grid(text):
    """A grid written MxN (e.g. "2x2") as (m, n)."""
    try:
        m, n = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"a grid is written MxN (e.g. 2x2), got {text!r}") from None
    return m, n


def build_arg_parser():
    import argparse

    p = argparse.ArgumentParser(
        description="Train MIMOFormer (or its Performer / softmax baselines) on a Long Range Arena task with the "
        "authors' recipe on accelerate. Runs unchanged under `accelerate launch` on CPUs, one GPU or many.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = p.add_argument_group("data")
    d.add_argument("--task", choices=sorted(LRA_RECIPES), default="listops", help="LRA task")
    d.add_argument("--data-dir", default=None,
                   help="listops: folder from scripts/generate_listops.py; image: CIFAR-10 parquet folder; "
                        "text: IMDB parquet folder (default: the task's default location or Hub id)")
    d.add_argument("--max-length", type=int, default=None, help="sequence length (default: the task's LRA length)")
    d.add_argument("--validation-size", type=int, default=None, help="training examples held out for validation where the task has no validation split")
    d.add_argument("--max-train-samples", type=int, default=None, help="use only the first N training examples (smoke tests)")
    d.add_argument("--max-eval-samples", type=int, default=None, help="use only the first N validation examples (smoke tests)")
    m = p.add_argument_group("model")
    m.add_argument("--attention-type", choices=["softmax", "performer", "mimo_att", "mimo_att_mlp"], default="mimo_att")
    m.add_argument("--mimo-m", type=int, default=4, help="grid rows M (1 for the baselines)")
    m.add_argument("--mimo-n", type=int, default=4, help="grid columns N (1 for the baselines)")
    m.add_argument("--num-random-features", type=int, default=256, help="R, random features of the kernel")
    m.add_argument("--kernel", choices=["relu", "exp"], default="relu")
    m.add_argument("--hidden-size", type=int, default=64)
    m.add_argument("--num-attention-heads", type=int, default=4)
    m.add_argument("--head-dim", type=int, default=16)
    m.add_argument("--intermediate-size", type=int, default=128)
    m.add_argument("--num-hidden-layers", type=int, default=2)
    m.add_argument("--tie-layer-weights", action="store_true", help="share one block's weights across layers")
    m.add_argument("--pooling", choices=["mean", "masked_mean", "cls"], default="mean")
    m.add_argument("--position-embedding-type", choices=["learned", "sinusoidal"], default="learned")
    m.add_argument("--classifier-hidden-size", type=int, default=None, help="head hidden width (default: hidden size)")
    m.add_argument("--hidden-dropout-prob", type=float, default=0.1)
    m.add_argument("--embedding-dropout-prob", type=float, default=0.1)
    o = p.add_argument_group("optimisation (authors' LRA defaults; per-task values where unset)")
    o.add_argument("--max-steps", type=int, default=None, help="optimizer steps of the one-cycle schedule")
    o.add_argument("--batch-size", type=int, default=None, help="sequences per step per process")
    o.add_argument("--eval-batch-size", type=int, default=256)
    o.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    o.add_argument("--warmup-steps", type=int, default=None, help="linear LR warm-up steps")
    o.add_argument("--weight-decay", type=float, default=0.0)
    o.add_argument("--adam-eps", type=float, default=1e-6)
    o.add_argument("--max-grad-norm", type=float, default=None, help="clip gradients to this norm (authors: no clipping)")
    o.add_argument("--grid-warmup-steps", type=int, default=None,
                   help="MIMO warm-up: steps at --warmup-grid before the full grid (default: 1/8 of the steps for "
                        "grids above 2x2, else 0)")
    o.add_argument("--warmup-grid", default="2x2", help="grid of the MIMO warm-up, MxN")
    r = p.add_argument_group("run")
    r.add_argument("--eval-every", type=int, default=500, help="validate (and checkpoint) every this many steps")
    r.add_argument("--eval-grids", nargs="*", default=None, help="grids validated at each evaluation, MxN (default: the full grid)")
    r.add_argument("--stop-after-steps", type=int, default=None, help="stop (after checkpointing) at this step; resume later")
    r.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget: stop there, export the best model")
    add_run_arguments(o, r, unit="step", keep=1, output_help="run folder: logs and the best model as a Hub-ready folder <output-dir>/hub")
    return p


def resolve_recipe(args):
    """Fill the per-task defaults into `args` (in place) and validate the grid options."""
    recipe = LRA_RECIPES[args.task]
    for key in ("batch_size", "max_steps", "warmup_steps"):
        if getattr(args, key) is None:
            setattr(args, key, recipe[key])
    if args.attention_type in ("softmax", "performer"):
        args.mimo_m = args.mimo_n = 1
    full = (args.mimo_m, args.mimo_n)
    warm = parse_grid(args.warmup_grid)
    warm = (min(warm[0], full[0]), min(warm[1], full[1]))
    args.warmup_grid = f"{warm[0]}x{warm[1]}"
    if args.grid_warmup_steps is None:
        args.grid_warmup_steps = args.max_steps // 8 if full[0] * full[1] > 4 else 0
    if args.warmup_steps >= args.max_steps:
        raise ValueError(f"--warmup-steps {args.warmup_steps} must be below --max-steps {args.max_steps}")
    return args


def trained_grids(args):
    full = (args.mimo_m, args.mimo_n)
    grids = {full}
    if args.grid_warmup_steps > 0:
        grids.add(parse_grid(args.warmup_grid))
    return sorted(grids)


def rng_neutral(loader):
    """Iterate `loader` without consuming the global torch RNG.

    Starting a DataLoader iterator draws a seed from the global generator. A resumed run starts one
    iterator more than an uninterrupted run (at the resume point), which would shift the dropout
    random stream; restoring the generator around the start keeps both runs bitwise identical.
    """
    state = torch.get_rng_state()
    iterator = iter(loader)
    try:
        first = next(iterator)
    except StopIteration:
        return
    finally:
        torch.set_rng_state(state)
    yield first
    yield from iterator


def one_cycle_linear(step, warmup_steps, total_steps):
    """LR factor of the one-cycle schedule with linear warm-up to the peak and linear anneal to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def build_model(args, task_info):
    from mimo_hf.models.mimoformer.configuration_mimoformer import MIMOFormerConfig
    from mimo_hf.models.mimoformer.modeling_mimoformer import MIMOFormerForSequenceClassification

    labels = task_info["label_names"]
    config = MIMOFormerConfig(
        attention_type=args.attention_type, mimo_m=args.mimo_m, mimo_n=args.mimo_n,
        num_random_features=args.num_random_features, kernel=args.kernel, vocab_size=task_info["vocab_size"],
        max_position_embeddings=args.max_length, position_embedding_type=args.position_embedding_type,
        hidden_size=args.hidden_size, num_attention_heads=args.num_attention_heads, head_dim=args.head_dim,
        intermediate_size=args.intermediate_size, num_hidden_layers=args.num_hidden_layers,
        tie_layer_weights=args.tie_layer_weights, pooling=args.pooling, classifier_hidden_size=args.classifier_hidden_size,
        hidden_dropout_prob=args.hidden_dropout_prob, embedding_dropout_prob=args.embedding_dropout_prob,
        dual_encoder=task_info["dual"], trained_grids=trained_grids(args),
        pad_token_id=task_info["pad_token_id"],
        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
    )
    return MIMOFormerForSequenceClassification(config)


def _tensors(data):
    parts = [data.input_ids, data.attention_mask]
    if getattr(data, "input_ids_2", None) is not None:
        parts += [data.input_ids_2, data.attention_mask_2]
    return parts + [data.labels]


def export_best(raw_model, hub_dir, tokenizer, args, history):
    from mimo_hf.hub.export import save_hub_folder

    was_training = raw_model.training
    raw_model.eval()
    save_hub_folder(raw_model, hub_dir, tokenizer)
    raw_model.train(was_training)
    write_run_files(hub_dir, args, history)


def train(args):
    """Run (or resume) a training run described by `build_arg_parser()`'s arguments; returns the Hub folder."""
    from torch.utils.data import DataLoader, TensorDataset
    from tqdm.auto import tqdm

    from mimo_hf.evaluation.accuracy import evaluate_grids, sequence_inputs
    from mimo_hf.data.lra import LRA_TASKS, load_lra_task
    from mimo_hf.evaluation.metrics import load_metric
    from mimo_hf.data.tokenization import tokenizer_for_kind

    started = time.monotonic()
    resolve_recipe(args)
    task_info = LRA_TASKS[args.task]
    if args.max_length is None:
        args.max_length = task_info["max_length"]
    checkpoint_dir = checkpoint_folder(args)
    hub_dir = os.path.join(args.output_dir, "hub")
    accelerator = make_accelerator(args)

    load = dict(data_dir=args.data_dir, max_length=args.max_length, seed=args.seed)
    if args.validation_size is not None:
        load["validation_size"] = args.validation_size
    train_data = load_lra_task(args.task, "train", max_examples=args.max_train_samples, **load)
    val_data = load_lra_task(args.task, "validation", max_examples=args.max_eval_samples, **load)
    tokenizer = tokenizer_for_kind(task_info["tokenizer"], args.max_length)

    model = build_model(args, task_info)
    train_dl = DataLoader(TensorDataset(*_tensors(train_data)), batch_size=args.batch_size, shuffle=True, drop_last=True)
    val_dl = DataLoader(TensorDataset(*_tensors(val_data)), batch_size=args.eval_batch_size, shuffle=False)
    if len(train_dl) == 0:
        raise ValueError(f"{len(train_data)} training examples do not fill one batch of {args.batch_size}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=args.adam_eps,
                                  weight_decay=args.weight_decay)
    model, optimizer, train_dl, val_dl = accelerator.prepare(model, optimizer, train_dl, val_dl)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        base_optimizer(optimizer),
        lambda step: one_cycle_linear(step, args.warmup_steps, args.max_steps),
    )
    state = TrainState()
    accelerator.register_for_checkpointing(scheduler, state)
    if args.resume:
        path = resume_from(accelerator, args.resume, checkpoint_dir)
        accelerator.print(f"resumed from {path} at step {state.step}")

    start_tracking(accelerator, "train_mimoformer", args)
    metric = load_metric("accuracy")
    full_grid = (args.mimo_m, args.mimo_n)
    eval_grids = sorted({full_grid, *(parse_grid(g) for g in (args.eval_grids or []))})
    warm_grid = parse_grid(args.warmup_grid)
    raw_model = accelerator.unwrap_model(model)
    steps_per_pass = len(train_dl)

    def evaluate_and_checkpoint(stopped_by=None):
        results = evaluate_grids(model, val_dl, eval_grids, accelerator, metric)
        record = {"step": state.step, "train_loss": running["loss"] / max(running["count"], 1),
                  "lr": scheduler.get_last_lr()[0], "minutes": round((time.monotonic() - started) / 60, 2)}
        for grid, r in results.items():
            record[f"val_accuracy@{grid[0]}x{grid[1]}"] = r["accuracy"]
            record[f"val_count@{grid[0]}x{grid[1]}"] = r["count"]
        if stopped_by:
            record["stopped_by"] = stopped_by
        score = results[full_grid]["accuracy"]
        improved = state.best is None or score > state.best
        record["best"] = improved
        if improved:
            state.best = score
        state.history.append(record)
        running.update(loss=0.0, count=0)
        accelerator.log({k: v for k, v in record.items() if isinstance(v, float)}, step=state.step)
        accelerator.print(json.dumps(record))
        if accelerator.is_main_process:
            if improved:
                export_best(raw_model, hub_dir, tokenizer, args, state.history)
            else:
                write_run_files(hub_dir, args, state.history)
        save_checkpoint(accelerator, checkpoint_dir, f"step_{state.step}", args.keep_checkpoints)

    running = {"loss": 0.0, "count": 0}
    bar = tqdm(total=args.max_steps, initial=state.step, desc="train", disable=not accelerator.is_local_main_process)
    stop = None
    model.train()
    while state.step < args.max_steps and stop is None:
        data_pass, skip = divmod(state.step * args.gradient_accumulation_steps, steps_per_pass)
        train_dl.set_epoch(data_pass)
        batches = accelerator.skip_first_batches(train_dl, skip) if skip else train_dl
        for batch in rng_neutral(batches):
            grid = warm_grid if state.step < args.grid_warmup_steps else full_grid
            with accelerator.accumulate(model):
                out = model(**sequence_inputs(batch), labels=batch[-1], mimo_grid=grid)
                accelerator.backward(out.loss)
                if accelerator.sync_gradients and args.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            running["loss"] += float(out.loss.detach())
            running["count"] += 1
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running['loss'] / running['count']:.3f}", grid=f"{grid[0]}x{grid[1]}")
            if args.max_minutes is not None and (time.monotonic() - started) / 60 > args.max_minutes:
                stop = "time_budget"
            elif args.stop_after_steps is not None and state.step >= args.stop_after_steps:
                stop = "stop_after_steps"
            if stop or state.step % args.eval_every == 0 or state.step == args.max_steps:
                evaluate_and_checkpoint(stop if stop == "time_budget" else None)
            if stop or state.step >= args.max_steps:
                break
    bar.close()
    accelerator.wait_for_everyone()
    report_process_weights(accelerator, raw_model, args)
    accelerator.end_training()
    if stop == "stop_after_steps":
        accelerator.print(f"stopping at step {state.step}; continue with --resume latest")
        return None
    return hub_dir
