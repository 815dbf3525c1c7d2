"""Fine-tuning: start a training run from a checkpoint (`--model-name-or-path`) on the user's own data.

- `adopt_checkpoint`: the recipe's architecture flags are read from the checkpoint's config (an explicit
  flag that contradicts it is an error naming the flag); the operating points to train at default to the
  checkpoint's trained ones; a data folder's schema picks `--dataset` when it is not given.
- `pretrained_model`: the checkpoint's weights; a label set other than the checkpoint's (other names or
  order) gets a freshly initialised output layer and `id2label`/`label2id` from the data, as
  `ignore_mismatched_sizes` does for a different number of labels.
- `image_data` / `text_data`: the user's data through the checkpoint's own image processor / tokenizer.
- `write_card`: a model card drafted from the run's own records (recipe, data, history).
"""

import dataclasses
import json
from pathlib import Path

import torch

MIMOCONV_ARCHITECTURE = {  # recipe field -> config attribute
    "num_superpositions": "num_superpositions", "binding": "binding", "depth": "depth", "width": "width",
    "initial_width": "initial_width", "activation": "activation", "activation_init": "activation_init",
    "skip_init": "skip_init",
}
MIMOFORMER_ARCHITECTURE = {name: name for name in (
    "attention_type", "mimo_m", "mimo_n", "num_random_features", "kernel", "hidden_size", "num_attention_heads",
    "head_dim", "intermediate_size", "num_hidden_layers", "tie_layer_weights", "pooling", "position_embedding_type",
    "classifier_hidden_size")}
# Settings a checkpoint's config holds that fine-tuning may change (they change no weight shape).
MIMOFORMER_ADJUSTABLE = ("hidden_dropout_prob", "embedding_dropout_prob")


def flag(name):
    return "--" + name.replace("_", "-")


def checkpoint_config(path):
    """The config of a checkpoint folder or Hub id (the package's classes: `import mimo_hf` registers them)."""
    from transformers import AutoConfig

    import mimo_hf  # noqa: F401
    from mimo_hf.hub.references import check_model_reference, load_failure_message

    check_model_reference(path, "--model-name-or-path")
    try:
        return AutoConfig.from_pretrained(path)
    except OSError as error:
        raise FileNotFoundError(load_failure_message(path, error, "--model-name-or-path")) from None


def _conflicts(recipe, explicit, config, mapping):
    """Explicit architecture flags whose value differs from the checkpoint's."""
    return [f"{flag(name)} {getattr(recipe, name)!r} (the checkpoint has {attr}={getattr(config, attr)!r})"
            for name, attr in mapping.items()
            if name in explicit and getattr(recipe, name) != getattr(config, attr)]


def _refuse_conflicts(recipe, conflicts):
    if conflicts:
        raise ValueError(f"--model-name-or-path {recipe.model_name_or_path} fixes the architecture; these flags "
                         f"contradict it: {'; '.join(conflicts)}. Drop them (the checkpoint's values are used).")


def adopt_checkpoint(recipe, explicit):
    """The recipe with the architecture (and default operating points) of its checkpoint; see the module doc."""
    from mimo_hf.training.recipes import MIMOConvRecipe

    if isinstance(recipe, MIMOConvRecipe):
        return _adopt_mimoconv(recipe, explicit)
    return _adopt_mimoformer(recipe, explicit)


def _adopt_mimoconv(recipe, explicit):
    from mimo_hf.data.images import DATASETS, detect_dataset

    values = {}
    if recipe.data_dir and "dataset" not in explicit:
        detected = detect_dataset(recipe.data_dir)
        if detected:
            values["dataset"] = detected
    own = recipe.train_dir or recipe.train_file or recipe.image_column or recipe.label_column \
        or values.get("dataset", recipe.dataset) not in DATASETS
    if recipe.model_name_or_path is None:
        if own:
            raise ValueError("--train-dir/--train-file/--image-column/--label-column and datasets other than "
                             f"{sorted(DATASETS)} need --model-name-or-path: the checkpoint's image processor fixes "
                             "the image size and normalisation")
        return dataclasses.replace(recipe, **values)
    config = checkpoint_config(recipe.model_name_or_path)
    if config.model_type != "mimoconv":
        raise ValueError(f"--model-name-or-path {recipe.model_name_or_path} is a {config.model_type!r} model; "
                         "scripts/train_mimoconv.py fine-tunes MIMOConv checkpoints")
    conflicts = _conflicts(recipe, explicit, config, MIMOCONV_ARCHITECTURE)
    if "frozen_keys" in explicit and recipe.frozen_keys == config.trainable_keys:
        conflicts.append(f"--frozen-keys (the checkpoint has trainable_keys={config.trainable_keys})")
    _refuse_conflicts(recipe, conflicts)
    values.update({name: getattr(config, attr) for name, attr in MIMOCONV_ARCHITECTURE.items()})
    values["frozen_keys"] = not config.trainable_keys
    trained = sorted(config.trained_superpositions or [config.num_superpositions])
    lower = [k for k in trained if k != config.num_superpositions]
    if lower and "low_superpositions" not in explicit:
        values["low_superpositions"] = lower[0]
    if "full_capacity_prob" not in explicit:
        values["full_capacity_prob"] = 0.8 if lower else 1.0  # the paper's dynamic-training probability
    if "validation_size" not in explicit and not recipe.validation_dir and not recipe.validation_file:
        values["validation_size"] = None  # 10% of the training data (data.own_data.held_out_rows)
    return dataclasses.replace(recipe, **values)


