"""The command-line entry points run end to end on tiny inputs and write what they promise."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_checkpoints import lra_image_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (ROOT / "zoo" / "mimoconv16-2-n4-dynamic").is_dir(), reason="needs the zoo")
def test_main_job_evaluates_every_operating_point_on_the_shipped_sample(tmp_path):
    report = _load("evaluate_mimoconv").main(["--output-dir", str(tmp_path), "--repeats", "1", "--warmup", "0",
                                              "--threads", "1"])
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored == json.loads(json.dumps(report))
    assert [r["operating_point"] for r in stored["results"]] == [1, 2, 4]
    assert all(r["count"] == 1000 and 0 < r["accuracy"] < 1 and r["images_per_s"] > 0 for r in stored["results"])
    assert stored["baseline"]["count"] == 1000 and "speedup_vs_baseline" in stored["results"][0]
    # --check-subset (default 2,000) covers the whole 1,000-image sample: its pass must give the same accuracy.
    assert stored["subset_size"] == 1000
    assert all(r["subset_accuracy"] == r["accuracy"] for r in stored["results"])
    assert (tmp_path / "accuracy_throughput.png").stat().st_size > 1000


def test_evaluate_refuses_operating_points_that_do_not_divide_n(tmp_path):
    with pytest.raises(SystemExit, match="do not divide"):
        _load("evaluate_mimoconv").main(["--operating-points", "3", "--baseline", "none", "--no-throughput",
                                         "--output-dir", str(tmp_path)])


@pytest.mark.parametrize("script", ["evaluate_mimoconv", "evaluate_mimoformer"])
def test_evaluate_refuses_a_mistyped_folder_before_loading_anything(script, tmp_path, monkeypatch, capsys):
    """A --baseline (or --model) that is neither a folder nor a Hub id stops the run at once with its name,
    not after the model has been scored (the baseline loads last)."""
    loaded = []
    monkeypatch.setattr("mimo_hf.evaluation.accuracy.load_classifier", lambda *a, **k: loaded.append(a))
    model = str(ROOT / "zoo" / ("wrn16-2-baseline" if script == "evaluate_mimoconv" else "performer-text1k"))
    for flags, message in ((["--model", model, "--baseline", "zoo/no-such-baseline/"], "--baseline zoo/no-such-baseline/"),
                           (["--model", str(tmp_path / "no-such-model")], "--model " + str(tmp_path / "no-such-model"))):
        with pytest.raises(SystemExit, match=f"error: {re.escape(message)}: no such folder, and not a Hub id"):
            _load(script).main([*flags, "--no-throughput", "--output-dir", str(tmp_path)])
    assert loaded == []


@pytest.mark.parametrize("script, flags, message", [
    ("train_mimoconv", ["--model-name-or-path", "zoo/no-such-checkpoint/"],
     "--model-name-or-path zoo/no-such-checkpoint/: no such folder, and not a Hub id"),
    ("train_mimoconv", ["--num-superpositions", "4", "--low-superpositions", "3", "--full-capacity-prob", "0.8"],
     "--low-superpositions 3 must divide --num-superpositions 4"),
    ("train_mimoformer", ["--warmup-steps", "10", "--max-steps", "5"], "--warmup-steps 10 must be below --max-steps 5"),
])
def test_training_flags_that_cannot_work_are_a_usage_error(script, flags, message, tmp_path):
    """Argparse's way (usage, one error line, exit status 2), not a traceback, and nothing written."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / f"{script}.py"), *flags, "--output-dir",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.rstrip().splitlines()[-1]
    assert proc.stderr.startswith("usage:") and last.startswith(f"{script}.py: error: {message}"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags, message", [
    (["--data-dir", "no-such-folder"], "data directory 'no-such-folder' does not exist"),
    (["--data-dir", str(ROOT.parent / "shared" / "data" / "imdb")], "has no column 'img'; columns: ['text', 'label']"),
    (["--data-dir", str(ROOT.parent / "shared" / "data" / "cifar10"), "--split", "validation"], "no parquet shards validation-*"),
])
def test_evaluate_states_what_is_wrong_with_the_data_in_one_line(flags, message, tmp_path):
    if "no-such" not in flags[1] and not Path(flags[1]).is_dir():
        pytest.skip(f"{flags[1]} is not beside the checkout")
    with pytest.raises(SystemExit, match=re.escape(message)):
        _load("evaluate_mimoconv").main(["--model", str(ROOT / "zoo" / "wrn16-2-baseline"), "--baseline", "none", *flags,
                                         "--no-throughput", "--output-dir", str(tmp_path)])
    assert not any(tmp_path.iterdir())  # no results file from a run that scored nothing


