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
`split`, and `results: [{operating_point, accuracy}, ...]` (accuracy as a fraction); a results row
names its operating point either by `operating_point` (MIMOConv: k, model-index config "k=<k>") or by
`grid` (MIMOFormer: "MxN", model-index config "grid=MxN"), see `operating_point_config`. The MIMOConv
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


# The Hub's pipeline tag for a model no transformers pipeline serves (PIPELINE_DATA["other"] in
# huggingface.js/packages/tasks/src/pipelines.ts): no widget, no hosted inference. Such a card needs no
# widget examples and the publishing load check runs no pipeline for it.
NO_PIPELINE = "other"


@dataclass
class CardParts:
    """What a metadata function returns; `variables` are the template's own Jinja variables."""

    pipeline_tag: str  # a Hub pipeline tag, or NO_PIPELINE
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
        tags=_unique([*COMMON_TAGS, *([parts.pipeline_tag] if parts.pipeline_tag != NO_PIPELINE else []),
                      *parts.tags, *push.tags]),
        model_name=push.repo_name,
        eval_results=parts.eval_results,
        widget=parts.widget or None,  # no `widget: []` on a card without one
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


# model-index `config` prefixes of an operating point: MIMOConv's k, MIMOFormer's M x N grid.
OPERATING_POINT_PREFIXES = ("k=", "grid=")


def operating_point_config(row):
    """The model-index `config` of a results row: "k=<operating_point>" or "grid=<MxN>"."""
    if "operating_point" in row:
        return f"k={row['operating_point']}"
    return f"grid={row['grid']}"


def operating_point_results(ctx, task_type, task_name, dataset_name):
    """One `EvalResult` per operating point of the results JSON, value = its accuracy, unchanged."""
    return [
        EvalResult(
            task_type=task_type, task_name=task_name,
            dataset_type=ctx.results["dataset"], dataset_name=dataset_name, dataset_split=ctx.results["split"],
            metric_type="accuracy", metric_value=row["accuracy"],
            metric_name=f"Accuracy ({operating_point_config(row)})", metric_config=operating_point_config(row),
        )
        for row in ctx.results["results"]
    ]


def check_model_index(card, results):
    """Problems (a list of strings, empty when fine) between a card's model-index and its results JSON."""
    problems = []
    found = {}
    for result in card.data.eval_results or []:
        if result.metric_type != "accuracy" or not (result.metric_config or "").startswith(OPERATING_POINT_PREFIXES):
            problems.append(f"model-index holds an unexpected result {result.metric_name!r} ({result.metric_config!r})")
            continue
        if result.metric_config in found:
            problems.append(f"model-index lists {result.metric_config} twice")
        found[result.metric_config] = result
        if result.dataset_type != results["dataset"] or result.dataset_split != results["split"]:
            problems.append(f"model-index {result.metric_config} is on {result.dataset_type}/{result.dataset_split}, "
                            f"the results JSON on {results['dataset']}/{results['split']}")
    expected = {operating_point_config(row): row["accuracy"] for row in results["results"]}
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
                images_per_s=baseline.get("images_per_s"), sequences_per_s=baseline.get("sequences_per_s"))


def _deploy_section(ctx):
    """The Deploy section's variables (ONNX / int8, from deploy_results.json), None without that file."""
    from .deploy.hub import card_deploy

    return card_deploy(ctx.folder, published=ctx.push.onnx)


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
        deploy=_deploy_section(ctx),
    )
    return CardParts(
        pipeline_tag="image-classification",
        eval_results=operating_point_results(ctx, "image-classification", "Image Classification", dataset_name),
        tags=["mimoconv", "wide-resnet"],
        widget=[{"src": ctx.hub_file_url(name), "example_title": f"{label} ({dataset} test image)"}
                for name, label, row in samples],
        variables=variables,
    )


# --- MIMOFormer (Long Range Arena sequence classification) -----------------------------------------
#
# The MIMOFormer results JSON (scripts/evaluate_mimoformer.py) holds `task`, `dataset`, `split`,
# `num_examples`, `sequence_length`, `results: [{grid, inputs_per_group, accuracy, sequences_per_s?,
# speedup_vs_baseline?}]`, `baseline: {model, accuracy, sequences_per_s?}` (None for the Performer),
# `hardware` (where the accuracies were measured, with `gpu` when on a GPU), `command`, and, once the
# throughput was timed, `throughput_hardware`, `throughput_batch_size`, `throughput_command`.

VARIANTS = {"performer": "Performer baseline", "softmax": "softmax Transformer baseline",
            "mimo_att": "MIMOFormer att.", "mimo_att_mlp": "MIMOFormer att.+MLP"}