def _adopt_mimoformer(recipe, explicit):
    if recipe.model_name_or_path is None:
        if recipe.train_file or recipe.dataset:
            raise ValueError("--train-file/--dataset need --model-name-or-path (its tokenizer and architecture)")
        return recipe
    config = checkpoint_config(recipe.model_name_or_path)
    if config.model_type != "mimoformer":
        raise ValueError(f"--model-name-or-path {recipe.model_name_or_path} is a {config.model_type!r} model; "
                         "scripts/train_mimoformer.py fine-tunes MIMOFormer checkpoints")
    if not (recipe.train_file or recipe.dataset):
        raise ValueError("fine-tuning needs data: --train-file F (parquet/CSV/JSON) or --dataset HUB_ID, with "
                         "--text-column and --label-column")
    _refuse_conflicts(recipe, _conflicts(recipe, explicit, config, MIMOFORMER_ARCHITECTURE))
    values = {name: getattr(config, attr) for name, attr in MIMOFORMER_ARCHITECTURE.items()}
    values.update({name: getattr(config, name) for name in MIMOFORMER_ADJUSTABLE if name not in explicit})
    if recipe.max_length is None:
        values["max_length"] = config.max_position_embeddings
    elif recipe.max_length > config.max_position_embeddings and config.position_embedding_type == "learned":
        raise ValueError(f"--max-length {recipe.max_length} exceeds the checkpoint's {config.max_position_embeddings} "
                         "learned positions")
    grids = sorted(tuple(g) for g in (config.trained_grids or [(config.mimo_m, config.mimo_n)]))
    smaller = [g for g in grids if g != (config.mimo_m, config.mimo_n)]
    if "warmup_grid" not in explicit and smaller:
        values["warmup_grid"] = f"{smaller[-1][0]}x{smaller[-1][1]}"
    if "grid_warmup_steps" not in explicit and not smaller:
        values["grid_warmup_steps"] = 0  # the checkpoint was trained at its full grid only
    if bool(recipe.text_column_2) != bool(config.dual_encoder):
        raise ValueError(f"the checkpoint {'is' if config.dual_encoder else 'is not'} a two-document (dual encoder) "
                         f"model: {'pass' if config.dual_encoder else 'drop'} --text-column-2")
    return dataclasses.replace(recipe, **values)


ADOPTED = {  # recipe fields `adopt_checkpoint` fills in when no flag names them
    "mimoconv": (*MIMOCONV_ARCHITECTURE, "frozen_keys", "full_capacity_prob", "low_superpositions", "validation_size"),
    "mimoformer": (*MIMOFORMER_ARCHITECTURE, *MIMOFORMER_ADJUSTABLE, "max_length", "warmup_grid", "grid_warmup_steps"),
}


def implied_by_checkpoint(recipe):
    """{field: value} a fine-tuning recipe gets from its checkpoint without flags (`command()` leaves them out:
    the command it writes parses back to the same recipe)."""
    from mimo_hf.training.recipes import MIMOConvRecipe

    if not recipe.model_name_or_path:
        return {}
    kind = "mimoconv" if isinstance(recipe, MIMOConvRecipe) else "mimoformer"
    base = adopt_checkpoint(dataclasses.replace(recipe, max_length=None) if kind == "mimoformer" else recipe, set())
    return {name: getattr(base, name) for name in ADOPTED[kind]}


def _output_layer_keys(model):
    """State-dict keys of the last Linear layer of the classifier head (the one with one row per label)."""
    head = model.classifier
    name = [n for n, m in head.named_modules() if isinstance(m, torch.nn.Linear)][-1]
    prefix = "classifier." + (name + "." if name else "")
    return {key for key in model.state_dict() if key.startswith(prefix)}


