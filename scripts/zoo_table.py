#!/usr/bin/env python
"""Print the zoo table of the README from zoo/*/eval_results.json (written by scripts/evaluate_mimoconv.py)."""

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--zoo", default=str(ROOT / "zoo"), help="folder of Hub-ready model folders (default: zoo/)")
    args = p.parse_args(argv)
    rows = []
    for path in sorted(Path(args.zoo).glob("*/eval_results.json")):
        report = json.loads(path.read_text())
        config = json.loads((path.parent / "config.json").read_text())
        trained = config.get("trained_superpositions") or [config["num_superpositions"]]
        for r in report["results"]:
            rows.append((path.parent.name, config["num_superpositions"], r["operating_point"],
                         "yes" if r["operating_point"] in trained else "no", 100 * r["accuracy"],
                         r.get("images_per_s"), r.get("speedup_vs_baseline", 1.0 if config["binding"] == "none" else None),
                         report["command"]))
    print("| model | N | k | trained at k | test accuracy | images/s | vs baseline | command |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, k, trained, acc, ips, speedup, command in rows:
        print(f"| `{name}` | {n} | {k} | {trained} | {acc:.2f}% | {ips if ips is not None else '-'} | "
              f"{f'{speedup:.2f}x' if speedup is not None else '-'} | `{command}` |")


if __name__ == "__main__":
    main()