# Generated ListOps settings (scripts/generate_listops.py PRESETS; a test keeps the two in step).
LISTOPS_SETTINGS = {
    "cpu": {"title": "ListOps-CPU", "train": 20000, "validation": 1000, "test": 1000, "min_length": 100,
            "max_length": 500},
    "lra": {"title": "LRA ListOps", "train": 96000, "validation": 2000, "test": 2000, "min_length": 500,
            "max_length": 2000},
}
LRA_TITLES = {"image": "LRA Image", "text": "LRA Text"}
# Widget examples, also the quickstart's input (one short input keeps the offline test fast).
# ListOps: prefix expressions, tokens separated by spaces, "]" closes an operator; label = the value.
LISTOPS_EXAMPLES = [("[MAX 2 9 [MIN 4 7 ] 0 ]", "MAX(2, 9, MIN(4, 7), 0) = 9"),
                    ("[SM 3 [MED 1 5 8 ] 6 ]", "SM = (3 + MED(1, 5, 8) + 6) mod 10 = 4")]
TEXT_EXAMPLES = [("A warm, funny and beautifully acted film. I loved every minute of it.", "a positive review"),
                 ("Dull, predictable and far too long. I wanted my two hours back.", "a negative review")]
# The zoo (scripts/reproduce_mimoformer_zoo.sh) ran every task setting at once on one GPU, in two
# wall-clock-limited segments: a first run with MAX_MINUTES=5.5, then RESUME=1 with the budget that
# training_args.json records. The first budget is not stored in the folders (training_args.json holds
# the arguments of the last segment), so it is recorded here; cards use it only when
# metrics_history.json shows a resumed run.
ZOO_TASKS = "listops-cpu image listops text"
ZOO_FIRST_BUDGET_MINUTES = 5.5


def _grid_text(grid):
    return f"{grid[0]}x{grid[1]}"


def listops_setting(dataset):
    """The LISTOPS_SETTINGS key named by a ListOps results `dataset` ("... --preset cpu)"), or None."""
    for key in LISTOPS_SETTINGS:
        if f"--preset {key}" in dataset:
            return key
    return None


def training_segments(history):
    """The runs of a (possibly resumed) training: [{first_step, last_step, minutes, stopped_by}]. A
    resumed run restarts its wall clock, so a drop in `minutes` starts a new segment."""
    segments = []
    for entry in history:
        if not segments or entry["minutes"] < segments[-1]["minutes"]:
            segments.append({"first_step": entry["step"], "last_step": entry["step"], "minutes": entry["minutes"],
                             "stopped_by": None})
        segment = segments[-1]
        segment.update(last_step=entry["step"], minutes=entry["minutes"], stopped_by=entry.get("stopped_by"))
    return segments


def _training_story(ctx):
    """Steps reached, wall-clock segments and the best checkpoint, all from metrics_history.json."""
    args, history = ctx.training_args, ctx.history
    if not history:
        return None
    segments = training_segments(history)
    best = [entry for entry in history if entry.get("best")]
    best = best[-1] if best else history[-1]
    val_key = next(key for key in best if key.startswith("val_accuracy@"))
    final = history[-1]
    return dict(
        segments=segments,
        resumed=len(segments) > 1,
        first_budget=ZOO_FIRST_BUDGET_MINUTES if len(segments) > 1 else args.get("max_minutes"),
        last_budget=args.get("max_minutes"),
        final_step=final["step"],
        max_steps=args["max_steps"],
        completed=final["step"] >= args["max_steps"],
        percent=round(100 * final["step"] / args["max_steps"]),
        final_lr=final["lr"],
        best_step=best["step"],
        best_grid=val_key.split("@")[1],
        best_validation=_percent(best[val_key]),
        validation_count=best.get(f"val_count@{val_key.split('@')[1]}"),
        eval_every=args.get("eval_every"),
    )


def _zoo_commands(story, args):
    first = f'TASKS="{ZOO_TASKS}" MAX_MINUTES={story["first_budget"]} THROUGHPUT=0 bash scripts/reproduce_mimoformer_zoo.sh'
    if not story["resumed"]:
        return [first]
    return [first, f'TASKS="{ZOO_TASKS}" MAX_MINUTES={args["max_minutes"]} RESUME=1 THROUGHPUT=0 '
                   "bash scripts/reproduce_mimoformer_zoo.sh"]


