"""Model cards for Hub-ready folders, written only from the JSON files the scripts produced.

Every number in a card comes from `eval_results.json` (scripts/evaluate_mimoconv.py) or
`metrics_history.json` / `training_args.json` (scripts/train_mimoconv.py) in the same folder.
"""

import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

CITATION = """@inproceedings{menet2023mimonets,
  title     = {{MIMONets}: Multiple-Input-Multiple-Output Neural Networks Exploiting Computation in Superposition},
  author    = {Menet, Nicolas and Hersche, Michael and Karunaratne, Geethan and Benini, Luca and Sebastian, Abu and Rahimi, Abbas},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2023}
}"""


def _load(folder, name):
    path = Path(folder) / name
    return json.loads(path.read_text()) if path.is_file() else None


def build_model_card(folder, repo_id=None):
    """A `ModelCard` for the Hub-ready `folder` (needs config.json and eval_results.json)."""
    folder = Path(folder)
    config = _load(folder, "config.json")
    results = _load(folder, "eval_results.json")
    if config is None or results is None:
        raise FileNotFoundError(f"{folder} needs config.json and eval_results.json (run scripts/evaluate_mimoconv.py)")
    args = _load(folder, "training_args.json") or {}
    history = _load(folder, "metrics_history.json") or []
    name = repo_id or folder.name
    n = config["num_superpositions"]
    baseline = config["binding"] == "none"
    dataset_name = "CIFAR-10 (JPEG quality-75 copy)"

    eval_results = [
        EvalResult(task_type="image-classification", task_name="Image Classification", dataset_type="uoft-cs/cifar10",
                   dataset_name=dataset_name, dataset_split=results["split"], metric_type="accuracy",
                   metric_value=round(100 * row["accuracy"], 2), metric_name=f"Accuracy (k={row['operating_point']})",
                   metric_config=f"k={row['operating_point']}")
        for row in results["results"]
    ]
    data = ModelCardData(
        library_name="transformers", license="apache-2.0", pipeline_tag="image-classification",
        tags=["mimonets", "superposition", "image-classification", "custom_code"], datasets=["uoft-cs/cifar10"],
        metrics=["accuracy"], model_name=name, eval_results=eval_results,
    )

    hw = results["hardware"]
    lines = [f"# {name}", ""]
    if baseline:
        lines += [f"The plain pre-activation Wide ResNet WRN-{config['depth']}-{config['width']} baseline of the mimo-hf zoo: "
                  "the same code as MIMOConv with N = 1 and no binding.", ""]
    else:
        trained = config.get("trained_superpositions") or [n]
        lines += [f"MIMOConv (Menet et al., NeurIPS 2023) with a WRN-{config['depth']}-{config['width']} trunk and capacity "
                  f"N = {n}: up to {n} images share one pass through the trunk. Binding `{config['binding']}`, stem width "
                  f"{16 * config['initial_width']:g} channels, activation `{config['activation']}`. Trained at operating "
                  f"point(s) k = {', '.join(map(str, trained))}; every k that divides N can be selected per call.", ""]
    lines += ["## Results", "",
              f"{results['dataset']}, {results['split']} split, {results['num_examples']} images. "
              f"{results.get('data_note') or ''}".strip(), "",
              f"Throughput: inference, batch {results.get('throughput_batch_size')}, on {hw['cpu']} with {hw['threads']} "
              f"threads (torch {hw['torch']}), median of interleaved rounds measured in the same run.", "",
              "| operating point k | accuracy | images/s | vs baseline |", "|---|---|---|---|"]
    for row in results["results"]:
        lines.append(f"| {row['operating_point']} | {100 * row['accuracy']:.2f}% | {row.get('images_per_s', '-')} | "
                     f"{row.get('speedup_vs_baseline', '-')} |")
    if results.get("baseline"):
        b = results["baseline"]
        lines.append(f"| baseline `{Path(b['model']).name}` | {100 * b['accuracy']:.2f}% | {b.get('images_per_s', '-')} | 1.0 |")
    lines += ["", f"Produced by: `{results['command']}`", ""]
    if history:
        last = history[-1]
        vals = {k: v for k, v in last.items() if k.startswith("val_accuracy")}
        lines += ["## Training", "",
                  f"`scripts/train_mimoconv.py` on accelerate, {len(history)} epoch(s) (each epoch passes over the 45,000 "
                  f"training images N times), batch {args.get('batch_size')} bundles, one-cycle SGD with peak LR "
                  f"{args.get('lr')}, weight decay {args.get('weight_decay')}, mixup alpha {args.get('mixup_alpha')}, "
                  f"binding regulariser {args.get('binding_coef')}, isometry regulariser {args.get('isometry_coef')}, "
                  f"probability of full capacity {args.get('full_capacity_prob')}. 5,000 training images were held out "
                  f"for validation; final validation accuracy: "
                  + ", ".join(f"{k.split('@')[1]} {100 * v:.2f}%" for k, v in vals.items()) + ".", "",
                  "The full arguments are in `training_args.json`, the per-epoch history in `metrics_history.json`.", ""]
    lines += ["## Use", "", "```python",
              "from transformers import pipeline",
              f'classify = pipeline("image-classification", model="{name}", trust_remote_code=True)',
              'classify("image.png")', "```", "",
              "Pass `num_superpositions=k` to the model's forward to pick an operating point. Inputs are grouped in "
              "consecutive runs of k; a prediction depends on which inputs share its bundle.", "",
              "## Limitations", "",
              "- Trained and evaluated on a JPEG (quality 75) copy of CIFAR-10; numbers are not comparable with "
              "published CIFAR-10 results.",
              "- The training budget was small (see Training); accuracy is far from the paper's 1200-epoch runs.",
              "- Hub inference widgets do not run custom code; use `pipeline(..., trust_remote_code=True)` locally.", "",
              "## Citation", "", "```bibtex", CITATION, "```", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def write_model_card(folder, repo_id=None):
    """Write README.md and redraw accuracy_throughput.png, both from the folder's JSON files."""
    from .plotting import plot_operating_points

    card = build_model_card(folder, repo_id=repo_id)
    card.save(str(Path(folder) / "README.md"))
    results = _load(folder, "eval_results.json")
    if all("images_per_s" in row for row in results["results"]):
        baseline = results.get("baseline")
        plot_operating_points(results["results"], str(Path(folder) / "accuracy_throughput.png"),
                              title=f"{Path(folder).name} on {results['dataset']} ({results['split']})",
                              baseline=baseline if baseline and "images_per_s" in baseline else None)
    return card
