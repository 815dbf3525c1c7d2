"""Model cards (README.md) of Hub-ready folders, rendered from a template and the folder's JSON files.

One Jinja template per architecture lives in `model_cards/<model_type>.md` (the push config names it)
and one metadata function per architecture turns the folder's files into the card's parts:

    card_parts(ctx: CardContext) -> CardParts

`ctx` holds the push config and the folder's `config.json`, results JSON, `training_args.json` and
`metrics_history.json`; `CardParts` holds the pipeline tag, extra tags, widget examples, the
`model-index` results and the template's variables. Everything shared (library, license, datasets,
metrics, the common tags, the citation, the repo id and the pinned revision) is filled in here, so a
new architecture is one template plus one function registered in `ARCHITECTURES`.

Every number on a card comes from the folder's files: `model-index` holds one `EvalResult` per
operating point whose value is the results JSON's accuracy, unchanged. `check_model_index` is the
test of that promise, shared by the tests and by `mimo_hf.publishing`.

The results JSON fields the shared code reads: `dataset` (Hub id, must equal the push config's),
`split`, and `results: [{operating_point, accuracy}, ...]` (accuracy as a fraction). The MIMOConv
card also reads `num_examples`, `data_note`, `command`, `hardware: {cpu, threads, torch, python}`,
`throughput_batch_size`, `results[].images_per_s`, `results[].speedup_vs_baseline` and
`baseline: {model, accuracy, images_per_s}` (all written by scripts/evaluate_mimoconv.py).
"""

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from huggingface_hub import EvalResult, ModelCard, ModelCardData

CITATION = """@inproceedings{menet2023mimonets,
  title     = {{MIMONets}: Multiple-Input-Multiple-Output Neural Networks Exploiting Computation in Superposition},
  author    = {Menet, Nicolas and Hersche, Michael and Karunaratne, Geethan and Benini, Luca and Sebastian, Abu and Rahimi, Abbas},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  volume    = {36},
  year      = {2023},
  eprint    = {2312.02829},
  archivePrefix = {arXiv},
  url       = {https://arxiv.org/abs/2312.02829}
}"""
PAPER_URL = "https://arxiv.org/abs/2312.02829"
# Tags every zoo card carries (issue 5); the architecture and the push config add their own.
COMMON_TAGS = ("mimonets", "superposition", "custom_code")
HUB_URL = "https://huggingface.co"


@dataclass(frozen=True)
class CardContext:
    """What a metadata function may read: the push config and the folder's JSON files."""

    push: object  # mimo_hf.push_config.PushConfig
    folder: Path
    config: dict  # config.json
    results: dict  # the push config's results JSON (scripts/evaluate_*.py)
    training_args: dict  # training_args.json, {} when absent
    history: list  # metrics_history.json, [] when absent

    def hub_file_url(self, path_in_repo):
        """URL of a file of this repo on the Hub (widget `src` must be a URL, not a relative path)."""
        return f"{HUB_URL}/{self.push.repo_id}/resolve/{self.push.branch}/{path_in_repo}"


@dataclass
class CardParts:
    """What a metadata function returns; `variables` are the template's own Jinja variables."""

    pipeline_tag: str
    eval_results: list
    tags: list = field(default_factory=list)
    widget: list = field(default_factory=list)
    variables: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Architecture:
    """A `config.json` model_type's card: metadata function and, optionally, files the card shows."""

    card_parts: Callable[[CardContext], CardParts]
    write_assets: Callable[[CardContext], list] | None = None  # returns the paths it (re)wrote


def _read_json(path, default=None, hint=""):
    path = Path(path)
    if not path.is_file():
        if default is not None:
            return default
        raise FileNotFoundError(f"{path} is missing{hint}")
    return json.loads(path.read_text())


def load_context(push):
    """The `CardContext` of a push config's folder; raises if config.json or the results JSON is missing."""
    folder = push.folder_path
    return CardContext(
        push=push,
        folder=folder,
        config=_read_json(folder / "config.json", hint=" (a Hub-ready folder is written by the training script)"),
        results=_read_json(push.results_path, hint=" (run the evaluation script; see the push config's 'results')"),
        training_args=_read_json(folder / "training_args.json", default={}),
        history=_read_json(folder / "metrics_history.json", default=[]),
    )


def architecture_of(ctx):
    model_type = ctx.config.get("model_type")
    if model_type not in ARCHITECTURES:
        raise ValueError(f"{ctx.folder}/config.json: no model card for model_type {model_type!r} "
                         f"(known: {sorted(ARCHITECTURES)}); add a template and a metadata function")
    return ARCHITECTURES[model_type]


def _unique(items):
    return list(dict.fromkeys(items))


