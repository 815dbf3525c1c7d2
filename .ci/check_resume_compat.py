#!/usr/bin/env python
"""Runs started by an older checkout continue with this one, exactly (the checkpoint-format contract).

For MIMOConv (--preset paper and fast, the latter registering a weight EMA) and MIMOFormer (att. 2x2, and
att.+MLP 4x2 with the MIMO warm-up, stopped mid-pass), tiny runs are trained three ways: the OLD code for
the whole schedule; the OLD code stopped early (--stop-after-epochs / --stop-after-steps), then this
checkout's code with --resume latest. Weights and histories (minus wall-clock fields) must be bitwise
equal. Not part of CI: it needs the old tree, e.g.

    git archive <rev> mimo_hf scripts | tar -x -C /tmp/old
    python .ci/check_resume_compat.py --old /tmp/old
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

NEW = Path(__file__).resolve().parents[1]
TINY = ["--max-train-samples", "96", "--max-eval-samples", "50", "--depth", "10", "--width", "1", "--initial-width", "1",
        "--num-superpositions", "2", "--batch-size", "8", "--eval-batch-size", "16", "--full-capacity-prob", "0.5",
        "--num-threads", "1"]
TINY_FORMER = ["--hidden-size", "16", "--num-attention-heads", "2", "--head-dim", "8", "--intermediate-size", "16",
               "--num-random-features", "8", "--batch-size", "8", "--eval-batch-size", "16", "--warmup-steps", "2",
               "--num-threads", "1"]


def run(code, script, args):
    env = dict(os.environ, PYTHONPATH=str(code), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")
    env.pop("ACCELERATE_CONFIG_FILE", None)
    proc = subprocess.run([sys.executable, str(Path(code) / "scripts" / script), *args], env=env, capture_output=True,
                          text=True, cwd=tempfile.gettempdir())
    if proc.returncode:
        raise SystemExit(f"{code}/scripts/{script} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def same(full, resumed, clock):
    a, b = load_file(full / "hub" / "model.safetensors"), load_file(resumed / "hub" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "the final weights differ"
    strip = lambda path: [{k: v for k, v in r.items() if k != clock}  # noqa: E731
                          for r in json.loads((path / "hub" / "metrics_history.json").read_text())]
    assert strip(full) == strip(resumed), "the histories differ"
    return len(strip(full))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", required=True, help="extracted tree (mimo_hf/, scripts/) of the older checkout")
    p.add_argument("--cifar", default=str(NEW.parent / "shared" / "data" / "cifar10"), help="CIFAR-10 parquet folder")
    p.add_argument("--presets", nargs="+", default=["paper", "fast"],
                   help="MIMOConv --preset values to check; 'none' runs without the flag (checkouts that predate it)")
    args = p.parse_args(argv)
    old, tmp = Path(args.old).resolve(), Path(tempfile.mkdtemp(prefix="resume-compat-"))
    for preset in args.presets:
        full, part = tmp / f"conv-{preset}-full", tmp / f"conv-{preset}-part"
        common = ["--data-dir", args.cifar, *TINY, *([] if preset == "none" else ["--preset", preset]), "--epochs", "3"]
        run(old, "train_mimoconv.py", [*common, "--output-dir", str(full)])
        run(old, "train_mimoconv.py", [*common, "--output-dir", str(part), "--stop-after-epochs", "1"])
        assert "resumed from" in run(NEW, "train_mimoconv.py", [*common, "--output-dir", str(part), "--resume", "latest"])
        print(f"MIMOConv --preset {preset}: old 1 epoch + new 2 == old 3 epochs, bitwise "
              f"({same(full, part, 'train_seconds')} history entries)")
    sys.path.insert(0, str(NEW))
    from mimo_hf.data.listops import write_listops_dataset

    data = tmp / "listops"
    write_listops_dataset(str(data), train_size=64, validation_size=16, test_size=16, min_length=10, max_length=60,
                          seed=3, progress=False)
    for variant in (["--attention-type", "mimo_att", "--mimo-m", "2", "--mimo-n", "2"],
                    ["--attention-type", "mimo_att_mlp", "--mimo-m", "4", "--mimo-n", "2", "--grid-warmup-steps", "6"]):
        full, part = tmp / f"former-{variant[1]}-full", tmp / f"former-{variant[1]}-part"
        common = ["--task", "listops", "--data-dir", str(data), "--max-length", "64", *TINY_FORMER, *variant,
                  "--max-steps", "10", "--eval-every", "4", "--report-process-weights"]
        run(old, "train_mimoformer.py", [*common, "--output-dir", str(full)])
        run(old, "train_mimoformer.py", [*common, "--output-dir", str(part), "--stop-after-steps", "4"])
        assert "resumed from" in run(NEW, "train_mimoformer.py", [*common, "--output-dir", str(part), "--resume", "latest"])
        assert (full / "weights_rank0.sha256").read_text() == (part / "weights_rank0.sha256").read_text()
        print(f"MIMOFormer {variant[1]}: old 4 steps (mid-pass) + new 6 == old 10 steps, bitwise "
              f"({same(full, part, 'minutes')} history entries)")
    print("resume compatibility: OK")


if __name__ == "__main__":
    main()
