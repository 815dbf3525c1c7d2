"""The MIMOFormer Long Range Arena training loop (spec section 3) on `accelerate`, for a `MIMOFormerRecipe`.

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

import time

import torch

from mimo_hf.settings import grid_text
from mimo_hf.training.engine import TrainingRun, write_run_files


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


def build_model(recipe, task_info):
    """A freshly initialised `MIMOFormerForSequenceClassification` of the recipe's architecture for an LRA task."""
    from mimo_hf.models.mimoformer.configuration_mimoformer import MIMOFormerConfig
    from mimo_hf.models.mimoformer.modeling_mimoformer import MIMOFormerForSequenceClassification

    labels = task_info["label_names"]
    config = MIMOFormerConfig(
        attention_type=recipe.attention_type, mimo_m=recipe.mimo_m, mimo_n=recipe.mimo_n,
        num_random_features=recipe.num_random_features, kernel=recipe.kernel, vocab_size=task_info["vocab_size"],
        max_position_embeddings=recipe.max_length, position_embedding_type=recipe.position_embedding_type,
        hidden_size=recipe.hidden_size, num_attention_heads=recipe.num_attention_heads, head_dim=recipe.head_dim,
        intermediate_size=recipe.intermediate_size, num_hidden_layers=recipe.num_hidden_layers,
        tie_layer_weights=recipe.tie_layer_weights, pooling=recipe.pooling,
        classifier_hidden_size=recipe.classifier_hidden_size, hidden_dropout_prob=recipe.hidden_dropout_prob,
        embedding_dropout_prob=recipe.embedding_dropout_prob, dual_encoder=task_info["dual"],
        trained_grids=recipe.trained_grids, pad_token_id=task_info["pad_token_id"],
        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
    )
    return MIMOFormerForSequenceClassification(config)