def test_evaluate_mimoformer_states_a_missing_column_in_one_line(tmp_path):
    """A text model pointed at the CIFAR-10 folder (img/label, no text): the LRA loader's DataError is the
    script's one error line, before anything is scored."""
    cifar = ROOT.parent / "shared" / "data" / "cifar10"
    if not cifar.is_dir():
        pytest.skip(f"{cifar} is not beside the checkout")
    message = f"{cifar} split 'test' has no column 'text' (this task reads text, label); its columns: ['img', 'label']"
    with pytest.raises(SystemExit, match=re.escape(message)):
        _load("evaluate_mimoformer").main(["--model", str(ROOT / "zoo" / "mimoformer-att-text1k"), "--baseline", "none",
                                           "--data-dir", str(cifar), "--no-throughput", "--output-dir", str(tmp_path)])
    assert not any(tmp_path.iterdir())


def test_own_data_that_cannot_be_used_is_one_error_line(tmp_path):
    """A fine-tuning file without the image column: the script names the file, the flag and the columns it
    has, in one line (exit status 1, no traceback), and leaves no run folder behind."""
    (tmp_path / "train.csv").write_text("picture,kind\nx.png,0\ny.png,1\n")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_mimoconv.py"), "--model-name-or-path",
                           str(ROOT / "zoo" / "wrn16-2-baseline"), "--train-file", str(tmp_path / "train.csv"),
                           "--label-column", "kind", "--epochs", "1", "--output-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.rstrip().splitlines()[-1].endswith(
        f"error: {tmp_path / 'train.csv'} has no column 'image' (--image-column); its columns: ['picture', 'kind']")
    assert not (tmp_path / "run").exists()


def test_evaluate_names_the_flag_of_a_hub_id_that_does_not_load(tmp_path):
    # Offline (the test command) the Hub cannot be asked; online the repo does not exist: an OSError either way.
    with pytest.raises(SystemExit, match=r"error: --baseline someone/not-cached-anywhere: could not load it from the Hub"):
        _load("evaluate_mimoconv").main(["--model", str(ROOT / "zoo" / "wrn16-2-baseline"), "--baseline",
                                         "someone/not-cached-anywhere", "--no-throughput", "--output-dir", str(tmp_path)])


