"""Controlled experiment on why superposition MIMOFormer does (not) learn: docs/mimoformer_diagnosis.md.

Trains the Performer and MIMOFormer (att.+MLP 2x2, att. 2x2, att. 4x4) with the zoo's own training
loop (`mimo_hf.training.mimoformer.train`: AdamW, one-cycle LR, MIMO grid warm-up, evaluation on the
validation split) at several (head size, random features) sizes and learning rates, same steps for
every run, and reports the curves as JSON rows, a Markdown table and a PNG. Each run is one process
with `--num-threads` threads; `jobs` runs go side by side. A finished run (its JSON in
`<output-dir>/runs/`) is never trained again, so an interrupted grid continues where it stopped.

It also measures the per-parameter gradient norms at initialisation on one real training batch,
so that vanishing or missing gradients (e.g. superposition-specific paths that never train) show.
"""

import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

# name -> (attention_type, M, N)
MODELS = {
    "performer": ("performer", 1, 1),
    "att-mlp-2x2": ("mimo_att_mlp", 2, 2),
    "att-2x2": ("mimo_att", 2, 2),
    "att-4x4": ("mimo_att", 4, 4),
}
COLORS = {"performer": "black", "att-mlp-2x2": "tab:orange", "att-2x2": "tab:blue", "att-4x4": "tab:green"}
LINESTYLES = ["-", "--", ":", "-."]


