#!/usr/bin/env python
"""Print the zoo tables of the README from zoo/*/eval_results.json.

MIMOConv rows come from scripts/evaluate_mimoconv.py results, MIMOFormer rows (--architecture
mimoformer) from scripts/evaluate_mimoformer.py results: test accuracy per grid and the CPU
throughput (merged in by a --throughput-only run where accuracy was measured elsewhere).
"""

import argparse
import json
from pathlib import Path

from mimo_hf.hub.card_mimoformer import LRA_TITLES, text_title

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--zoo", default=str(ROOT / "zoo"), help="folder of Hub-ready model folders (default: zoo/)")
    p.add_argument("--targets", action="store_true", help="also print how far each accuracy target got")
    p.add_argument("--architecture", choices=["mimoconv", "mimoformer"], default="mimoconv", help="which table (default: mimoconv)")
    p.add_argument("--publish", action="store_true", help="instead: every checkpoint of push_configs/ with its card template, Hub repo and Space")
    args = p.parse_args(argv)
    if args.publish:
        return publish_table()
    if args.architecture == "mimoformer":
        rows = mimoformer_table(args.zoo)
        if args.targets:
            print_mimoformer_targets(rows)
        return None
    rows, machines = [], {}
    for path in sorted(Path(args.zoo).glob("*/eval_results.json")):
        report = json.loads(path.read_text())
        config = json.loads((path.parent / "config.json").read_text())
        if config["model_type"] != "mimoconv":
            continue
        hardware = report["hardware"]
        machines.setdefault(f"{hardware['cpu']}, {hardware['threads']} threads", []).append(path.parent.name)
        trained = config.get("trained_superpositions") or [config["num_superpositions"]]
        epochs = epochs_cell(path.parent)
        for r in report["results"]:
            rows.append((path.parent.name, config["num_superpositions"], epochs, r["operating_point"],
                         "yes" if r["operating_point"] in trained else "no", 100 * r["accuracy"],
                         r.get("images_per_s"), r.get("speedup_vs_baseline", 1.0 if config["binding"] == "none" else None),
                         report["command"]))
    print("| model | N | epochs (trained / planned) | k | trained at k | test accuracy | images/s | vs baseline | command |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, epochs, k, trained, acc, ips, speedup, command in rows:
        print(f"| `{name}` | {n} | {epochs} | {k} | {trained} | {acc:.2f}% | {ips if ips is not None else '-'} | "
              f"{f'{speedup:.2f}x' if speedup is not None else '-'} | `{command}` |")
    print()
    for machine, names in machines.items():
        print(f"images/s measured on {machine}: {', '.join(f'`{n}`' for n in names)}")
    if args.targets:
        print_targets({(name, k): acc for name, _, _, k, _, acc, _, _, _ in rows})


def epochs_cell(folder):
    """"trained / planned" epochs of a MIMOConv run, from its metrics_history.json and training_args.json
    (an epoch of capacity N passes over the training images N times: equal trunk compute per epoch)."""
    history = json.loads((folder / "metrics_history.json").read_text()) if (folder / "metrics_history.json").is_file() else []
    args = json.loads((folder / "training_args.json").read_text()) if (folder / "training_args.json").is_file() else {}
    trained = history[-1]["epoch"] if history else "-"
    return f"{trained} / {args.get('epochs', '-')}"


def publish_table():
    import yaml

    space = ROOT / "spaces" / "mimo-hf-demo"
    in_space = {entry["repo_id"] for entry in json.loads((space / "models.json").read_text())}
    print("| checkpoint | card template (rendered at export) | push config | Hub repo (revision) | in the Space |")
    print("|---|---|---|---|---|")
    for config_path in sorted((ROOT / "push_configs").glob("*.yaml")):
        push = yaml.safe_load(config_path.read_text())
        folder = Path(push["folder"])
        print(f"| [`{folder.name}`]({folder}) | [{push['card_template']}]({push['card_template']}) | `push_configs/{config_path.name}` | "
              f"`{push['repo_id']}` ({push['revision']}) | {'yes' if push['repo_id'] in in_space else 'no'} |")


TASK_NAMES = {"listops": "ListOps", **LRA_TITLES}  # text rows: text_title (LRA Text, or Text-1k by its length)


def mimoformer_table(zoo):
    """Print the table; returns {folder name: (task cell, config, {grid: test accuracy in %})}."""
    rows = {}
    print("| model | task (length) | attention | grid | trained steps | test accuracy | sequences/s (CPU) | vs Performer | commands |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in sorted(Path(zoo).glob("*/eval_results.json")):
        config = json.loads((path.parent / "config.json").read_text())
        if config["model_type"] != "mimoformer":
            continue
        report = json.loads(path.read_text())
        history = json.loads((path.parent / "metrics_history.json").read_text())
        args = json.loads((path.parent / "training_args.json").read_text())
        name = text_title(report["sequence_length"]) if report["task"] == "text" else TASK_NAMES[report["task"]]
        task = f"{name} ({report['sequence_length']})"
        steps = f"{history[-1]['step']} / {args['max_steps']}"
        commands = dict.fromkeys([report["command"], report.get("throughput_command", "-")])  # one run may do both
        commands = "; ".join(f"`{c}`" for c in commands)
        rows[path.parent.name] = (task, config, {r["grid"]: 100 * r["accuracy"] for r in report["results"]})
        for r in report["results"]:
            speedup = r.get("speedup_vs_baseline", 1.0 if config["attention_type"] == "performer" else None)
            print(f"| `{path.parent.name}` | {task} | {config['attention_type']} | {r['grid']} | {steps} | "
                  f"{100 * r['accuracy']:.2f}% | {r.get('sequences_per_s', '-')} | "
                  f"{f'{speedup:.2f}x' if speedup is not None else '-'} | {commands} |")
    return rows


# Issue 10's targets on each task's test split, against the Performer of the same task and size:
# (label, folder prefix, largest allowed drop in points). att. may meet its target at 4x4 or, failing
# that, at 2x2 (the issue: "4x4 with the 2x2 warm-up, or 2x2 if 4x4 cannot reach the target").
MIMOFORMER_TARGETS = [("MIMOFormer att.+MLP", "mimoformer-attmlp", 3.5), ("MIMOFormer att.", "mimoformer-att", 5.0)]
ABOVE_CHANCE_POINTS = 10.0  # "every Performer well above chance"


def print_mimoformer_targets(rows):
    print()
    for name in sorted(n for n in rows if n.startswith("performer-")):
        task_name = name.removeprefix("performer-")
        task, config, acc = rows[name]
        chance, base = 100 / len(config["id2label"]), acc["1x1"]
        verdict = "met" if base >= chance + ABOVE_CHANCE_POINTS else "not met"
        print(f"- {task}: Performer at least {ABOVE_CHANCE_POINTS:.0f} points above chance ({chance:.2f}%): "
              f"{base:.2f}%, {verdict}")
        for label, prefix, gap in MIMOFORMER_TARGETS:
            if f"{prefix}-{task_name}" not in rows:
                print(f"- {task}: {label} within {gap} points of the Performer: no checkpoint")
                continue
            _, config, acc = rows[f"{prefix}-{task_name}"]
            grids = [f"{config['mimo_m']}x{config['mimo_n']}"]
            grids += [f"{m}x{n}" for m, n in config.get("trained_grids") or [] if f"{m}x{n}" not in grids]
            cells = []
            for grid in grids:
                delta = acc[grid] - base
                cells.append(f"{acc[grid]:.2f}% at {grid} ({delta:+.2f} points), {'met' if delta >= -gap else 'not met'}")
                if delta >= -gap:
                    break
            print(f"- {task}: {label} within {gap} points of the Performer: {'; '.join(cells)}")


# The zoo's accuracy targets (issue #3): (label, model, k, reference, allowed gap in points).
# Issue 9's targets on the CIFAR-10 test split: (label, model, k, largest allowed drop below the baseline).
TARGETS = [
    ("MIMOConv N=2 (k=2) within 2.5 points of the baseline", "mimoconv16-2-n2", 2, 2.5),
    ("MIMOConv N=4 (k=4) within 5 points of the baseline", "mimoconv16-2-n4", 4, 5.0),
    ("dynamic MIMOConv at k=1 within 1.5 points of the baseline", "mimoconv16-2-n4-dynamic", 1, 1.5),
    ("dynamic MIMOConv at k=4 within 6 points of the baseline", "mimoconv16-2-n4-dynamic", 4, 6.0),
]


def print_targets(acc, baseline="wrn16-2-baseline"):
    if (baseline, 1) not in acc:
        return
    base = acc[(baseline, 1)]
    print()
    print(f"- baseline >= 90% test accuracy: {base:.2f}%, {'met' if base >= 90 else 'not met'}")
    for label, name, k, gap in TARGETS:
        if (name, k) in acc:
            delta = acc[(name, k)] - base
            print(f"- {label}: {acc[(name, k)]:.2f}% ({delta:+.2f} points), {'met' if delta >= -gap else 'not met'}")


if __name__ == "__main__":
    main()