def test_benchmark_writes_rows_with_ratios(tmp_path):
    out = tmp_path / "bench.json"
    rows = _load("benchmark_throughput").main(["--depth", "10", "--width", "1", "--batch-size", "8", "--repeats", "1",
                                               "--warmup", "0", "--threads", "1", "--dynamic-capacity", "4",
                                               "--output", str(out)])
    assert json.loads(out.read_text()) == rows
    names = [r["name"] for r in rows]
    assert names == ["baseline", "mimoconv-n1", "mimoconv-n2", "mimoconv-n4", "mimoconv-n4-k1", "mimoconv-n4-k2"]
    assert rows[0]["ratio_to_baseline"] == 1.0 and rows[0]["mac_ratio_to_baseline"] == 1.0
    # MACs per image fall with k: the trunk is shared by k images.
    by_name = {r["name"]: r for r in rows}
    assert by_name["mimoconv-n4"]["gmacs_per_image"] < by_name["mimoconv-n4-k2"]["gmacs_per_image"] < by_name["mimoconv-n4-k1"]["gmacs_per_image"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_benchmark_times_training_steps_side_by_side(tmp_path, precision):
    out = tmp_path / "train.json"
    rows = _load("benchmark_throughput").main(["--mode", "train", "--depth", "10", "--width", "1", "--initial-width", "1",
                                               "--num-superpositions", "2", "--train-bundles", "4", "--repeats", "1",
                                               "--warmup", "0", "--threads", "1", "--no-tune-cpu-allocator",
                                               "--train-precision", precision, "--output", str(out)])
    assert json.loads(out.read_text()) == rows
    by_name = {r["name"]: r for r in rows}
    assert list(by_name) == ["baseline", "baseline-plain", "mimoconv-n2"]
    # the reference row is a plain fp32 step in the default layout, whatever the other rows run
    assert by_name["baseline-plain"]["precision"] == "fp32" and not by_name["baseline-plain"]["channels_last"]
    assert by_name["baseline"]["precision"] == by_name["mimoconv-n2"]["precision"] == precision
    assert by_name["mimoconv-n2"]["images_per_step"] == 8 and by_name["baseline"]["images_per_step"] == 4
    assert by_name["baseline"]["ratio_to_baseline"] == 1.0 and all(r["images_per_s"] > 0 for r in rows)
    assert all(r["gmacs_per_image"] > 0 for r in rows)


def test_bf16_training_step_runs_the_forward_under_autocast(monkeypatch):
    import torch

    from mimo_hf.evaluation.benchmark import BenchmarkSettings, build, train_step
    from mimo_hf.training import mimoconv

    settings = BenchmarkSettings(depth=10, width=1, initial_width=1)
    seen = []
    original = mimoconv.training_loss

    def spy(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu"))
        return original(*args, **kwargs)

    monkeypatch.setattr(mimoconv, "training_loss", spy)  # train_step imports it when called
    for precision in ("fp32", "bf16"):
        step, _ = train_step(build(settings, 2), 2, 2, True, True, 0, precision)
        step()
    assert seen == [False, True]


@pytest.mark.parametrize("name", ["train_mimoconv", "evaluate_mimoconv", "benchmark_throughput",
                                  "convert_reference_checkpoint", "export_hub_folder", "push_to_hub", "zoo_table",
                                  "benchmark_augmentation", "train_mimoformer", "evaluate_mimoformer", "generate_listops",
                                  "train_zoo", "recipe_study", "write_example_data", "export_onnx", "deploy_table", "diagnose_mimoformer",
                                  "plot_learning_curves", "profile_onnx", "refresh_tables", "project_schedule"])
def test_help_explains_every_script(name, capsys):
    import runpy
    import sys

    argv = sys.argv
    sys.argv = [name, "--help"]
    try:
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(ROOT / "scripts" / f"{name}.py"), run_name="__main__")
    finally:
        sys.argv = argv
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out
    # Defaults derived from the checkout's location are described, not printed as this machine's paths.
    assert str(ROOT) not in out.replace("\n", "").replace(" ", "") and str(ROOT) not in out
    # An example's line continuation stays a backslash at the end of the line: an unescaped one in the docstring
    # would join the example's lines into one, with the next line's indent inside it.
    joined = [line for line in out.splitlines() if re.search(r"\S {6,}--", line)]
    assert not joined, joined


REFRESH = _load("refresh_tables")


@pytest.mark.parametrize("block", REFRESH.BLOCKS, ids=[f"{b.page}:{b.marker}" for b in REFRESH.BLOCKS])
def test_generated_tables_are_their_commands_output(block, capsys, monkeypatch):
    """Every generated table of the README and docs/ is exactly what its command prints from the committed
    results (run in this process; scripts/refresh_tables.py rewrites them)."""
    monkeypatch.chdir(ROOT)
    script, *arguments = block.command
    _load(Path(script).stem).main(arguments)
    printed = capsys.readouterr().out.strip()
    assert REFRESH.block_content((ROOT / block.page).read_text(), block.marker, block.page) == printed


def test_every_generated_table_is_registered():
    found = {(str(path.relative_to(ROOT)), marker) for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
             for marker in re.findall(r"<!-- ([a-z0-9-]+):start -->", path.read_text())}
    assert found == {(b.page, b.marker) for b in REFRESH.BLOCKS}


def test_refresh_rewrites_only_the_stale_blocks(tmp_path, capsys):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "table.py").write_text("import sys\nprint('| a |\\n|---|\\n| ' + sys.argv[1] + ' |')\n")
    page = tmp_path / "page.md"
    before = "# title\n\n<!-- t:start -->\n| old |\n<!-- t:end -->\n\ntext after\n<!-- u:start -->\n| a |\n|---|\n| 2 |\n<!-- u:end -->\n"
    page.write_text(before)
    blocks = (REFRESH.Block("page.md", "t", ("scripts/table.py", "1")), REFRESH.Block("page.md", "u", ("scripts/table.py", "2")))
    with pytest.raises(SystemExit) as exit_info:
        REFRESH.main(["--check"], root=tmp_path, blocks=blocks)
    assert exit_info.value.code == 1 and page.read_text() == before  # --check writes nothing
    assert "page.md: t is stale" in capsys.readouterr().out
    assert REFRESH.main([], root=tmp_path, blocks=blocks) == [("page.md", "t")]
    assert page.read_text() == before.replace("| old |\n", "| a |\n|---|\n| 1 |\n")
    assert REFRESH.main(["--check"], root=tmp_path, blocks=blocks) == []
    assert REFRESH.main([], root=tmp_path, blocks=blocks[1:] + (REFRESH.Block("page.md", "t", ("scripts/table.py", "1")),)) == []


