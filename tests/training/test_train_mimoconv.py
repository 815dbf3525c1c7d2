"""Tiny end-to-end training runs: DDP over gloo with two processes, and kill-and-resume exactness."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mimo_hf.training.engine import latest_checkpoint
from mimo_hf.training.mimoconv import time_left

ROOT = Path(__file__).resolve().parents[2]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
SCRIPT = ROOT / "scripts" / "train_mimoconv.py"

pytestmark = pytest.mark.skipif(not CIFAR.is_dir(), reason="needs ../shared/data/cifar10")

TINY = [
    "--data-dir", str(CIFAR), "--max-train-samples", "96", "--max-eval-samples", "50",
    "--depth", "10", "--width", "1", "--initial-width", "1", "--num-superpositions", "2",
    "--batch-size", "8", "--eval-batch-size", "16", "--full-capacity-prob", "0.5", "--num-threads", "1",
]


def _env():
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("ACCELERATE_CONFIG_FILE", None)
    return env


def _train(args, **kwargs):
    return subprocess.run([sys.executable, str(SCRIPT), *TINY, *args], env=_env(), capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_ddp_two_processes_count_every_example_once_and_agree(tmp_path):
    out = tmp_path / "ddp"
    # accelerate 1.15's `--cpu --num_processes 2` starts one process unless MPI is installed; torchrun's
    # launcher (`--multi_gpu`) with ACCELERATE_USE_CPU starts two CPU processes that use DDP over gloo.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT), *TINY,
           "--epochs", "2", "--output-dir", str(out), "--report-process-weights"]
    proc = subprocess.run(cmd, env=dict(_env(), ACCELERATE_USE_CPU="true"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    digests = [(out / f"weights_rank{i}.sha256").read_text() for i in (0, 1)]
    assert digests[0] == digests[1]
    history = json.loads((out / "hub" / "metrics_history.json").read_text())
    assert len(history) == 2
    for record in history:
        # 50 validation images over 2 processes and batches of 16: accelerate pads the last batch,
        # gather_for_metrics must drop the padding.
        assert record["val_count@k1"] == 50 and record["val_count@k2"] == 50


@pytest.mark.parametrize("preset", ["paper", "fast"])
def test_killed_run_resumes_exactly(tmp_path, preset):
    """Also with the fast preset, whose weight EMA and alternating flips are part of the resumed state."""
    full = _train(["--epochs", "3", "--preset", preset, "--output-dir", str(tmp_path / "full")])
    assert full.returncode == 0, full.stderr[-4000:]
    assert "epoch 2 of 3 done; about" in full.stdout and "epoch 3 of 3 done" not in full.stdout  # the run's ETA

    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *TINY, "--epochs", "3", "--preset", preset, "--output-dir", str(run)],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while latest_checkpoint(str(run / "checkpoints")) is None:
        assert proc.poll() is None, proc.stderr.read()[-4000:]
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # it was still running: the kill interrupted it
    assert not (run / "hub").exists()

    resumed = _train(["--epochs", "3", "--preset", preset, "--output-dir", str(run), "--resume", "latest"])
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "resumed from" in resumed.stdout

    expected = load_file(tmp_path / "full" / "hub" / "model.safetensors")
    got = load_file(run / "hub" / "model.safetensors")
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    history_full = json.loads((tmp_path / "full" / "hub" / "metrics_history.json").read_text())
    history_resumed = json.loads((run / "hub" / "metrics_history.json").read_text())
    untimed = [[{k: v for k, v in r.items() if k != "train_seconds"} for r in h] for h in (history_full, history_resumed)]
    assert untimed[0] == untimed[1]  # everything but the wall-clock time of each epoch
    assert all(r["train_seconds"] > 0 for r in history_resumed)


def test_bf16_autocast_on_a_cpu_without_bf16_instructions_is_warned_about():
    from mimo_hf.training.mimoconv import slow_bf16_warning

    assert "slower than in fp32" in slow_bf16_warning("cpu", "bf16", ["avx2", "avx512f", "avx512_vnni"])
    assert slow_bf16_warning("cpu", "bf16", ["avx2", "avx512f", "avx512_bf16"]) is None
    assert slow_bf16_warning("cpu", "bf16", ["avx2", "amx_int8", "amx_bf16"]) is None
    assert slow_bf16_warning("cpu", "no", ["avx2"]) is None  # fp32: nothing to warn about
    assert slow_bf16_warning("cuda", "bf16", ["avx2"]) is None  # the GPU runs bf16 natively


def test_time_left_is_the_median_of_the_last_epochs_times_the_epochs_left():
    history = [{"epoch": e, "train_seconds": t} for e, t in enumerate([900.0, 100.0, 110.0, 90.0, 400.0, 100.0], 1)]
    # the last five: 100, 110, 90, 400, 100 -> median 100 s; 354 epochs left
    assert time_left(history, 360) == ("epoch 6 of 360 done; about 9.8 h of training left at 100 s per epoch "
                                       "(median of the last 5), plus validation")
    assert time_left(history, 6) is None and time_left([], 10) is None
    assert time_left([{"epoch": 1}], 10) is None  # not timed