class MIMOFormerLoop:
    """The prepared objects of a run and its steps: `train_pass`, `evaluate_and_checkpoint`."""

    def __init__(self, recipe):
        from torch.utils.data import DataLoader

        from mimo_hf.data.batches import TensorDict
        from mimo_hf.data.lra import LRA_TASKS
        from mimo_hf.data.tokenization import tokenizer_for_kind
        from mimo_hf.evaluation.metrics import load_metric

        self.started = time.monotonic()
        self.recipe = recipe
        self.run = TrainingRun(recipe, "train_mimoformer")  # seeds the RNGs: before the model is built
        self.finetuning = None
        if recipe.uses_own_data:  # fine-tuning a checkpoint on own text data (training/finetune.py)
            from mimo_hf.training.finetune import text_model_data_tokenizer

            model, train_data, val_data, self.tokenizer, self.finetuning = text_model_data_tokenizer(recipe)
        else:
            task_info = LRA_TASKS[recipe.task]
            train_data, val_data = self.load_data()
            self.tokenizer = tokenizer_for_kind(task_info["tokenizer"], recipe.max_length)
            model = build_model(recipe, task_info)
        train_dl = DataLoader(TensorDict(train_data.tensors()), batch_size=recipe.batch_size, shuffle=True,
                              drop_last=True)
        val_dl = DataLoader(TensorDict(val_data.tensors()), batch_size=recipe.eval_batch_size, shuffle=False)
        if len(train_dl) == 0:
            raise ValueError(f"{len(train_data)} training examples do not fill one batch of {recipe.batch_size}")
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.999), eps=recipe.adam_eps,
                                      weight_decay=recipe.weight_decay)
        prepared = self.run.prepare(model, optimizer, train_dl, val_dl, self.make_scheduler)
        self.model, self.optimizer, self.train_dl, self.val_dl, self.scheduler, _ = prepared
        self.metric = load_metric("accuracy")
        self.raw_model = self.run.accelerator.unwrap_model(self.model)
        self.running = {"loss": 0.0, "count": 0}

    def load_data(self):
        from mimo_hf.data.lra import load_lra_task

        r = self.recipe
        load = dict(data_dir=r.data_dir, max_length=r.max_length, seed=r.seed)
        if r.validation_size is not None:
            load["validation_size"] = r.validation_size
        return (load_lra_task(r.task, "train", max_examples=r.max_train_samples, **load),
                load_lra_task(r.task, "validation", max_examples=r.max_eval_samples, **load))

    def make_scheduler(self, optimizer, train_dl):
        r = self.recipe
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: one_cycle_linear(step, r.warmup_steps,
                                                                                          r.max_steps))

    def minutes(self):
        return (time.monotonic() - self.started) / 60

    def train_pass(self, bar):
        """The rest of the current pass over the data, step by step; returns why it stopped early, or None."""
        r, accelerator, state = self.recipe, self.run.accelerator, self.run.state
        data_pass, skip = divmod(state.step * r.gradient_accumulation_steps, len(self.train_dl))
        self.train_dl.set_epoch(data_pass)
        batches = accelerator.skip_first_batches(self.train_dl, skip) if skip else self.train_dl
        for batch in rng_neutral(batches):
            grid = r.grid_at(state.step)
            with accelerator.accumulate(self.model):
                out = self.model(**batch, mimo_grid=grid)
                accelerator.backward(out.loss)
                if accelerator.sync_gradients and r.max_grad_norm:
                    accelerator.clip_grad_norm_(self.model.parameters(), r.max_grad_norm)
                self.optimizer.step()
                if accelerator.sync_gradients:
                    self.scheduler.step()
                self.optimizer.zero_grad()
            self.running["loss"] += float(out.loss.detach())
            self.running["count"] += 1
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{self.running['loss'] / self.running['count']:.3f}", grid=grid_text(grid))
            stop = self.stop_reason()
            if stop or state.step % r.eval_every == 0 or state.step == r.max_steps:
                self.evaluate_and_checkpoint(stop if stop == "time_budget" else None)
            if stop or state.step >= r.max_steps:
                return stop
        return None

    def stop_reason(self):
        r, step = self.recipe, self.run.state.step
        if r.max_minutes is not None and self.minutes() > r.max_minutes:
            return "time_budget"
        if r.stop_after_steps is not None and step >= r.stop_after_steps:
            return "stop_after_steps"
        return None

    def evaluate_and_checkpoint(self, stopped_by=None):
        """Validate at every grid of the recipe, record, export the model when the full grid's accuracy
        improved (else only the records), checkpoint."""
        from mimo_hf.evaluation.accuracy import accuracy_at_points
        from mimo_hf.hub.export import save_hub_folder

        r, run, state = self.recipe, self.run, self.run.state
        results = accuracy_at_points(self.model, self.val_dl, r.eval_grid_list, run.accelerator, self.metric)
        entry = {"step": state.step, "train_loss": self.running["loss"] / max(self.running["count"], 1),
                 "lr": self.scheduler.get_last_lr()[0], "minutes": round(self.minutes(), 2)}
        for grid, scores in results.items():
            entry[f"val_accuracy@{grid_text(grid)}"] = scores["accuracy"]
            entry[f"val_count@{grid_text(grid)}"] = scores["count"]
        if stopped_by:
            entry["stopped_by"] = stopped_by
        score = results[r.full_grid]["accuracy"]
        entry["best"] = improved = state.best is None or score > state.best
        if improved:
            state.best = score
        self.running.update(loss=0.0, count=0)
        run.record(entry)
        if run.accelerator.is_main_process:
            if improved:
                was_training = self.raw_model.training
                save_hub_folder(self.raw_model.eval(), r.hub_folder, self.tokenizer, overwrite=True)
                self.raw_model.train(was_training)
            write_run_files(r.hub_folder, r, state.history)
        run.checkpoint(state.step)


def train(recipe):
    """Run (or resume) the training run of a `MIMOFormerRecipe`; returns the Hub folder (None when stopped early)."""
    from tqdm.auto import tqdm

    loop = MIMOFormerLoop(recipe)
    run = loop.run
    bar = tqdm(total=recipe.max_steps, initial=run.state.step, desc="train",
               disable=not run.accelerator.is_local_main_process)
    stop = None
    loop.model.train()
    while run.state.step < recipe.max_steps and stop is None:
        stop = loop.train_pass(bar)
    bar.close()
    run.finish(loop.raw_model)
    if loop.finetuning is not None and stop != "stop_after_steps" and run.accelerator.is_main_process:
        from mimo_hf.training.finetune import write_card

        write_card(recipe.hub_folder, recipe, run.state.history, loop.finetuning, "val_accuracy@")
    if stop == "stop_after_steps":
        run.accelerator.print(f"stopping at step {run.state.step}; continue with --resume latest")
        return None
    return recipe.hub_folder