def mimoformer_card_parts(ctx):
    """Card parts of a MIMOFormer (or Performer baseline) LRA sequence classifier."""
    from .training_lra import LRA_RECIPES, build_arg_parser

    config, results, args = ctx.config, ctx.results, ctx.training_args
    task = results["task"]
    setting = listops_setting(results["dataset"]) if task == "listops" else None
    if task == "listops" and setting is None:
        raise ValueError(f"{ctx.push.results_path}: ListOps dataset {results['dataset']!r} names no known "
                         f"--preset ({sorted(LISTOPS_SETTINGS)})")
    task_title = LISTOPS_SETTINGS[setting]["title"] if setting else LRA_TITLES[task]
    has_tokenizer = (ctx.folder / "tokenizer.json").is_file()
    # Pipeline tag: a folder with a tokenizer is a text classifier ("text-classification" pipeline and
    # widget work on it). LRA Image takes 1024 grayscale pixel ids, not text and not images:
    # "image-classification" would promise an image processor the folder does not have, and leaving the
    # tag out lets the Hub infer "text-classification" from the architecture name, which fails without a
    # tokenizer. "other" is the Hub's tag for exactly this (no widget, no hosted inference). The
    # model-index still says what was measured: image classification on CIFAR-10.
    pipeline_tag = "text-classification" if has_tokenizer else NO_PIPELINE
    task_type = "text-classification" if has_tokenizer else "image-classification"
    grid = (config["mimo_m"], config["mimo_n"])
    trained = [_grid_text(g) for g in (config.get("trained_grids") or [grid])]
    baseline_info = _baseline_row(ctx)
    rows = [dict(grid=row["grid"], inputs=row["inputs_per_group"], accuracy=_percent(row["accuracy"]),
                 sequences_per_s=row.get("sequences_per_s"), speedup=row.get("speedup_vs_baseline"),
                 trained=row["grid"] in trained)
            for row in results["results"]]
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    if task == "listops":
        examples = LISTOPS_EXAMPLES
    elif task == "text":
        examples = TEXT_EXAMPLES
    else:
        examples = []
    story = _training_story(ctx)
    rows_at = {row["grid"]: row for row in rows}
    variables = dict(
        title=ctx.push.repo_name,
        variant=VARIANTS[config["attention_type"]],
        attention_type=config["attention_type"],
        is_baseline=config["attention_type"] in ("performer", "softmax"),
        grid=_grid_text(grid),
        mimo_m=grid[0],
        mimo_n=grid[1],
        group_size=grid[0] * grid[1],
        trained_grids=trained,
        grid_tuples=[tuple(int(v) for v in row["grid"].split("x")) for row in rows],
        rows=rows,
        full_row=rows_at.get(_grid_text(grid)),
        single_row=rows_at.get("1x1"),
        baseline=baseline_info,
        task=task,
        task_title=task_title,
        recipe_steps=LRA_RECIPES[task]["max_steps"],
        listops=LISTOPS_SETTINGS.get(setting),
        listops_preset=setting,
        dataset_id=results["dataset"],
        split=results["split"],
        num_examples=results["num_examples"],
        sequence_length=results["sequence_length"],
        num_labels=len(labels),
        labels=labels,
        chance=_percent(1 / len(labels)),
        hardware=results["hardware"],
        eval_command=results["command"],
        has_throughput=all(row["sequences_per_s"] is not None for row in rows),
        throughput_hardware=results.get("throughput_hardware"),
        throughput_batch_size=results.get("throughput_batch_size"),
        throughput_command=results.get("throughput_command"),
        plot="accuracy_throughput.png" if (ctx.folder / "accuracy_throughput.png").is_file() else None,
        has_tokenizer=has_tokenizer,
        example=examples[0][0] if examples else None,
        config=config,
        args=args,
        train_command=training_command(args, build_arg_parser(), "scripts/train_mimoformer.py") if args else None,
        story=story,
        zoo_commands=_zoo_commands(story, args) if story and args else [],
    )
    dataset_name = f"{task_title} ({results['dataset']})" if task in LRA_TITLES else task_title
    return CardParts(
        pipeline_tag=pipeline_tag,
        eval_results=operating_point_results(ctx, task_type, f"{task_title} classification", dataset_name),
        tags=["mimoformer", "favor-plus", "long-range-arena"],
        widget=[{"text": text, "example_title": title} for text, title in examples],
        variables=variables,
    )


# model_type (config.json) -> its card.
ARCHITECTURES = {
    "mimoconv": Architecture(card_parts=mimoconv_card_parts, write_assets=write_mimoconv_assets),
    "mimoformer": Architecture(card_parts=mimoformer_card_parts),
}