def render_card(push):
    """The folder's model card as a `huggingface_hub.ModelCard`, rendered from the push config's template."""
    import jinja2
    from jinja2 import meta

    ctx = load_context(push)
    if ctx.results.get("dataset") != push.dataset:
        raise ValueError(f"{push.path}: dataset {push.dataset!r} differs from {push.results_path}'s "
                         f"{ctx.results.get('dataset')!r}")
    parts = architecture_of(ctx).card_parts(ctx)
    data = ModelCardData(
        library_name="transformers",
        license=push.license,
        pipeline_tag=parts.pipeline_tag,
        datasets=[push.dataset],
        metrics=["accuracy"],
        tags=_unique([*COMMON_TAGS, parts.pipeline_tag, *parts.tags, *push.tags]),
        model_name=push.repo_name,
        eval_results=parts.eval_results,
        widget=parts.widget,
    )
    variables = dict(repo_id=push.repo_id, revision=push.revision, license=push.license, citation=CITATION,
                     paper_url=PAPER_URL, **parts.variables)
    # Jinja renders an unknown variable as "", which would hide a typo in a template: refuse instead.
    template = push.template_path.read_text(encoding="utf-8")
    unknown = meta.find_undeclared_variables(jinja2.Environment().parse(template)) - set(variables) \
        - set(data.to_dict()) - {"card_data"}
    if unknown:
        raise ValueError(f"{push.template_path} uses variables nobody provides: {sorted(unknown)}")
    return ModelCard.from_template(data, template_path=str(push.template_path), **variables)


def write_card(push):
    """Write the architecture's assets (e.g. widget images) and README.md; returns the paths written."""
    ctx = load_context(push)
    architecture = architecture_of(ctx)
    written = list(architecture.write_assets(ctx)) if architecture.write_assets else []
    card = render_card(push)
    readme = push.folder_path / "README.md"
    if not readme.is_file() or readme.read_text(encoding="utf-8") != str(card):
        card.save(readme)
        written.append(readme)
    return written


def operating_point_results(ctx, task_type, task_name, dataset_name):
    """One `EvalResult` per operating point of the results JSON, value = its accuracy, unchanged."""
    return [
        EvalResult(
            task_type=task_type, task_name=task_name,
            dataset_type=ctx.results["dataset"], dataset_name=dataset_name, dataset_split=ctx.results["split"],
            metric_type="accuracy", metric_value=row["accuracy"],
            metric_name=f"Accuracy (k={row['operating_point']})", metric_config=f"k={row['operating_point']}",
        )
        for row in ctx.results["results"]
    ]


def check_model_index(card, results):
    """Problems (a list of strings, empty when fine) between a card's model-index and its results JSON."""
    problems = []
    found = {}
    for result in card.data.eval_results or []:
        if result.metric_type != "accuracy" or not (result.metric_config or "").startswith("k="):
            problems.append(f"model-index holds an unexpected result {result.metric_name!r} ({result.metric_config!r})")
            continue
        if result.metric_config in found:
            problems.append(f"model-index lists {result.metric_config} twice")
        found[result.metric_config] = result
        if result.dataset_type != results["dataset"] or result.dataset_split != results["split"]:
            problems.append(f"model-index {result.metric_config} is on {result.dataset_type}/{result.dataset_split}, "
                            f"the results JSON on {results['dataset']}/{results['split']}")
    expected = {f"k={row['operating_point']}": row["accuracy"] for row in results["results"]}
    for key in sorted(set(expected) - set(found)):
        problems.append(f"model-index has no result for {key} (results JSON: accuracy {expected[key]})")
    for key in sorted(set(found) - set(expected)):
        problems.append(f"model-index has {key} = {found[key].metric_value}, which the results JSON does not measure")
    for key in sorted(set(found) & set(expected)):
        if found[key].metric_value != expected[key]:
            problems.append(f"model-index {key} accuracy is {found[key].metric_value}, "
                            f"the results JSON says {expected[key]}")
    return problems


# --- MIMOConv (image classification on CIFAR) -----------------------------------------------------

DATASET_NAMES = {"uoft-cs/cifar10": "CIFAR-10", "uoft-cs/cifar100": "CIFAR-100", "ylecun/mnist": "MNIST"}
# Widget images: the first image of these classes in the CIFAR-10 test sample shipped with the package.
CIFAR10_WIDGET_CLASSES = ("cat", "ship")
CIFAR10_SAMPLE = Path(__file__).parent / "samples" / "cifar10" / "test-00000-of-00001.parquet"


def cifar10_widget_samples(id2label):
    """[(file name, label, row of the shipped sample)] of the widget images, or [] for other label sets."""
    import pyarrow.parquet as pq

    names = {int(k): v for k, v in id2label.items()}
    if sorted(names.values()) != sorted(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                         "ship", "truck"]):
        return []
    labels = pq.read_table(CIFAR10_SAMPLE, columns=["label"]).column("label").to_pylist()
    by_name = {v: k for k, v in names.items()}
    return [(f"example_{name}.png", name, labels.index(by_name[name])) for name in CIFAR10_WIDGET_CLASSES]


