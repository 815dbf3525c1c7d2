"""Checkpoint folders, and the Hub folders assembled from them by one function, `export_folder`.

A checkpoint folder (`zoo/<name>/`) holds what is specific to one checkpoint: weights, config.json,
the preprocessor (image processor or tokenizer), results, training records, plot, widget images.
The Hub folder adds what every checkpoint of an architecture shares, at export time:

- the model code, copied from `mimo_hf/models/<model_type>/` (it runs there as remote code);
- config.json's `auto_map`, naming that code for every Auto class, and `custom_pipelines`, naming the
  pipeline class that takes the operating point per call;
- the model card (README.md), rendered from the push config and the folder's records.

Why a checkpoint folder's config.json has no `auto_map`: with one, `trust_remote_code=True` makes
transformers load the classes from code files next to config.json, which a checkpoint folder does not
have. Without one, `import mimo_hf` (which registers the model types) lets the folder load with the
package's code, with or without `trust_remote_code`. An exported folder loads with
`trust_remote_code=True` alone, where mimo_hf is not installed. The tests load both.

Training runs and converters write Hub-ready folders (`save_hub_folder`: code included, no card);
`export_folder(..., code=False)` turns one into a checkpoint folder for `zoo/`.
"""

import json
import shutil
import tempfile
from pathlib import Path

AUTO_MAPS = {
    "mimoconv": {
        "AutoConfig": "configuration_mimoconv.MIMOConvConfig",
        "AutoModel": "modeling_mimoconv.MIMOConvModel",
        "AutoModelForImageClassification": "modeling_mimoconv.MIMOConvForImageClassification",
    },
    "mimoformer": {
        "AutoConfig": "configuration_mimoformer.MIMOFormerConfig",
        "AutoModel": "modeling_mimoformer.MIMOFormerModel",
        "AutoModelForSequenceClassification": "modeling_mimoformer.MIMOFormerForSequenceClassification",
    },
}
# The pipeline classes that take the operating point per call and refuse unused keywords; transformers
# uses them for `pipeline(task, model=repo, trust_remote_code=True)` (config.json's `custom_pipelines`).
CUSTOM_PIPELINES = {
    "mimoconv": {"image-classification": {"impl": "pipeline_mimoconv.MIMOConvImageClassificationPipeline",
                                          "pt": ["AutoModelForImageClassification"], "tf": [], "type": "image"}},
    "mimoformer": {"text-classification": {"impl": "pipeline_mimoformer.MIMOFormerTextClassificationPipeline",
                                           "pt": ["AutoModelForSequenceClassification"], "tf": [], "type": "text"}},
}
MODEL_CODE_FILES = {
    "mimoconv": ("configuration_mimoconv.py", "modeling_mimoconv.py", "binding.py", "pipeline_mimoconv.py"),
    "mimoformer": ("configuration_mimoformer.py", "modeling_mimoformer.py", "favor.py", "pipeline_mimoformer.py"),
}
CODE_ROOT = Path(__file__).resolve().parents[1] / "models"
CARD = "README.md"
# Files an export writes itself; a checkpoint folder never holds them.
GENERATED = frozenset({CARD, *(name for names in MODEL_CODE_FILES.values() for name in names)})