def parse_size(text):
    """A size written HEAD:FEATURES (e.g. "16:64") as (head_dim, num_random_features)."""
    try:
        head, features = (int(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"a size is written HEAD_DIM:FEATURES (e.g. 16:64), got {text!r}") from None
    if head < 1 or features < 1:
        raise ValueError(f"head size and features must be >= 1, got {text!r}")
    return head, features


def run_name(model, size, lr):
    return f"{model}_h{size[0]}-r{size[1]}_lr{lr:g}"


def _train_arguments(cfg, model, size, lr, output_dir):
    """The `scripts/train_mimoformer.py` flags of one run (same data, schedule and steps for every model)."""
    kind, m, n = MODELS[model]
    flags = [
        "--task", "listops", "--data-dir", cfg["data_dir"], "--max-length", str(cfg["max_length"]),
        "--attention-type", kind, "--mimo-m", str(m), "--mimo-n", str(n),
        "--head-dim", str(size[0]), "--num-random-features", str(size[1]),
        "--hidden-size", str(cfg["hidden_size"]), "--num-attention-heads", str(cfg["num_attention_heads"]),
        "--intermediate-size", str(cfg["intermediate_size"]), "--num-hidden-layers", str(cfg["num_hidden_layers"]),
        "--max-steps", str(cfg["max_steps"]), "--batch-size", str(cfg["batch_size"]), "--lr", str(lr),
        "--warmup-steps", str(cfg["warmup_steps"]), "--eval-every", str(cfg["eval_every"]),
        "--eval-batch-size", "250", "--seed", str(cfg["seed"]), "--num-threads", str(cfg["num_threads"]),
        "--output-dir", output_dir, "--keep-checkpoints", "1",
    ]
    if cfg["max_eval_samples"]:
        flags += ["--max-eval-samples", str(cfg["max_eval_samples"])]
    if cfg["max_train_samples"]:
        flags += ["--max-train-samples", str(cfg["max_train_samples"])]
    if cfg["grid_warmup_steps"] is not None:
        flags += ["--grid-warmup-steps", str(cfg["grid_warmup_steps"])]
    return flags


def _run_one(cfg, model, size, lr):
    """Train one model in this (worker) process; returns its result row (also written to runs/<name>.json)."""
    import contextlib

    import torch

    from mimo_hf.training.mimoformer import train
    from mimo_hf.training.recipes import MIMOFormerRecipe

    torch.set_num_threads(cfg["num_threads"])
    name = run_name(model, size, lr)
    work = os.path.join(cfg["work_dir"], name)
    os.makedirs(work, exist_ok=True)
    args = MIMOFormerRecipe.from_flags(_train_arguments(cfg, model, size, lr, work))
    start, cpu_start = time.monotonic(), time.process_time()
    # The training loop's progress bar and per-evaluation lines go to the run's own log, not the grid's terminal.
    with open(os.path.join(work, "train.log"), "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        hub = train(args)
    # CPU seconds, not wall time: on a shared machine other jobs (or a paused process) stretch the wall clock.
    seconds, cpu_seconds = time.monotonic() - start, time.process_time() - cpu_start
    with open(os.path.join(hub, "metrics_history.json")) as f:
        history = json.load(f)
    kind, m, n = MODELS[model]
    key = f"val_accuracy@{m}x{n}"
    curve = [{"step": r["step"], "train_loss": r["train_loss"], "val_accuracy": r[key], "lr": r["lr"]} for r in history]
    best = max(curve, key=lambda r: r["val_accuracy"])
    row = {
        "name": name, "model": model, "attention_type": kind, "grid": f"{m}x{n}", "head_dim": size[0],
        "num_random_features": size[1], "lr": lr, "max_steps": cfg["max_steps"], "warmup_steps": cfg["warmup_steps"],
        "batch_size": cfg["batch_size"],
        "grid_warmup_steps": args.grid_warmup_steps, "max_length": cfg["max_length"],
        "hidden_size": cfg["hidden_size"], "num_attention_heads": cfg["num_attention_heads"],
        "num_hidden_layers": cfg["num_hidden_layers"], "intermediate_size": cfg["intermediate_size"],
        "seed": cfg["seed"], "num_threads": cfg["num_threads"], "wall_seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        # training sequences per CPU second, evaluations and checkpoints included
        "sequences_per_cpu_s": round(cfg["max_steps"] * cfg["batch_size"] / cpu_seconds, 1),
        "final_train_loss": curve[-1]["train_loss"], "final_val_accuracy": curve[-1]["val_accuracy"],
        "best_val_accuracy": best["val_accuracy"], "best_step": best["step"],
        "first_step_val_accuracy_above": _first_step_above(curve, cfg["learned_threshold"]),
        "val_count": history[-1][f"val_count@{m}x{n}"], "curve": curve,
    }
    path = os.path.join(cfg["output_dir"], "runs", f"{name}.json")
    with open(path + ".partial", "w") as f:
        json.dump(row, f, indent=1)
    os.replace(path + ".partial", path)
    return row


def cumulative_lr(step, lr, warmup_steps, max_steps):
    """Sum of the learning rate over the first `step` optimizer steps of the one-cycle-linear schedule.

    With Adam each step moves a weight by about the learning rate whatever the gradient's size, so the
    steps a run needs to leave a plateau scale like 1 / LR and this sum is what runs at different LRs share.
    """
    from mimo_hf.training.mimoformer import one_cycle_linear

    return lr * sum(one_cycle_linear(s, warmup_steps, max_steps) for s in range(step))


def _first_step_above(curve, threshold):
    """First evaluated step whose validation accuracy reaches `threshold` (None if never): when learning started."""
    return next((r["step"] for r in curve if r["val_accuracy"] >= threshold), None)


def listops_baselines(data_dir, max_eval_samples=None):
    """Accuracies that need no sequence model, on the validation examples the grid evaluates (fit on train).

    majority: always the most frequent training label. operator_only: the most frequent training label of
    each top-level operator (the first token), i.e. what a model that reads only the first token can reach.
    label_entropy: of the training labels, in nats (the loss of a model that has learnt only the prior).
    """
    from collections import Counter

    from mimo_hf.data.lra import read_split

    def split(name, limit=None):
        table, _ = read_split(data_dir, None, name, ("text", "label"))
        if limit:
            table = table.slice(0, limit)
        texts, labels = table.column("text").to_pylist(), table.column("label").to_pylist()
        return [t.split(" ", 1)[0] for t in texts], labels

    train_ops, train_labels = split("train")
    val_ops, val_labels = split("validation", max_eval_samples)
    prior = Counter(train_labels)
    majority = prior.most_common(1)[0][0]
    by_operator = {}
    for op, label in zip(train_ops, train_labels):
        by_operator.setdefault(op, Counter())[label] += 1
    guess = {op: counts.most_common(1)[0][0] for op, counts in by_operator.items()}
    total = len(train_labels)
    return {
        "validation_examples": len(val_labels),
        "majority": sum(label == majority for label in val_labels) / len(val_labels),
        "operator_only": sum(guess.get(op, majority) == label for op, label in zip(val_ops, val_labels)) / len(val_labels),
        "label_entropy": -sum(c / total * math.log(c / total) for c in prior.values()),
    }


def run_grid(cfg, models, sizes, lrs, jobs=1, progress=True):
    """Train every (model, size, lr) not finished yet, `jobs` processes at a time; then `report`. Returns the rows."""
    import multiprocessing

    for model in models:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    os.makedirs(os.path.join(cfg["output_dir"], "runs"), exist_ok=True)
    with open(os.path.join(cfg["output_dir"], "commands.jsonl"), "a") as f:  # one line per grid command
        f.write(json.dumps({**cfg, "models": models, "sizes": [list(s) for s in sizes], "lrs": lrs}) + "\n")
    with open(os.path.join(cfg["output_dir"], "baselines.json"), "w") as f:
        json.dump(listops_baselines(cfg["data_dir"], cfg["max_eval_samples"]), f, indent=1)
    todo = [(model, size, lr) for lr in lrs for size in sizes for model in models
            if not os.path.exists(os.path.join(cfg["output_dir"], "runs", f"{run_name(model, size, lr)}.json"))]
    # Largest heads first, so that the side-by-side processes finish close together.
    todo.sort(key=lambda job: -job[1][0] * job[1][1])
    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="runs", disable=not progress)
        # spawn: a fresh interpreter per worker, so thread settings and RNG state never leak between runs.
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_run_one, cfg, *job): job for job in todo}
            for future in as_completed(futures):
                row = future.result()
                bar.update(1)
                bar.write(f"{row['name']}: best val {row['best_val_accuracy']:.3f} at step {row['best_step']}, "
                          f"final loss {row['final_train_loss']:.3f}, {row['cpu_seconds'] / 60:.1f} CPU min")
        bar.close()
    return report(cfg["output_dir"])


