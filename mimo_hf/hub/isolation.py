"""Run code as a new Hub user would: a fresh Python in which `import mimo_hf` fails.

Used by publishing (every folder must load through the Auto classes with `trust_remote_code=True`
alone) and by the model-card tests (the quickstart of every card runs unchanged). The parent calls
`run_isolated`; this file is also the child script, run with `python -I` (isolated mode: neither the
script's folder nor the working directory is importable), so it must not import mimo_hf itself.

Child usage:
    python -I -B isolation.py check SPEC.json OUT.json   # load folders, run their pipelines
    python -I -B isolation.py exec SCRIPT.py             # run a script
"""

import importlib.abc
import json
import os
import sys


class BlockMimoHf(importlib.abc.MetaPathFinder):
    """A new user's machine: the mimo_hf package is not installed (an editable install would be found)."""

    def find_spec(self, name, path=None, target=None):
        if name == "mimo_hf" or name.startswith("mimo_hf."):
            raise ImportError(f"mimo_hf is blocked here: a Hub user does not have it ({name})")
        return None


def check_folder(folder, task, inputs):
    """Load `folder` through AutoConfig, AutoModel and the task's Auto class (all from auto_map, with
    trust_remote_code=True) and run `pipeline(task)` on `inputs` (task None: a model no pipeline
    serves, e.g. LRA Image's pixel-id inputs; only the Auto classes are checked). Returns a JSON-able report."""
    import transformers
    from transformers import AutoConfig, pipeline

    report = {"folder": folder}
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    auto_map = getattr(config, "auto_map", None) or {}
    report["config_module"] = type(config).__module__
    report["auto_classes"] = sorted(auto_map)
    loaded = {}
    for auto_name in sorted(name for name in auto_map if name.startswith("AutoModel")):
        model, info = getattr(transformers, auto_name).from_pretrained(
            folder, trust_remote_code=True, output_loading_info=True)
        loaded[auto_name] = {
            "class": type(model).__name__,
            "module": type(model).__module__,
            "missing_keys": sorted(info.get("missing_keys", [])),
            "unexpected_keys": sorted(info.get("unexpected_keys", [])),
            "mismatched_keys": [str(k) for k in info.get("mismatched_keys", [])],
        }
    report["models"] = loaded
    report["labels"] = sorted(str(v) for v in config.id2label.values())
    report["pipeline_labels"] = []
    if task is None:
        return report
    classify = pipeline(task, model=folder, trust_remote_code=True)
    outputs = classify(inputs)
    report["pipeline_module"] = type(classify.model).__module__
    report["pipeline_labels"] = [[item["label"] for item in per_input] if isinstance(per_input, list)
                                 else [per_input["label"]] for per_input in outputs]
    return report


def _child(argv):
    sys.meta_path.insert(0, BlockMimoHf())
    mode = argv[0]
    if mode == "exec":
        import runpy

        runpy.run_path(argv[1], run_name="__main__")
    elif mode == "check":
        spec = json.loads(open(argv[1]).read())
        reports = [check_folder(item["folder"], item["task"], item["inputs"]) for item in spec]
        reports.append({"mimo_hf_modules": sorted(name for name in sys.modules if name.startswith("mimo_hf"))})
        with open(argv[2], "w") as f:
            json.dump(reports, f)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


def clean_environment(workdir, **extra):
    """The child's environment: offline, its own HF cache and modules cache in `workdir`, no token
    (HF_* variables are dropped, so the child never sees one), one thread (the checks are tiny)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "PYTHON"))}
    env.update(
        HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
        HF_HOME=str(os.path.join(workdir, "hf_home")), HF_MODULES_CACHE=str(os.path.join(workdir, "modules")),
        OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1",
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


def run_isolated(args, workdir, timeout=600, **env):
    """Run this file as the child with `args` in `workdir`; returns the CompletedProcess (text)."""
    import subprocess

    return subprocess.run([sys.executable, "-I", "-B", os.path.abspath(__file__), *args], cwd=str(workdir),
                          env=clean_environment(workdir, **env), capture_output=True, text=True, timeout=timeout)


if __name__ == "__main__":
    _child(sys.argv[1:])
