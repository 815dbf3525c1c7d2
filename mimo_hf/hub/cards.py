"""Model cards (README.md) of Hub folders, rendered at export from a template and the checkpoint folder's files.

One Jinja template per architecture lives in `model_cards/<model_type>.md` (the push config names it)
and one metadata function per architecture (`hub.card_mimoconv`, `hub.card_mimoformer`) turns the
folder's files into the card's parts:

    card_parts(ctx: CardContext) -> CardParts

`ctx` holds the push config and the folder's `config.json`, results JSON, `training_args.json` and
`metrics_history.json`; `CardParts` holds the pipeline tag, extra tags, widget examples, the
`model-index` results and the template's variables. Everything shared (library, license, datasets,
metrics, the common tags, the citation, the repo id and the pinned revision) is filled in here, so a
new architecture is one template plus one module registered in `architecture_of`.

Every number on a card comes from the folder's files: `model-index` holds one `EvalResult` per
operating point whose value is the results JSON's accuracy, unchanged. `check_model_index` is the
test of that promise, shared by the tests and by `hub.publishing`. The training recipe a card states
is read from `training_args.json` (the recorded `training.recipes` recipe), never from a parser.

The results JSON fields the shared code reads: `dataset` (Hub id, must equal the push config's),
`split`, and `results: [{operating_point, accuracy}, ...]` (accuracy as a fraction); a results row
names its operating point either by `operating_point` (MIMOConv: k, model-index config "k=<k>") or by
`grid` (MIMOFormer: "MxN", model-index config "grid=MxN"), see `operating_point_config`. The MIMOConv
card also reads `num_examples`, `data_note`, `command`, `hardware: {cpu, threads, torch, python}`,
`throughput_batch_size`, `results[].images_per_s`, `results[].speedup_vs_baseline` and
`baseline: {model, accuracy, images_per_s}` (all written by scripts/evaluate_mimoconv.py).
"""

import json
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

    push: object  # mimo_hf.hub.push_config.PushConfig
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
    """The `Architecture` of a folder's `model_type` (each architecture's card module registers one)."""
    from mimo_hf.hub import card_mimoconv, card_mimoformer

    architectures = {"mimoconv": card_mimoconv.ARCHITECTURE, "mimoformer": card_mimoformer.ARCHITECTURE}
    model_type = ctx.config.get("model_type")
    if model_type not in architectures:
        raise ValueError(f"{ctx.folder}/config.json: no model card for model_type {model_type!r} "
                         f"(known: {sorted(architectures)}); add a template and a metadata function")
    return architectures[model_type]


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


def write_assets(push):
    """(Re)write the files the architecture's card shows from the checkpoint folder (e.g. widget
    images, kept in the folder so that their bytes never change between exports); returns the paths written."""
    ctx = load_context(push)
    architecture = architecture_of(ctx)
    return list(architecture.write_assets(ctx)) if architecture.write_assets else []


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


def in_zoo(ctx):
    """Whether the folder is one of this repository's zoo folders (zoo/<name>/): only their cards may
    speak of the zoo's shared training (its machines, budgets and reproduce scripts); any other
    folder's card says only what its own records hold."""
    from mimo_hf.hub.push_config import TEMPLATES

    zoo = (TEMPLATES.parent / "zoo").resolve()
    return ctx.folder.resolve().parent == zoo


def percent(value):
    return f"{100 * value:.2f}%"


def baseline_row(ctx):
    """The results JSON's baseline, with the Hub repo that publishes it when a push config names it."""
    baseline = ctx.results.get("baseline")
    if not baseline:
        return None
    from mimo_hf.hub.push_config import TEMPLATES, PushConfigError, load_push_config

    # The baseline's push config, if any: next to this config or in the zoo's push_configs/. Other
    # YAML files there (a user's own folder may hold any) are not push configs: skipped, not errors.
    repo_id = None
    candidates = sorted({*ctx.push.path.parent.glob("*.yaml"), *(TEMPLATES.parent / "push_configs").glob("*.yaml")})
    for path in candidates:
        try:
            other = load_push_config(path)
        except (PushConfigError, OSError):
            continue
        if Path(other.folder) == Path(baseline["model"]) or other.folder_path.resolve() == Path(baseline["model"]).resolve():
            repo_id = other.repo_id
    return dict(name=Path(baseline["model"]).name, repo_id=repo_id, accuracy=percent(baseline["accuracy"]),
                images_per_s=baseline.get("images_per_s"), sequences_per_s=baseline.get("sequences_per_s"))