def test_refresh_errors(tmp_path):
    with pytest.raises(ValueError, match="exactly once"):
        REFRESH.block_span("<!-- t:start -->\n<!-- t:start -->\nx\n<!-- t:end -->", "t")
    with pytest.raises(ValueError, match="exactly once"):
        REFRESH.block_span("no markers", "t")
    with pytest.raises(ValueError, match="comes before"):
        REFRESH.block_span("<!-- t:end --><!-- t:start -->\n", "t")
    (tmp_path / "fail.py").write_text("import sys\nsys.exit('broken table')\n")
    with pytest.raises(RuntimeError, match="broken table"):
        REFRESH.Block("page.md", "t", ("fail.py",)).render(tmp_path)
    with pytest.raises(SystemExit):
        REFRESH.parse_args(["--only", "no-such-table"])


def test_benchmark_times_mimoformer_variants_side_by_side(tmp_path):
    rows = _load("benchmark_throughput").main(["--architecture", "mimoformer", "--sequence-lengths", "64", "--sequences", "16",
                                               "--hidden-size", "16", "--head-dim", "8", "--num-attention-heads", "2",
                                               "--intermediate-size", "16", "--num-random-features", "8", "--repeats", "1",
                                               "--warmup", "0", "--threads", "1", "--output", str(tmp_path / "b.json")])
    assert [r["name"] for r in rows] == ["performer", "mimo_att-2x2", "mimo_att-4x4", "mimo_att_mlp-2x2"]
    assert rows[0]["ratio_to_baseline"] == 1.0 and all(r["sequences_per_s"] > 0 for r in rows)
    by_name = {r["name"]: r for r in rows}
    # The attention core and (att.+MLP) the MLP are shared by a group: fewer MACs per sequence.
    assert by_name["mimo_att_mlp-2x2"]["mmacs_per_sequence"] < by_name["mimo_att-2x2"]["mmacs_per_sequence"] < rows[0]["mmacs_per_sequence"]