def _sample_image(row):
    import io

    import pyarrow.parquet as pq
    from PIL import Image

    image = pq.read_table(CIFAR10_SAMPLE, columns=["img"]).column("img")[row].as_py()
    return Image.open(io.BytesIO(image["bytes"])).convert("RGB")


def write_mimoconv_assets(ctx):
    """Save the widget images as PNG; an image is rewritten only when its pixels differ (PNG bytes
    depend on the zlib build, pixels do not)."""
    import numpy as np
    from PIL import Image

    written = []
    for name, _, row in cifar10_widget_samples(ctx.config["id2label"]):
        image, path = _sample_image(row), ctx.folder / name
        if path.is_file() and np.array_equal(np.asarray(Image.open(path).convert("RGB")), np.asarray(image)):
            continue
        image.save(path, format="PNG")
        written.append(path)
    return written


def training_command(training_args, parser, script):
    """The command line that reproduces `training_args.json` (the training script's `vars(args)`):
    every argument that differs from `parser`'s default, in the parser's order, so that parsing it
    gives back exactly these arguments. Shared by every architecture's card."""
    words = ["python", script]
    for action in parser._actions:
        if not action.option_strings or action.dest not in training_args:
            continue
        value = training_args[action.dest]
        if value == action.default and not action.required:
            continue
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:  # store_true flags
            words.append(flag)
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def _percent(value):
    return f"{100 * value:.2f}%"


def _baseline_row(ctx):
    """The results JSON's baseline, with the Hub repo that publishes it when a push config names it."""
    baseline = ctx.results.get("baseline")
    if not baseline:
        return None
    from .push_config import load_push_configs

    repo_id = None
    for other in load_push_configs(ctx.push.path.parent):
        if Path(other.folder) == Path(baseline["model"]):
            repo_id = other.repo_id
    return dict(name=Path(baseline["model"]).name, repo_id=repo_id, accuracy=_percent(baseline["accuracy"]),
                images_per_s=baseline.get("images_per_s"))


def mimoconv_card_parts(ctx):
    """Card parts of a MIMOConv (or plain Wide ResNet baseline) image classifier."""
    from .training import build_arg_parser

    config, results, args = ctx.config, ctx.results, ctx.training_args
    n = config["num_superpositions"]
    trained = config.get("trained_superpositions") or [n]
    dataset = DATASET_NAMES.get(results["dataset"], results["dataset"])
    jpeg = "JPEG" in (results.get("data_note") or "")
    dataset_name = f"{dataset} (JPEG quality-75 copy)" if jpeg else dataset
    samples = cifar10_widget_samples(config["id2label"])
    rows = [dict(k=row["operating_point"], accuracy=_percent(row["accuracy"]), images_per_s=row.get("images_per_s"),
                 speedup=row.get("speedup_vs_baseline"), trained=row["operating_point"] in trained)
            for row in results["results"]]
    final = ctx.history[-1] if ctx.history else {}
    processor = _read_json(ctx.folder / "preprocessor_config.json", default={})
    variables = dict(
        title=ctx.push.repo_name,
        is_baseline=config["binding"] == "none",
        capacity=n,
        default_k=config.get("default_superpositions") or n,
        operating_points=[row["k"] for row in rows],
        trained_points=trained,
        depth=config["depth"],
        width=config["width"],
        stem_channels=int(16 * config["initial_width"]),
        binding=config["binding"],
        activation=config["activation"],
        rows=rows,
        baseline=_baseline_row(ctx),
        dataset=dataset,
        dataset_id=results["dataset"],
        jpeg=jpeg,
        split=results["split"],
        num_examples=results["num_examples"],
        data_note=results.get("data_note"),
        hardware=results["hardware"],
        throughput_batch_size=results.get("throughput_batch_size"),
        has_throughput=all(row["images_per_s"] is not None for row in rows),
        plot="accuracy_throughput.png" if (ctx.folder / "accuracy_throughput.png").is_file() else None,
        eval_command=results["command"],
        train_command=training_command(args, build_arg_parser(), "scripts/train_mimoconv.py") if args else None,
        args=args,
        epochs=len(ctx.history),
        final_validation=[(key.split("@")[1], _percent(value)) for key, value in final.items()
                          if key.startswith("val_accuracy@")],
        samples=[dict(file=name, label=label, row=row) for name, label, row in samples],
        image_size=config.get("image_size"),
        image_mean=processor.get("image_mean"),
        image_std=processor.get("image_std"),
    )
    return CardParts(
        pipeline_tag="image-classification",
        eval_results=operating_point_results(ctx, "image-classification", "Image Classification", dataset_name),
        tags=["mimoconv", "wide-resnet"],
        widget=[{"src": ctx.hub_file_url(name), "example_title": f"{label} ({dataset} test image)"}
                for name, label, row in samples],
        variables=variables,
    )


# model_type (config.json) -> its card. MIMOFormer adds: "mimoformer": Architecture(mimoformer_card_parts).
ARCHITECTURES = {
    "mimoconv": Architecture(card_parts=mimoconv_card_parts, write_assets=write_mimoconv_assets),
}
