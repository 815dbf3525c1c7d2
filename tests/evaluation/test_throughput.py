"""Timing records how busy the rest of the machine was, so a measurement on a loaded machine is flagged."""

import subprocess
import sys
import time

import pytest

from mimo_hf.evaluation.throughput import (BUSY_MACHINE_SHARE, OtherLoad, cpu_features, describe_isa,
                                           machine_description, time_steps_interleaved)


def _busy_child(seconds):
    return subprocess.Popen([sys.executable, "-c", f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_other_processes_cpu_is_measured_and_flagged(capfd):
    child = _busy_child(3.0)
    try:
        time.sleep(0.3)  # the child is running
        timings = time_steps_interleaved({"a": lambda: time.sleep(0.05), "b": lambda: time.sleep(0.05)},
                                         warmup=0, repeats=8)
    finally:
        child.wait()
    shares = {t["other_cpu_share"] for t in timings.values()}
    assert len(shares) == 1  # one figure per timing run
    share = shares.pop()
    assert share > BUSY_MACHINE_SHARE  # the child kept one core busy the whole time
    assert "other processes used" in capfd.readouterr().err


def test_the_share_excludes_this_process_and_counts_all_cores(monkeypatch):
    from types import SimpleNamespace

    from mimo_hf.evaluation import throughput

    # Over 2 s of wall time on 4 cores the machine used 5 CPU seconds, 3 of them this process's threads.
    readings = {"busy": iter([100.0, 105.0]), "own": iter([10.0, 13.0]), "wall": iter([50.0, 52.0])}
    monkeypatch.setattr(throughput, "_machine_busy_seconds", lambda: next(readings["busy"]))
    monkeypatch.setattr(throughput, "_own_cpu_seconds", lambda: next(readings["own"]))
    monkeypatch.setattr(throughput, "time", SimpleNamespace(perf_counter=lambda: next(readings["wall"])))
    monkeypatch.setattr(throughput.os, "cpu_count", lambda: 4)
    with OtherLoad() as load:
        pass
    assert load.share == 0.25  # (5 - 3) / (2 s * 4 cores)


def test_no_proc_stat_gives_no_share(monkeypatch):
    from mimo_hf.evaluation import throughput

    monkeypatch.setattr(throughput, "_machine_busy_seconds", lambda: None)
    with OtherLoad() as load:
        pass
    assert load.share is None


@pytest.mark.parametrize("flags, isa", [
    (["fpu", "sse2", "avx2", "fma"], "AVX2, no VNNI"),
    (["avx2", "avx_vnni"], "AVX2 with AVX-VNNI"),
    (["avx2", "avx512f", "avx512bw"], "AVX-512, no VNNI"),
    (["avx2", "avx512f", "avx512_vnni", "avx512_bf16"], "AVX-512 with VNNI and BF16"),
    (["sse2"], "no AVX2")])
def test_the_isa_is_named_from_the_cpu_flags(flags, isa):
    assert describe_isa(cpu_features(flags)) == isa


def test_machine_description_names_this_cpu_with_its_isa():
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    flags = next(line for line in lines if line.startswith("flags")).split(":", 1)[1].split()
    name = next(line for line in lines if line.startswith("model name")).split(":", 1)[1].strip()
    described = machine_description()
    assert described["cpu"] == f"{name} ({describe_isa(cpu_features(flags))})"
    assert described["cpu_features"] == cpu_features(flags)