@pytest.mark.skipif(not (ROOT.parent / "shared" / "data" / "cifar10").is_dir(), reason="needs ../shared/data/cifar10")
def test_evaluate_mimoformer_scores_grids_and_merges_throughput(tmp_path):
    script = _load("evaluate_mimoformer")
    model = lra_image_checkpoint(tmp_path / "image-attmlp", attention_type="mimo_att_mlp", grid=(2, 2))
    baseline = lra_image_checkpoint(tmp_path / "image-performer", attention_type="performer")
    common = ["--model", str(model), "--baseline", str(baseline), "--max-eval-samples", "24", "--check-subset", "8",
              "--batch-size", "8", "--output-dir", str(tmp_path / "eval")]
    report = script.main(common + ["--no-throughput"])
    assert [r["grid"] for r in report["results"]] == ["1x1", "2x2"]
    assert all(r["count"] == 24 and "sequences_per_s" not in r for r in report["results"])
    merged = script.main(common + ["--throughput-only", "--throughput-batch-size", "8", "--repeats", "1", "--warmup", "0",
                                   "--threads", "1"])
    stored = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert [r["accuracy"] for r in stored["results"]] == [r["accuracy"] for r in report["results"]]  # kept
    assert all(r["sequences_per_s"] > 0 for r in stored["results"]) and stored["baseline"]["sequences_per_s"] > 0
    assert stored["throughput_command"] and merged["throughput_device"] == "cpu"


def test_recipe_study_summary_merges_new_rows_into_the_committed_ones(tmp_path, capsys):
    study = _load("recipe_study")
    for name, accuracy in (("base-fast", 0.70), ("base-fast-bf16", 0.71)):
        hub = tmp_path / "runs" / name / "hub"
        hub.mkdir(parents=True)
        (hub / "training_args.json").write_text(json.dumps({"num_superpositions": 1, "initial_width": 1.0, "preset": "fast"}))
        (hub / "metrics_history.json").write_text(json.dumps(
            [{"epoch": e, "val_accuracy@k1": 0.5, "train_seconds": 40} for e in (1, 2)]
            + [{"epoch": 3, "val_accuracy@k1": accuracy, "train_seconds": 40}]))
    committed = [{"variant": v, "what": "w", "epochs": 3, "capacity": 1, "initial_width": 1.0, "preset": "fast",
                  "val_accuracy@k1": 0.6, "val_curve": [0.6], "train_minutes": 9.0, "machine": "an earlier CPU"}
                 for v in ("base-paper", "base-fast")]
    output = tmp_path / "rows.json"
    output.write_text(json.dumps(committed))
    rows = study.main(["--runs-dir", str(tmp_path / "runs"), "--summarize", "--output", str(output)])
    here = rows[-1]["machine"]
    # Rows of other machines stay, the new ones join them in the variants' order; nothing is dropped.
    assert [(r["variant"], r["machine"]) for r in rows] == [
        ("base-paper", "an earlier CPU"), ("base-fast", "an earlier CPU"), ("base-fast", here), ("base-fast-bf16", here)]
    assert json.loads(output.read_text()) == rows and rows[3]["val_accuracy@k1"] == 0.71 and rows[3]["train_minutes"] == 2.0
    # Summarizing again on the same machine replaces its rows instead of adding copies.
    assert len(study.main(["--runs-dir", str(tmp_path / "runs"), "--summarize", "--output", str(output)])) == 4
    # A longer proxy of a variant is a row of its own, after the shorter ones.
    history = [{"epoch": e, "val_accuracy@k1": 0.5 + e / 100} for e in range(1, 5)]
    (tmp_path / "runs" / "base-fast" / "hub" / "metrics_history.json").write_text(json.dumps(history))
    rows = study.main(["--runs-dir", str(tmp_path / "runs"), "--summarize", "--output", str(output)])
    assert [(r["variant"], r["epochs"]) for r in rows] == [("base-paper", 3), ("base-fast", 3), ("base-fast", 3),
                                                           ("base-fast-bf16", 3), ("base-fast", 4)]
    assert "| `base-fast-bf16` |" in capsys.readouterr().out