def pretrained_model(model_class, path, label_names, config_overrides=None):
    """The checkpoint's model for `label_names`: its weights, and a fresh output layer (seeded by the run)
    when the labels differ from the checkpoint's. Safetensors only."""
    model = model_class.from_pretrained(path, use_safetensors=True, **(config_overrides or {}))
    old = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if old == list(label_names):
        return model, False
    config = model.config
    config.id2label = dict(enumerate(label_names))
    config.label2id = {name: i for i, name in enumerate(label_names)}
    fresh = model_class(config)
    fresh_keys = _output_layer_keys(fresh)
    state = {k: v for k, v in model.state_dict().items() if k not in fresh_keys}
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    if set(missing) != fresh_keys or unexpected:
        raise RuntimeError(f"loading {path}: unexpected key mismatch (missing {missing}, unexpected {unexpected})")
    return fresh, True


# ---------------------------------------------------------------------------------------------------- images

def image_sources(recipe):
    """(train Dataset, validation Dataset or None, {"train": ..., "validation": ...} descriptions)."""
    from mimo_hf.data import own_data
    from mimo_hf.data.images import parquet_shards

    if recipe.train_dir:
        train = own_data.image_folder(recipe.train_dir)
        where = {"train": f"image folder {recipe.train_dir}"}
        validation = own_data.image_folder(recipe.validation_dir) if recipe.validation_dir else None
        if validation is not None:
            where["validation"] = f"image folder {recipe.validation_dir}"
            if validation.features["label"].names != train.features["label"].names:
                extra = sorted(set(validation.features["label"].names) - set(train.features["label"].names))
                missing = sorted(set(train.features["label"].names) - set(validation.features["label"].names))
                raise ValueError(f"the class folders of {recipe.validation_dir} differ from {recipe.train_dir}: "
                                 f"labels missing from the validation split {missing}, unknown labels {extra}")
        return train, validation, where
    if recipe.validation_dir:
        raise ValueError("--validation-dir needs --train-dir")
    if recipe.train_file:
        where = {"train": recipe.train_file, "validation": recipe.validation_file}
        validation = own_data.read_file(recipe.validation_file) if recipe.validation_file else None
        return own_data.read_file(recipe.train_file), validation, where
    if recipe.validation_file:
        raise ValueError("--validation-file needs --train-file")
    if recipe.data_dir:
        from datasets import load_dataset

        files = [str(p) for p in parquet_shards(recipe.data_dir, "train")]
        train = load_dataset("parquet", data_files={"train": files}, split="train")
        return train, None, {"train": f"{recipe.data_dir} (train split)"}
    splits = own_data.hub_splits(recipe.dataset)
    if "train" not in splits:
        raise ValueError(f"{recipe.dataset} has no 'train' split; its splits: {sorted(splits)}")
    validation = splits.get("validation")
    where = {"train": f"{recipe.dataset} (train split)", "validation": f"{recipe.dataset} (validation split)"}
    return splits["train"], validation, where


def image_columns(recipe):
    from mimo_hf.data.images import DATASETS

    if recipe.train_dir:
        return "image", "label"
    known = None if recipe.train_file else DATASETS.get(recipe.dataset)  # a file's columns are its own
    image = recipe.image_column or (known.image_column if known else "image")
    label = recipe.label_column or (known.label_column if known else "label")
    return image, label


@dataclasses.dataclass
class OwnImageData:
    """What `MIMOConvLoop` reads from the data: the two torch datasets and the normalisation."""

    train_set: object  # items {"pixel_values": (C, H, W) uint8, "labels", "index"}
    validation_set: object  # items {"pixel_values", "labels"}
    label_names: list
    mean: tuple
    std: tuple
    image_shape: tuple  # (channels, size)
    processor: object
    info: dict
    streamed: bool


