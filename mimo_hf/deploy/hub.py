"""The exported files in a Hub-ready folder: `<folder>/onnx/` and `<folder>/deploy_results.json`.

- `onnx/` is a folder written by scripts/export_onnx.py (deploy.json, model_<point>[_int8].onnx, the
  preprocessor). A push config uploads it only with `onnx: true`; then `onnx_problems` must find
  nothing: every file deploy.json lists is present and unchanged since the export verified it, no
  stray graph is there, and when the folder has deploy results, they were measured on exactly these
  files (same sha256), so the card's Deploy table describes what is uploaded.
- `deploy_results.json` is written by `scripts/evaluate_mimoconv.py --onnx <folder>/onnx
  --results-file deploy_results.json` (accuracy and throughput per runtime, precision and operating
  point); the card's Deploy section and the README's deploy table are rendered from it.

Nothing here imports the optional deployment packages.
"""

import json
from pathlib import Path

from mimo_hf.evaluation.throughput import BUSY_MACHINE_SHARE

ONNX_FOLDER = "onnx"
DEPLOY_RESULTS = "deploy_results.json"
RUNTIME_NAMES = {"torch": "PyTorch (eager)", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}


def read_deploy_results(folder):
    """The folder's deploy results JSON, or None when it has none."""
    path = Path(folder) / DEPLOY_RESULTS
    return json.loads(path.read_text()) if path.is_file() else None


def onnx_problems(folder):
    """What is wrong with `<folder>/onnx/` for publishing (an empty list when nothing)."""
    from .runtime import MANIFEST, read_manifest, sha256_of_files

    folder = Path(folder)
    onnx_dir = folder / ONNX_FOLDER
    hint = (f"export it with: python scripts/export_onnx.py --model {folder.as_posix()} --output "
            f"{onnx_dir.as_posix()} --int8 --calibration-data-dir DIR")
    try:
        manifest = read_manifest(onnx_dir)
        files = sha256_of_files(onnx_dir, manifest)
    except (FileNotFoundError, ValueError) as error:
        return [f"{ONNX_FOLDER}/: {error}" + ("" if "export" in str(error) else f"; {hint}")]
    problems = []
    stray = sorted(p.name for p in onnx_dir.glob("*.onnx") if p.name not in files)
    if stray:
        problems.append(f"{ONNX_FOLDER}/ holds ONNX files {MANIFEST} does not list: {stray}; remove them or re-export")
    results = read_deploy_results(folder)
    if results is not None:
        measured = (results.get("deploy") or {}).get("model", {}).get("files", {})
        if measured != files:
            problems.append(f"{DEPLOY_RESULTS} was measured on other ONNX files than {ONNX_FOLDER}/ holds; re-run its "
                            f"command: {results.get('command')}")
    return problems


def _percent(value):
    return f"{100 * value:.2f}%"


def card_deploy(folder, published=False):
    """Template variables of a card's Deploy section from deploy_results.json, or None without one."""
    results = read_deploy_results(folder)
    if results is None or not results.get("deploy"):
        return None
    deploy = results["deploy"]
    model = deploy["model"]

    def rows(entries, who):
        return [dict(who=who, runtime=RUNTIME_NAMES.get(r["runtime"], r["runtime"]), precision=r["precision"],
                     k=r["operating_point"], accuracy=_percent(r["accuracy"]), images_per_s=r.get("images_per_s"),
                     vs_eager=r.get("ratio_to_eager_fp32_baseline"), vs_same=r.get("ratio_to_baseline_same_runtime"))
                for r in entries]

    table = rows(model["results"], "this model")
    if deploy.get("baseline"):
        table += rows(deploy["baseline"]["results"], "baseline")
    files = sorted(model["files"])
    quantization = model.get("quantization") or {}
    calibration = model.get("calibration") or {}
    return dict(
        rows=table,
        has_throughput=all(row["images_per_s"] is not None for row in table),
        files=files,
        int8_files=[name for name in files if name.endswith("_int8.onnx")],
        published=published,
        export_command=model.get("export_command"),
        command=results["command"],
        hardware=results["hardware"],
        threads=deploy.get("threads") or results["hardware"].get("threads"),
        batch_size=results.get("throughput_batch_size"),
        num_examples=results["num_examples"],
        split=results["split"],
        quantization=quantization,
        calibration=calibration,
        versions=model.get("versions", {}),
        # Share of the CPU other processes used while timing (None: not recorded); the card flags a busy machine.
        other_cpu_share=deploy.get("other_cpu_share_while_timing"),
        busy_share=BUSY_MACHINE_SHARE,
    )
