#!/usr/bin/env python
"""Print the README's deploy table (ONNX / int8) from zoo/<model>/deploy_results.json.

The results come from `scripts/evaluate_mimoconv.py --onnx <folder>/onnx --baseline-onnx ...
--results-file deploy_results.json`: accuracy on the test split and images/s of every runtime x
precision x operating point, the baseline's rows timed in the same run. --targets adds the issue's
deployment targets, computed from those numbers:

- int8 accuracy within 1 point of the fp32 PyTorch model at every operating point (every model
  with deploy results, every runtime);
- MIMOConv N=4 (k=4) int8 >= 12x the eager fp32 PyTorch baseline, and >= 2.5x the baseline's own
  int8 model on the same runtime (for every N=4 model of the table, or the --target-model runs).

Examples:
    python scripts/deploy_table.py --model mimoconv16-2-n4 --targets            # the README's table
    python scripts/deploy_table.py                                      # every model with deploy results
"""

import argparse
import json
from pathlib import Path

from mimo_hf.deploy.hub import RUNTIME_NAMES as RUNTIMES
from mimo_hf.evaluation.throughput import BUSY_MACHINE_SHARE

ROOT = Path(__file__).resolve().parents[1]


def load(zoo, names=None):
    """[(folder name, results)] of the deploy results in `zoo`, optionally only the named folders."""
    found = []
    for path in sorted(Path(zoo).glob("*/deploy_results.json")):
        if names and path.parent.name not in names:
            continue
        found.append((path.parent.name, json.loads(path.read_text())))
    missing = sorted(set(names or []) - {name for name, _ in found})
    if missing:
        raise SystemExit(f"error: no deploy_results.json in {zoo} for {missing}")
    return found


def table(name, results):
    deploy = results["deploy"]
    baseline = Path(results["baseline"]["model"]).name if results.get("baseline") else None
    lines = ["| model | runtime | precision | k | test accuracy | images/s | vs eager fp32 baseline | "
             "vs baseline, same runtime and precision |", "|---|---|---|---|---|---|---|---|"]
    for who, part in ((name, deploy["model"]), (baseline, deploy.get("baseline"))):
        for r in (part or {}).get("results", []):
            vs_eager, vs_same = r.get("ratio_to_eager_fp32_baseline"), r.get("ratio_to_baseline_same_runtime")
            lines.append(f"| `{who}` | {RUNTIMES.get(r['runtime'], r['runtime'])} | {r['precision']} | {r['operating_point']} | "
                         f"{100 * r['accuracy']:.2f}% | {r.get('images_per_s', '-')} | "
                         f"{'-' if vs_eager is None else f'{vs_eager:.2f}x'} | {'-' if vs_same is None else f'{vs_same:.2f}x'} |")
    hardware = results["hardware"]
    lines += ["", f"{results['num_examples']} images of the {results['split']} split ({results['dataset']}"
              + (", a JPEG quality-75 copy" if "JPEG" in (results.get("data_note") or "") else "") + "); "
              f"{hardware['cpu']}, {deploy.get('threads') or hardware['threads']} threads, batches of "
              f"{results.get('throughput_batch_size')}. Commands: `{deploy['model']['export_command']}`"
              + (f"; `{deploy['baseline']['export_command']}`" if (deploy.get("baseline") or {}).get("export_command") else "")
              + f"; `{results['command']}`."]
    share = deploy.get("other_cpu_share_while_timing")
    if share is None:
        lines += ["", "How busy the machine was while timing was not recorded (results written before the "
                  "evaluation measured it)."]
    elif share > BUSY_MACHINE_SHARE:
        lines += ["", f"**Timed while other processes used {100 * share:.0f}% of the machine's CPU: the images/s are "
                  "low and the ratios unreliable.**"]
    return lines


def targets(found, target_models):
    lines = []
    own = {name for name, _ in found}
    for name, results in found:
        parts = [("model", name)] + ([("baseline", Path(results["baseline"]["model"]).name)] if results.get("baseline") else [])
        for part, who in parts:
            if part == "baseline" and who in own:
                continue  # the baseline's own deploy results speak for it (other runs may hold an older checkpoint's)
            rows = (results["deploy"].get(part) or {}).get("results", [])
            eager = {r["operating_point"]: r["accuracy"] for r in rows if r["runtime"] == "torch"}
            gaps = [(100 * (r["accuracy"] - eager[r["operating_point"]]), r) for r in rows if r["precision"] == "int8"]
            if not gaps:
                continue
            worst, row = min(gaps, key=lambda gap: gap[0])
            lines.append(f"- `{who}` int8 within 1 point of fp32 PyTorch at every operating point: worst int8 - fp32 "
                         f"{worst:+.2f} points ({RUNTIMES[row['runtime']]}, k={row['operating_point']}), "
                         f"{'met' if worst >= -1.0 else 'not met'}")
    for name, results in found:
        if name not in target_models:
            continue
        rows = results["deploy"]["model"]["results"]
        top = max(r["operating_point"] for r in rows)
        for r in rows:
            if r["precision"] != "int8" or r["operating_point"] != top or r.get("images_per_s") is None:
                continue
            eager, same = r["ratio_to_eager_fp32_baseline"], r["ratio_to_baseline_same_runtime"]
            lines.append(f"- `{name}` k={top} int8 on {RUNTIMES[r['runtime']]} >= 12x the eager fp32 baseline: {eager:.2f}x, "
                         f"{'met' if eager >= 12 else 'not met'}; >= 2.5x the baseline's int8 on {RUNTIMES[r['runtime']]}: "
                         f"{same:.2f}x, {'met' if same >= 2.5 else 'not met'}")
    return list(dict.fromkeys(lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zoo", default=str(ROOT / "zoo"), help="folder of Hub-ready model folders (default: zoo/)")
    p.add_argument("--model", nargs="+", default=None, help="only these zoo folders (default: every one with deploy results)")
    p.add_argument("--targets", action="store_true", help="also print the deployment targets and whether they are met")
    p.add_argument("--target-model", nargs="+", default=None,
                   help="the N=4 models of the speed targets (default: every model of the table whose capacity is 4)")
    args = p.parse_args(argv)
    found = load(args.zoo, args.model)
    lines = []
    for name, results in found:
        lines += ([""] if lines else []) + table(name, results)
    if args.targets:
        every = found if args.model is None else load(args.zoo)
        chosen = args.target_model or [name for name, results in found if results.get("capacity") == 4]
        lines += [""] + targets(every, chosen)
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
