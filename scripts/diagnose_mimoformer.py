#!/usr/bin/env python
"""Controlled experiment: does superposition MIMOFormer learn where its Performer learns, and at which size?

Trains the Performer, att.+MLP 2x2, att. 2x2 and att. 4x4 (with the zoo's 2x2 grid warm-up) with the
zoo's training loop at each (head size, random features) of --sizes and each --lrs, same data, steps
and schedule, on a ListOps folder from scripts/generate_listops.py (validation split only; the test
split is never read). Writes to --output-dir:
  runs/<name>.json   one finished run: settings, timing, per-evaluation training loss and validation accuracy
  rows.jsonl         one JSON row per run (no curves), table.md (Markdown), curves.png (loss and accuracy vs step)
  baselines.json     majority / operator-only accuracy on the evaluated validation examples, label entropy
  grad_norms.json / grad_norms.md   with `gradients`: per-parameter gradient norms at initialisation
Finished runs are skipped, so a stopped grid continues where it stopped.

Commands:
  grid       train the grid (then report)
  report     re-render rows.jsonl, table.md and curves.png from finished runs
  gradients  gradient norms at initialisation on real training batches, and the size of the attention
             branch's crosstalk next to the embeddings (interference.json)
  baselines  accuracies without a sequence model (majority label, top-level operator only) -> baselines.json

Example (the numbers in docs/mimoformer_diagnosis.md):
  python scripts/generate_listops.py --preset cpu --min-length 20 --max-length 128 --output-dir data/listops-short
  python scripts/diagnose_mimoformer.py grid --data-dir data/listops-short --output-dir runs/diagnosis --jobs 2
"""

import argparse
import json
import os

from mimo_hf.settings import HelpFormatter
from mimo_hf.training.diagnosis_mimoformer import (
    MODELS,
    attention_interference,
    gradient_norms,
    gradient_table,
    listops_baselines,
    parse_size,
    report,
    run_grid,
)


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("command", choices=["grid", "report", "gradients", "baselines"])
    p.add_argument("--output-dir", required=True, help="folder for runs/, rows.jsonl, table.md, curves.png")
    p.add_argument("--work-dir", default=None, help="training run folders: checkpoints, Hub exports (default: <output-dir>/work)")
    p.add_argument("--data-dir", default=None, help="ListOps folder from scripts/generate_listops.py (grid, gradients)")
    p.add_argument("--max-length", type=int, default=128, help="padded sequence length (>= the longest expression)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--sizes", nargs="+", default=["16:64", "32:128", "64:256"], help="HEAD_DIM:FEATURES pairs")
    p.add_argument("--lrs", nargs="+", type=float, default=[1e-3], help="peak learning rates (each a full grid)")
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-attention-heads", type=int, default=4)
    p.add_argument("--intermediate-size", type=int, default=128)
    p.add_argument("--num-hidden-layers", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=1500, help="optimizer steps of every run")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup-steps", type=int, default=None, help="linear LR warm-up (default: 10%% of the steps)")
    p.add_argument("--grid-warmup-steps", type=int, default=None,
                   help="att. 4x4: steps at 2x2 first (default: the training loop's, 1/8 of the steps)")
    p.add_argument("--eval-every", type=int, default=50, help="evaluate the validation split every this many steps")
    p.add_argument("--max-eval-samples", type=int, default=500, help="validation examples per evaluation (0: all)")
    p.add_argument("--max-train-samples", type=int, default=0, help="first N training examples only (0: all)")
    p.add_argument("--learned-threshold", type=float, default=0.25,
                   help="'learned at step': first evaluation at or above this validation accuracy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--jobs", type=int, default=1, help="runs trained side by side (processes)")
    p.add_argument("--gradient-batches", type=int, default=4, help="gradients: batches averaged")
    p.add_argument("--no-progress", action="store_true")
    return p


def _print_table(output_dir):
    with open(os.path.join(output_dir, "table.md")) as f:
        print(f.read())


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "report":
        rows = report(args.output_dir)
        _print_table(args.output_dir)
        return rows
    if not args.data_dir or not os.path.isdir(args.data_dir):
        raise SystemExit(f"--data-dir {args.data_dir!r} is not a folder; make one with scripts/generate_listops.py")
    cfg = {k: getattr(args, k) for k in ("data_dir", "max_length", "hidden_size", "num_attention_heads",
                                         "intermediate_size", "num_hidden_layers", "max_steps", "batch_size",
                                         "grid_warmup_steps", "eval_every", "max_eval_samples", "max_train_samples",
                                         "learned_threshold", "seed", "num_threads")}
    cfg["data_dir"] = os.path.abspath(args.data_dir)
    cfg["output_dir"] = args.output_dir
    cfg["work_dir"] = args.work_dir or os.path.join(args.output_dir, "work")
    cfg["warmup_steps"] = args.warmup_steps if args.warmup_steps is not None else max(1, args.max_steps // 10)
    sizes = [parse_size(s) for s in args.sizes]
    if args.command == "baselines":
        result = listops_baselines(cfg["data_dir"], args.max_eval_samples or None)
        os.makedirs(args.output_dir, exist_ok=True)
        with open(os.path.join(args.output_dir, "baselines.json"), "w") as f:
            json.dump(result, f, indent=1)
        print(json.dumps(result))
        return result
    if args.command == "gradients":
        norms = gradient_norms(cfg, args.models, sizes, args.gradient_batches)
        os.makedirs(args.output_dir, exist_ok=True)
        with open(os.path.join(args.output_dir, "grad_norms.json"), "w") as f:
            json.dump(norms, f, indent=1)
        table = gradient_table(norms)
        crosstalk = attention_interference(cfg, sizes, args.gradient_batches)
        with open(os.path.join(args.output_dir, "interference.json"), "w") as f:
            json.dump(crosstalk, f, indent=1)
        table += ("\nAt initialisation, block 0 (mean per-token norms): embeddings entering the block, W_o of each "
                  "input's own attention output, W_o of the other inputs' interference at 2x2 and 4x4 (att.)\n\n"
                  "| head dim:features | embeddings | own attention | interference 2x2 | interference 4x4 |\n"
                  "|---|---|---|---|---|\n")
        for size, r in crosstalk.items():
            table += f"| {size} | {r['embedding']:.3f} | {r['own']:.3f} | {r['2x2']:.3f} | {r['4x4']:.3f} |\n"
        with open(os.path.join(args.output_dir, "grad_norms.md"), "w") as f:
            f.write(table)
        print(table)
        return norms
    rows = run_grid(cfg, args.models, sizes, args.lrs, jobs=args.jobs, progress=not args.no_progress)
    _print_table(args.output_dir)
    return rows


if __name__ == "__main__":
    main()