def image_data(recipe, processor, num_channels):
    """`OwnImageData` of the recipe's data, converted by the checkpoint's `processor` as a pipeline does;
    decoded into memory up to --in-memory-limit-mb of uint8 pixels, streamed through a transform above."""
    from mimo_hf.data import own_data
    from mimo_hf.data.batches import TensorDict

    train, validation, where = image_sources(recipe)
    image_column, label_column = image_columns(recipe)
    flags = {image_column: "--image-column", label_column: "--label-column"}
    own_data.check_columns(train, [image_column, label_column], where["train"], flags)
    if validation is not None:
        own_data.check_columns(validation, [image_column, label_column], where["validation"], flags)
    splits = own_data.labelled_splits(train, validation, label_column, recipe.validation_size, recipe.seed, where)
    if recipe.max_train_samples:
        n = min(recipe.max_train_samples, len(splits.train))
        splits.train, splits.train_labels = splits.train.select(range(n)), splits.train_labels[:n]
    if recipe.max_eval_samples:
        n = min(recipe.max_eval_samples, len(splits.validation))
        splits.validation, splits.validation_labels = splits.validation.select(range(n)), splits.validation_labels[:n]
    converter = own_data.ImageConverter(processor, num_channels)
    pixels = (len(splits.train) + len(splits.validation)) * num_channels * converter.size[0] * converter.size[1]
    streamed = pixels > recipe.in_memory_limit_mb * 2**20
    if streamed:
        train_set = own_data.StreamedImages(splits.train, image_column, splits.train_labels, converter, where["train"])
        val_set = own_data.StreamedImages(splits.validation, image_column, splits.validation_labels, converter,
                                          splits.info["validation_source"], with_index=False)
    else:
        images = converter.column(splits.train, image_column, where["train"])
        train_set = TensorDict({"pixel_values": images, "labels": splits.train_labels,
                                "index": torch.arange(len(images))})
        val_set = TensorDict({"pixel_values": converter.column(splits.validation, image_column,
                                                               splits.info["validation_source"]),
                              "labels": splits.validation_labels})
    info = {**splits.info, "train_examples": len(train_set), "validation_examples": len(val_set),
            "image_column": image_column, "label_column": label_column, "streamed": streamed}
    return OwnImageData(train_set, val_set, splits.label_names, converter.mean, converter.std,
                        (num_channels, converter.size[0]), processor, info, streamed)


def image_model_and_data(recipe):
    """(checkpoint model with the data's labels, `OwnImageData`) of a fine-tuning MIMOConv recipe."""
    from transformers import AutoImageProcessor

    from mimo_hf.models.mimoconv.modeling_mimoconv import MIMOConvForImageClassification

    config = checkpoint_config(recipe.model_name_or_path)
    processor = AutoImageProcessor.from_pretrained(recipe.model_name_or_path)
    data = image_data(recipe, processor, config.num_channels)
    overrides = {"trained_superpositions": recipe.trained_operating_points}
    model, fresh = pretrained_model(MIMOConvForImageClassification, recipe.model_name_or_path, data.label_names,
                                    overrides)
    data.info["new_classifier"] = fresh
    return model, data


# ------------------------------------------------------------------------------------------------------ text

def text_data(recipe, tokenizer):
    """(train SequenceTensors, validation SequenceTensors, info) of a fine-tuning MIMOFormer recipe's text data,
    encoded with the checkpoint's tokenizer to --max-length (longer texts are cut there; the count is reported)."""
    from mimo_hf.data import own_data
    from mimo_hf.data.lra import SequenceTensors

    if recipe.train_file:
        train = own_data.read_file(recipe.train_file)
        validation = own_data.read_file(recipe.validation_file) if recipe.validation_file else None
        where = {"train": recipe.train_file, "validation": recipe.validation_file}
    else:
        splits = own_data.hub_splits(recipe.dataset)
        if "train" not in splits:
            raise ValueError(f"{recipe.dataset} has no 'train' split; its splits: {sorted(splits)}")
        train, validation = splits["train"], splits.get("validation")
        where = {"train": f"{recipe.dataset} (train split)", "validation": f"{recipe.dataset} (validation split)"}
    columns = [c for c in (recipe.text_column, recipe.text_column_2, recipe.label_column) if c]
    flags = {recipe.text_column: "--text-column", recipe.label_column: "--label-column"}
    if recipe.text_column_2:
        flags[recipe.text_column_2] = "--text-column-2"
    own_data.check_columns(train, columns, where["train"], flags)
    if validation is not None:
        own_data.check_columns(validation, columns, where["validation"], flags)
    splits = own_data.labelled_splits(train, validation, recipe.label_column, recipe.validation_size, recipe.seed,
                                      where)
    truncated = 0

    def encode(ds, labels, limit):
        nonlocal truncated
        ds = ds.select(range(min(limit, len(ds)))) if limit else ds
        labels = labels[:len(ds)]
        encoded = []
        for column in (recipe.text_column, recipe.text_column_2):
            if not column:
                encoded += [None, None]
                continue
            texts = list(ds[column])
            bad = [i for i, t in enumerate(texts) if not isinstance(t, str)][:5]
            if bad:
                raise ValueError(f"column {column!r} has rows that are not text (rows {bad})")
            out = tokenizer(texts, padding=False, truncation=False)
            ids = [row[:recipe.max_length] + [tokenizer.pad_token_id] * (recipe.max_length - len(row))
                   for row in out["input_ids"]]
            truncated += sum(len(row) > recipe.max_length for row in out["input_ids"])
            ids = torch.tensor(ids, dtype=torch.int64)
            encoded += [ids, _mask(out, recipe.max_length)]
        return SequenceTensors(encoded[0], encoded[1], labels, list(splits.label_names), encoded[2], encoded[3])

    train_t = encode(splits.train, splits.train_labels, recipe.max_train_samples)
    val_t = encode(splits.validation, splits.validation_labels, recipe.max_eval_samples)
    if truncated:
        print(f"note: {truncated} texts are longer than --max-length {recipe.max_length} tokens; the model sees "
              f"their first {recipe.max_length} (as the pipeline does with truncation=True)")
    info = {**splits.info, "train_examples": len(train_t), "validation_examples": len(val_t),
            "text_columns": [c for c in (recipe.text_column, recipe.text_column_2) if c],
            "label_column": recipe.label_column, "truncated_texts": truncated}
    return train_t, val_t, info