def model_type_of(folder):
    """The `model_type` of a folder's config.json, checked against the architectures this package has."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {folder} is not a checkpoint folder")
    model_type = json.loads(path.read_text()).get("model_type")
    if model_type not in MODEL_CODE_FILES:
        raise ValueError(f"{path}: model_type {model_type!r} has no model code in {CODE_ROOT} "
                         f"(known: {sorted(MODEL_CODE_FILES)})")
    return model_type


def checkpoint_files(folder):
    """The files of `folder` that belong to the checkpoint (relative paths, sorted): all but the
    generated ones (README.md, model code), hidden files and caches."""
    folder = Path(folder)
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if rel.as_posix() in GENERATED or any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        files.append(rel.as_posix())
    return files


def generated_files(folder):
    """The generated files a folder holds (a checkpoint folder must hold none)."""
    return sorted(name for name in GENERATED if (Path(folder) / name).is_file())


def export_folder(source, output, *, code=True, card=None, replace_generated=False, overwrite=False):
    """Write `output` from the checkpoint files of `source`, plus (code=True) the model code and a
    complete `auto_map`, plus `card` (a `ModelCard` or its text) as README.md; returns `output`.

    code=False writes a checkpoint folder (config.json without `auto_map`). A source that holds
    generated files (README.md, model code) is refused unless `replace_generated` (e.g. a training
    run's Hub-ready folder, whose copies are replaced by the package's code). An existing `output` is
    refused unless `overwrite`; it is then replaced as a whole.
    """
    source, output = Path(source), Path(output)
    model_type = model_type_of(source)
    stale = generated_files(source)
    if stale and not replace_generated:
        raise ValueError(f"{source} holds {stale}: a checkpoint folder has no card or model code (the export adds "
                         f"them from {CODE_ROOT / model_type} and the push config's template); remove them")
    if output.resolve() == source.resolve():
        raise ValueError(f"export_folder writes a new folder; {output} is its own source")
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise FileExistsError(f"{output} exists and is not empty; choose a new output folder")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))  # same file system: rename
    try:
        for name in checkpoint_files(source):
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, staging / name)
        config = json.loads((source / "config.json").read_text())
        config.pop("auto_map", None)
        config.pop("custom_pipelines", None)
        if code:
            config["auto_map"] = dict(AUTO_MAPS[model_type])
            config["custom_pipelines"] = CUSTOM_PIPELINES[model_type]
            for name in MODEL_CODE_FILES[model_type]:
                shutil.copyfile(CODE_ROOT / model_type / name, staging / name)
        (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if card is not None:
            (staging / CARD).write_text(str(card), encoding="utf-8")
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def save_hub_folder(model, folder, preprocessor=None, code=True, overwrite=False):
    """Write `model` (and its image processor or tokenizer) as a Hub-ready folder (code=False: a
    checkpoint folder): `from_pretrained(folder, trust_remote_code=True)` and `pipeline` load it alone.
    Tokenizers are saved loadable by transformers 4.x and 5.x. An existing non-empty `folder` is
    refused unless `overwrite` (a training run replacing its own export)."""
    with tempfile.TemporaryDirectory(prefix="mimo-hf-save-") as tmp:
        model.save_pretrained(tmp)
        if preprocessor is not None:
            if hasattr(preprocessor, "convert_tokens_to_ids"):
                from mimo_hf.data.tokenization import save_tokenizer

                save_tokenizer(preprocessor, tmp)
            else:
                preprocessor.save_pretrained(tmp)
        export_folder(tmp, folder, code=code, replace_generated=True, overwrite=overwrite)
    return folder


def assemble(push, output, replace_generated=False):
    """The Hub folder of a push config in `output`: the checkpoint folder, the model code and the
    card rendered from the push config's template. What `push_to_hub.py` uploads and its dry run shows.
    `replace_generated`: see `export_folder` (publishing checks first that the copies are the package's)."""
    from mimo_hf.hub.cards import render_card

    return export_folder(push.folder_path, output, code=True, card=render_card(push), replace_generated=replace_generated)


def assemble_all(configs, output):
    """The Hub folder of every push config in the folder `configs`, under `output`: {checkpoint folder
    name: assembled folder}. What the tests load as a Hub user would."""
    from mimo_hf.hub.push_config import load_push_configs

    return {push.folder_path.name: assemble(push, Path(output) / push.repo_name) for push in load_push_configs(configs)}


def resolve_targets(targets, configs):
    """The push configs named by `targets`: a push config file anywhere (loaded on its own), or a
    checkpoint folder that a config in the folder `configs` publishes. Exits naming what is wrong."""
    import sys

    from mimo_hf.hub.push_config import PushConfigError, load_push_config, load_push_configs

    try:
        pushes, folders = [], []
        for name in targets:
            if Path(name).is_dir():
                folders.append(name)
            elif not Path(name).exists():
                sys.exit(f"{name}: no such push config file nor checkpoint folder")
            else:
                pushes.append((name, load_push_config(name)))
        if folders:
            by_folder = {push.folder_path.resolve(): push for push in load_push_configs(configs)}
            missing = [name for name in folders if Path(name).resolve() not in by_folder]
            if missing:
                sys.exit(f"no push config in {configs} publishes {missing}: name your push config file instead "
                         "(its schema: mimo_hf/hub/push_config.py), or pass --configs DIR")
            pushes += [(name, by_folder[Path(name).resolve()]) for name in folders]
    except PushConfigError as error:
        sys.exit(str(error))
    order = {name: i for i, name in enumerate(targets)}
    return [push for name, push in sorted(pushes, key=lambda item: order[item[0]])]


def export_targets(targets, configs, output=None, every=False, checkpoint_only=False, widget_images=False,
                   load_check=True):
    """scripts/export_hub_folder.py: assemble the Hub folders of push configs or checkpoint folders into
    `output/<repo name>`, or write one checkpoint folder (`checkpoint_only`), or refresh the cards'
    widget images in the checkpoint folders. Everything is validated before anything is written (the
    same checks as push_to_hub.py; `load_check=False` skips the load in a fresh Python). Returns the
    folders written; exits on bad targets."""
    import sys

    from mimo_hf.hub.cards import write_assets
    from mimo_hf.hub.publishing import ValidationError, validate
    from mimo_hf.hub.push_config import PushConfigError, load_push_configs

    if checkpoint_only:
        if len(targets) != 1 or every:
            sys.exit("--checkpoint-only takes one folder")
        written = export_folder(targets[0], output, code=False, replace_generated=True)
        print(f"{written}: checkpoint files of {targets[0]}")
        return [written]
    if every:
        try:
            pushes = load_push_configs(configs)
        except PushConfigError as error:
            sys.exit(str(error))
    else:
        pushes = resolve_targets(targets, configs)
    if widget_images:
        from mimo_hf.hub.cards import load_context

        for push in pushes:  # every folder readable before any image is written
            try:
                load_context(push)
            except (FileNotFoundError, ValueError) as error:
                sys.exit(f"{push.path}: {error}")
        for push in pushes:
            written = write_assets(push)
            print(f"{push.folder}: " + (", ".join(path.name for path in written) if written else "up to date"))
        return [push.folder_path for push in pushes]
    names = [push.repo_name for push in pushes]
    if len(set(names)) != len(names):
        sys.exit(f"two targets publish repos of the same name {sorted({n for n in names if names.count(n) > 1})}; "
                 "export them into different --output folders")
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        sys.exit(f"{output} exists and is not empty (or is a file); choose a new output folder")
    with tempfile.TemporaryDirectory(prefix="mimo-hf-export-") as staging:
        try:
            validate(pushes, staging, load_check=load_check)
        except ValidationError as error:
            sys.exit(str(error))
        folders = []
        output.mkdir(parents=True, exist_ok=True)
        for push in pushes:
            folders.append(output / push.repo_name)
            shutil.copytree(Path(staging) / push.repo_name, folders[-1])
            print(f"{folders[-1]}: {push.folder_label} + {CODE_ROOT.name}/{model_type_of(push.folder_path)} code + card")
    return folders