def load_rows(output_dir):
    folder = os.path.join(output_dir, "runs")
    rows = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                rows.append(json.load(f))
    return rows


def _order(rows):
    models = list(MODELS)
    return sorted(rows, key=lambda r: (-r["lr"], r["hidden_size"], r["head_dim"], models.index(r["model"])))


def _size(r):
    """What a plot column / Performer comparison is keyed by: (width, head size, features)."""
    return r["hidden_size"], r["head_dim"], r["num_random_features"]


def markdown_table(rows):
    """One line per run: final/best validation accuracy, gap to the Performer of the same size and LR, loss."""
    performer = {(*_size(r), r["lr"]): r for r in rows if r["model"] == "performer"}
    lines = [("| model | width | head dim | features | LR | steps | val acc. final | val acc. best (step) | vs Performer (best) "
              "| train loss final | learned at step | cumulative LR there | CPU min | seq per CPU s |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in _order(rows):
        base = performer.get((*_size(r), r["lr"]))
        gap = "" if base is None or r is base else f"{100 * (r['best_val_accuracy'] - base['best_val_accuracy']):+.1f}"
        learned = r["first_step_val_accuracy_above"]
        # rows written before warmup_steps was recorded used the script's default, 10% of the steps
        warmup = r.get("warmup_steps", max(1, r["max_steps"] // 10))
        spent = "" if learned is None else f"{cumulative_lr(learned, r['lr'], warmup, r['max_steps']):.3f}"
        lines.append(
            f"| {r['model']} | {r['hidden_size']} | {r['head_dim']} | {r['num_random_features']} | {r['lr']:g} | {r['max_steps']} "
            f"| {100 * r['final_val_accuracy']:.1f} | {100 * r['best_val_accuracy']:.1f} ({r['best_step']}) | {gap} "
            f"| {r['final_train_loss']:.3f} | {'never' if learned is None else learned} | {spent} "
            f"| {r['cpu_seconds'] / 60:.1f} | {r['sequences_per_cpu_s']:.0f} |")
    return "\n".join(lines) + "\n"


def plot_curves(rows, path, title=None, baselines=None):
    """PNG: one column per (width, head dim, features); training loss on top, validation accuracy below; one colour
    per model, one line style per learning rate; dotted lines: the label entropy and the operator-only accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({_size(r) for r in rows})
    lrs = sorted({r["lr"] for r in rows}, reverse=True)
    fig, axes = plt.subplots(2, len(sizes), figsize=(4.2 * len(sizes), 6.4), dpi=90, squeeze=False, sharex=True)
    for col, size in enumerate(sizes):
        for r in _order(rows):
            if _size(r) != size:
                continue
            steps = [p["step"] for p in r["curve"]]
            style = {"color": COLORS[r["model"]], "linestyle": LINESTYLES[lrs.index(r["lr"]) % len(LINESTYLES)],
                     "label": f"{r['model']} lr {r['lr']:g}" if len(lrs) > 1 else r["model"], "linewidth": 1.4}
            axes[0, col].plot(steps, [p["train_loss"] for p in r["curve"]], **style)
            axes[1, col].plot(steps, [100 * p["val_accuracy"] for p in r["curve"]], **style)
        if baselines:
            axes[0, col].axhline(baselines["label_entropy"], color="grey", linestyle=":", linewidth=1)
            axes[1, col].axhline(100 * baselines["operator_only"], color="grey", linestyle=":", linewidth=1)
            axes[1, col].axhline(100 * baselines["majority"], color="grey", linestyle=":", linewidth=1)
        axes[0, col].set_title(f"width {size[0]}, head dim {size[1]}, {size[2]} features", fontsize=10)
        axes[1, col].set_xlabel("optimizer step")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("training loss (mean over eval interval)")
    axes[1, 0].set_ylabel("validation accuracy (%)")
    handles, labels = axes[1, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07 if len(labels) > 4 else 0.04, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


def report(output_dir):
    """rows.jsonl (without curves), table.md and curves.png from the finished runs in `output_dir`."""
    rows = load_rows(output_dir)
    if not rows:
        raise FileNotFoundError(f"no finished runs in {os.path.join(output_dir, 'runs')}")
    with open(os.path.join(output_dir, "rows.jsonl"), "w") as f:
        f.writelines(json.dumps({k: v for k, v in r.items() if k != "curve"}) + "\n" for r in _order(rows))
    baselines = None
    if os.path.exists(os.path.join(output_dir, "baselines.json")):
        with open(os.path.join(output_dir, "baselines.json")) as f:
            baselines = json.load(f)
    with open(os.path.join(output_dir, "table.md"), "w") as f:
        f.write(markdown_table(rows))
        if baselines:
            f.write(f"\nWithout a sequence model ({baselines['validation_examples']} validation examples): majority "
                    f"{100 * baselines['majority']:.1f}%, top-level operator only {100 * baselines['operator_only']:.1f}%; "
                    f"label entropy (loss of the prior) {baselines['label_entropy']:.3f}.\n")
    first = rows[0]
    plot_curves(rows, os.path.join(output_dir, "curves.png"),
                title=f"ListOps (max length {first['max_length']}), {first['num_hidden_layers']} layers, "
                      f"{first['num_attention_heads']} heads, batch {first['batch_size']}, {first['max_steps']} steps",
                baselines=baselines)
    return rows


def gradient_norms(cfg, models, sizes, batches=1):
    """{size: {model: {parameter: gradient norm}}} at initialisation, mean over `batches` real training batches.

    Every model starts from the same seed, in training mode (dropout on), at its full grid.
    """
    import torch

    from mimo_hf.data.lra import LRA_TASKS, load_lra_task
    from mimo_hf.training.mimoformer import build_model
    from mimo_hf.training.recipes import MIMOFormerRecipe

    torch.set_num_threads(cfg["num_threads"])
    count = batches * cfg["batch_size"]
    data = load_lra_task("listops", "train", data_dir=cfg["data_dir"], max_length=cfg["max_length"], max_examples=count)
    out = {}
    for size in sizes:
        per_model = {}
        for model in models:
            args = MIMOFormerRecipe.from_flags(_train_arguments(cfg, model, size, 1e-4, "unused"))
            torch.manual_seed(cfg["seed"])
            net = build_model(args, LRA_TASKS["listops"]).train()
            norms, losses = {}, []
            for b in range(batches):
                rows = slice(b * cfg["batch_size"], (b + 1) * cfg["batch_size"])
                net.zero_grad()
                loss = net(input_ids=data.input_ids[rows], attention_mask=data.attention_mask[rows],
                           labels=data.labels[rows]).loss
                loss.backward()
                losses.append(float(loss.detach()))
                for name, p in net.named_parameters():
                    norms[name] = norms.get(name, 0.0) + (float(p.grad.norm()) if p.grad is not None else math.nan) / batches
            per_model[model] = {"loss": sum(losses) / batches, "grad_norms": norms}
        out[f"{size[0]}:{size[1]}"] = per_model
    return out


def gradient_table(norms):
    """Markdown: gradient norm per parameter group (sum of squares over the group's tensors, then sqrt)."""
    groups = [("embeddings", ("embeddings",)), ("attn. query+key", ("attention.query", "attention.key")),
              ("attn. value", ("attention.value",)), ("attn. output W_o", ("attention.output",)),
              ("MLP", (".mlp.",)), ("LayerNorms", ("norm",)), ("classifier", ("classifier",))]
    lines = []
    for size, per_model in norms.items():
        models = list(per_model)
        lines += [f"\nhead dim:features = {size}\n", "| group | " + " | ".join(models) + " |",
                  "|---|" + "---|" * len(models)]
        for label, keys in groups:
            cells = []
            for model in models:
                g = per_model[model]["grad_norms"]
                total = sum(v * v for k, v in g.items() if any(s in k for s in keys) and not math.isnan(v))
                cells.append(f"{math.sqrt(total):.3g}")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        # The layer that superposition touches most: the last block's query/key (the attention pattern).
        for layer in ("layers.0", "layers.1"):
            cells = []
            for model in models:
                g = per_model[model]["grad_norms"]
                total = sum(v * v for k, v in g.items() if layer in k and (".query." in k or ".key." in k))
                cells.append(f"{math.sqrt(total):.3g}")
            lines.append(f"| {layer} query+key | " + " | ".join(cells) + " |")
        lines.append("| loss at init | " + " | ".join(f"{per_model[m]['loss']:.3f}" for m in models) + " |")
    return "\n".join(lines) + "\n"


def attention_interference(cfg, sizes, batches=1):
    """How much of the first block's attention branch is other inputs' interference, at initialisation.

    For att. at grid (m, n) the same weights run at grid (1, 1) give each input's own attention output
    (one cell: the binding cancels, a * a = 1), so the difference is exactly the crosstalk of the other
    m * n - 1 inputs. Returns {size: {grid: {"embedding", "own", "interference"}}}: mean per-token norms of
    the embeddings (the residual stream entering block 0), of W_o applied to the own attention output, and
    of W_o applied to the interference, on real training batches in eval mode (no dropout).
    """
    import torch

    from mimo_hf.data.lra import LRA_TASKS, load_lra_task
    from mimo_hf.training.mimoformer import build_model
    from mimo_hf.training.recipes import MIMOFormerRecipe

    torch.set_num_threads(cfg["num_threads"])
    count = batches * cfg["batch_size"]
    data = load_lra_task("listops", "train", data_dir=cfg["data_dir"], max_length=cfg["max_length"], max_examples=count)
    ids, mask = data.input_ids[:count], data.attention_mask[:count]
    keep = mask.unsqueeze(-1).float()

    def norm(t):  # mean per-token L2 norm over the real tokens
        return float((t.norm(dim=-1, keepdim=True) * keep).sum() / keep.sum())

    out = {}
    for size in sizes:
        args = MIMOFormerRecipe.from_flags(_train_arguments(cfg, "att-4x4", size, 1e-4, "unused"))
        torch.manual_seed(cfg["seed"])
        net = build_model(args, LRA_TASKS["listops"]).eval()
        encoder = net.mimoformer
        with torch.no_grad():
            x = encoder.embeddings(ids)
            layer = encoder.layers[0]
            h = layer.norm1(x)
            own = layer.attention.output(layer.attention.core(h, mask, (1, 1)))
            result = {"embedding": norm(x), "own": norm(own)}
            for grid in ((2, 2), (4, 4)):
                mixed = layer.attention.output(layer.attention.core(h, mask, grid))
                result[f"{grid[0]}x{grid[1]}"] = norm(mixed - own)
        out[f"{size[0]}:{size[1]}"] = result
    return out
