"""The README's examples and every script's `--help` examples are what a user can run.

README: a fenced block right after a `<!-- runnable -->` line runs as written from the repository
root, offline (python blocks in one fresh Python, to pay the imports once; bash blocks with bash); a
```text block right after an `<!-- output -->` line that follows it is exactly what it prints. Blocks
without the marker are not run here (installs, the test command itself, long training and benchmark
runs); the marker's count is pinned below so that a marker lost in an edit fails.

`--help` examples (the lines after "Examples:" in each script's docstring, which `--help` prints):
each names an existing script, only flags the script's `--help` lists, and only repository inputs that
exist (zoo/, push_configs/, model_cards/, mimo_hf/, spaces/ paths; outputs, git-ignored artifacts of an
earlier example, the user's own files and generated data folders are the example's to create). The
cheap ones (RUN_AS_WRITTEN) also run as written, with one stated substitution: an output folder under
/tmp becomes a fresh folder of the test's own.
"""

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUNNABLE = re.compile(r"^<!-- runnable -->\n```(python|bash)\n(.*?)^```\n(?:<!-- output -->\n```text\n(.*?)^```\n)?",
                      re.M | re.S)
README_RUNNABLE_BLOCKS = 2
# Inputs that must exist in a checkout when an example names them.
REPO_INPUTS = ("zoo/", "push_configs/", "model_cards/", "mimo_hf/", "spaces/")
# --help examples that run as written here (well under a second of work), with /tmp/... outputs moved
# into the test's folder. The others cost tens of seconds to hours of CPU (training, benchmarks, ListOps
# generation, exports with their load check; tests/hub/test_publishing.py runs export_hub_folder.py and
# push_to_hub.py --dry-run on a copy of a zoo folder and on a config outside push_configs/).
RUN_AS_WRITTEN = [
    "python scripts/deploy_table.py --model mimoconv16-2-n4 --targets",
    "python scripts/project_schedule.py --run 60:76.36 360:80.76 --target 85.24 --minutes-per-epoch 1.15",
]


def _env():
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("ACCELERATE_CONFIG_FILE", None)
    return env


def readme_blocks():
    """[(language, code, expected output or None)] of the README's runnable blocks."""
    return [(lang, code, out) for lang, code, out in RUNNABLE.findall(README.read_text(encoding="utf-8"))]


def test_readme_marks_its_runnable_blocks():
    blocks = readme_blocks()
    assert len(blocks) == README_RUNNABLE_BLOCKS, [code[:60] for _, code, _ in blocks]
    marker_lines = [line for line in README.read_text().splitlines() if line.strip() == "<!-- runnable -->"]
    assert len(marker_lines) == len(blocks), "a marker not right before a code fence"


def test_readme_runnable_blocks_run_as_written_and_print_what_the_readme_shows(tmp_path):
    python = [(code, out) for lang, code, out in readme_blocks() if lang == "python"]
    driver = tmp_path / "driver.py"
    # One process for all python blocks, each in a fresh namespace; a separator line between their outputs.
    driver.write_text("import sys\nimport torch\ntorch.set_num_threads(1)\n"
                      f"for i, code in enumerate({[code for code, _ in python]!r}):\n"
                      "    print(f'=== block {i}', flush=True)\n"
                      "    exec(compile(code, f'README block {i}', 'exec'), {'__name__': '__main__'})\n")
    proc = subprocess.run([sys.executable, str(driver)], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    outputs = re.split(r"^=== block \d+\n", proc.stdout, flags=re.M)[1:]
    assert len(outputs) == len(python)
    for (code, expected), out in zip(python, outputs):
        if expected is not None:
            assert out == expected, f"README shows:\n{expected}\nthe block prints:\n{out}"
    for lang, code, expected in readme_blocks():
        if lang == "bash":
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=ROOT, env=_env(), capture_output=True,
                                  text=True, timeout=300)
            assert proc.returncode == 0, (code, proc.stderr[-3000:])
            assert expected is None or proc.stdout == expected


def _docstring_examples(script):
    """The example command lines of a script's docstring (continuation lines joined)."""
    doc = ast.get_docstring(ast.parse(script.read_text())) or ""
    match = re.search(r"^Examples?\b.*:\n((?:[ \t]+.*\n?|\n)+)", doc, flags=re.M)
    if not match:
        return []
    lines, current = [], ""
    for line in match.group(1).splitlines():
        line = re.sub(r"\s+#.*$", "", line.strip())  # trailing comments
        if not line:
            continue
        current = f"{current} {line}" if current else line
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        lines.append(current)
        current = ""
    return [line for line in lines if re.match(r"^(?:[A-Z_]+=\S+ )*(python|bash|accelerate) ", line)]


SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))
EXAMPLES = [(script, line) for script in SCRIPTS for line in _docstring_examples(script)]


@pytest.fixture(scope="module")
def helps():
    """A script's --help text, run in this process (imports paid once) and cached."""
    import contextlib
    import io
    import runpy

    cache = {}

    def get(script):
        if script not in cache:
            argv, out = sys.argv, io.StringIO()
            sys.argv = [str(script), "--help"]
            try:
                with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
                    runpy.run_path(str(script), run_name="__main__")
            finally:
                sys.argv = argv
            assert exit_info.value.code == 0, script
            cache[script] = out.getvalue()
        return cache[script]

    return get


def test_every_script_has_examples_in_its_help(helps):
    documented = {script for script, _ in EXAMPLES}
    for script in SCRIPTS:
        if script.name in ("zoo_table.py", "recipe_study.py", "benchmark_augmentation.py"):
            continue  # their --help describes their one job; no command variants to show
        assert script in documented, f"{script.name}: no Examples: section"
    script = ROOT / "scripts" / "evaluate_mimoformer.py"  # the examples are what --help prints
    assert "Examples" in helps(script)


@pytest.mark.parametrize("script, line", EXAMPLES, ids=[f"{s.stem}:{i}" for i, (s, _) in enumerate(EXAMPLES)])
def test_help_example_names_real_flags_and_inputs(script, line, helps):
    words = shlex.split(line)
    while re.match(r"^[A-Z_]+=", words[0]):
        words.pop(0)
    if words[0] == "accelerate":  # accelerate launch [its flags] scripts/x.py ...
        words = words[next(i for i, w in enumerate(words) if w.startswith("scripts/")) - 1:]
    target = ROOT / words[1]
    assert target.is_file(), line
    if words[0] != "python":
        return
    usage = helps(target)
    outputs = set()
    for i, word in enumerate(words[2:], start=2):
        if word.startswith("--"):
            flag = word.split("=")[0]
            assert re.search(rf"{re.escape(flag)}\b", usage), f"{flag} is not a flag of {target.name}: {line}"
            if "output" in flag and i + 1 < len(words):
                outputs.add(words[i + 1])
    for word in words[2:]:
        if word.startswith(REPO_INPUTS) and word not in outputs and "*" not in word and not _ignored(word):
            assert (ROOT / word).exists(), f"{target.name} example names {word}, which does not exist: {line}"


def _ignored(path):
    """Whether git ignores `path`: a generated artifact (e.g. zoo/<name>/onnx/ from export_onnx.py) that an
    earlier example of the same help writes, not a file a checkout has."""
    # The trailing "/" lets a directory pattern ("/zoo/*/onnx/") match a folder that does not exist yet.
    proc = subprocess.run(["git", "check-ignore", "-q", path.rstrip("/") + "/"], cwd=ROOT, capture_output=True)
    return proc.returncode == 0


@pytest.mark.parametrize("line", RUN_AS_WRITTEN)
def test_cheap_help_examples_run_as_written(line, tmp_path):
    assert any(line == example for _, example in EXAMPLES), f"not an example of any --help: {line}"
    words = [str(tmp_path / word[len("/tmp/"):]) if word.startswith("/tmp/") else word for word in shlex.split(line)]
    proc = subprocess.run([sys.executable, *words[1:]], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (line, proc.stderr[-3000:])


def test_ci_runs_exactly_the_readme_test_command():
    """.ci/run's last line is the README's test command, character for character."""
    command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    assert any(block.strip() == command for block in blocks), command
    assert command.startswith(".ci/install_chromium.sh && ") and "python -m pytest -q" in command


def test_recipe_study_rows_are_complete():
    """docs/recipe_study.json (the rows recipe_study.py --summarize wrote from the runs; the README's and the
    study page's tables are printed from it, tests/test_scripts.py compares them) holds every variant."""
    rows = json.loads((ROOT / "docs" / "recipe_study.json").read_text())
    assert {r["variant"] for r in rows} >= {"base-paper", "base-fast", "n4-s2-paper", "n4-s2-fast", "n4-s4-fast"}
    assert all(0 < r[f"val_accuracy@k{r['capacity']}"] < 1 for r in rows)