def _mask(encoded, max_length):
    rows = [row[:max_length] + [0] * (max_length - len(row[:max_length])) for row in encoded["attention_mask"]]
    return torch.tensor(rows, dtype=torch.int64)


def text_model_data_tokenizer(recipe):
    """(model, train, validation, tokenizer, info) of a fine-tuning MIMOFormer recipe."""
    from transformers import AutoTokenizer

    from mimo_hf.models.mimoformer.modeling_mimoformer import (
        MIMOFormerForSequenceClassification,
    )

    tokenizer = AutoTokenizer.from_pretrained(recipe.model_name_or_path)
    tokenizer.model_max_length = recipe.max_length
    train, validation, info = text_data(recipe, tokenizer)
    overrides = {name: getattr(recipe, name) for name in MIMOFORMER_ADJUSTABLE}
    overrides["trained_grids"] = [list(g) for g in recipe.trained_grids]
    model, fresh = pretrained_model(MIMOFormerForSequenceClassification, recipe.model_name_or_path,
                                    train.label_names, overrides)
    info["new_classifier"] = fresh
    return model, train, validation, tokenizer, info


# ------------------------------------------------------------------------------------------------------ card

def _point_text(point):
    """"k2" -> "k = 2" (MIMOConv); grids ("4x4") as they are."""
    return f"k = {point[1:]}" if point.startswith("k") else f"grid {point}"


def write_card(hub_folder, recipe, history, info, points_key):
    """README.md of a fine-tuned model, drafted from its own records: base checkpoint, data, labels, the
    command and the last validation accuracies; `points_key` prefixes the history's accuracy fields."""
    hub_folder = Path(hub_folder)
    config = json.loads((hub_folder / "config.json").read_text())
    last = history[-1] if history else {}
    rows = [(key.split("@", 1)[1], value) for key, value in last.items()
            if key.startswith(points_key) and isinstance(value, float)]
    counts = {key.split("@", 1)[1]: value for key, value in last.items() if key.startswith("val_count@")}
    pipeline_tag = "image-classification" if config["model_type"] == "mimoconv" else "text-classification"
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    lines = [
        "---", "library_name: transformers", f"pipeline_tag: {pipeline_tag}",
        "tags: [mimonets, superposition, custom_code, fine-tuned]", "---", "",
        f"# Fine-tuned {config['model_type']} ({len(labels)} classes)", "",
        f"Fine-tuned from `{recipe.model_name_or_path}` with `{recipe.script}`. "
        + ("A new classifier layer was initialised for the labels of the data."
           if info.get("new_classifier") else "The checkpoint's classifier was kept (same labels)."), "",
        f"- Training data: {info['train_source']} ({info['train_examples']} examples)",
        f"- Validation data: {info['validation_source']} ({info['validation_examples']} examples)",
        f"- Labels: {', '.join(labels)}", "",
        "## Validation accuracy at the end of the run", "",
        "| operating point | accuracy | examples |", "|---|---|---|",
        *[f"| {_point_text(point)} | {value:.4f} | {counts.get(point, '')} |" for point, value in rows], "",
        "Measured on the validation data above during training (`metrics_history.json`); no test split was used.", "",
        "## Reproduce", "", "```", recipe.command(), "```", "",
        "## Use", "", "```python", "from transformers import pipeline",
        f'classify = pipeline("{pipeline_tag}", model="<this folder or repo>", trust_remote_code=True)', "```", "",
    ]
    (hub_folder / "README.md").write_text("\n".join(lines), encoding="utf-8")
    with open(hub_folder / "fine_tuning_data.json", "w") as f:
        json.dump(info, f, indent=2)
