"""Convert MIMOFormer checkpoints trained with the authors' code into Hub-ready folders.

The authors' ``ModelForSC`` / ``ModelForSCDual`` name their weights as listed in
``shared/spec/mimonets.md`` section 4. Every tensor of ours is one of theirs, renamed and at most
reshaped (the bipolar keys lose their broadcasting axes), so conversion is exact:

    authors' key                                  shape              ours
    model.embeddings.word_embeddings.weight       (V, d)             mimoformer.embeddings.word_embeddings.weight
    model.embeddings.position_embeddings.weight   (P, d)             mimoformer.embeddings.position_embeddings.weight
    model.transformer_{i}.norm1 / norm2                              mimoformer.layers.{i}.norm1 / norm2
    model.transformer_{i}.mha.W_q / W_k / W_v / ff                   mimoformer.layers.{i}.attention.query / key / value / output
    ...mha.attn.attn_fn.projection_matrix (Performer) or
    ...mha.attn.projection_matrix (FAVOR+S)       (R, D_h)           mimoformer.layers.{i}.attention.projection_matrix
    ...mha.attn.bindings                          (1, M, N, 1, 1, D_h)  mimoformer.layers.{i}.attention.bindings (M, N, D_h)
    ...mha.attn.bindings_embedding (att.+MLP)     (1, M, N, 1, d)    mimoformer.layers.{i}.bindings_embedding (M, N, d)
    model.transformer_{i}.mlpblock.{0,3}                             mimoformer.layers.{i}.mlp.{0,3}
    model.norm                                                       mimoformer.norm
    seq_classifer.mlpblock.{0,2}   (sic)                             classifier.mlpblock.{0,2}

Tied-weight models (the authors' ``tied_weights``) store one block as ``model.transformer.*``; it becomes
``mimoformer.layers.0.*`` with ``tie_layer_weights=True``. Without position embeddings in the checkpoint
the authors used the fixed sin/cos table (sin on even, cos on odd channels), which our
``position_embedding_type="sinusoidal"`` rebuilds.

What the state dict cannot tell - the pooling (the authors' ``pooling_mode``: "MEAN" is our ``"mean"``,
"CLS" is ``"cls"``), the layer count of a tied model, and the head count of a softmax model (whose
W_q rows are only heads * head_dim) - must be given; everything else is read off keys and shapes.
"""

import re
import warnings
from collections.abc import Mapping

import torch

from mimo_hf.convert.common import check_fit, listing, load_reference_state_dict
from mimo_hf.hub.export import save_hub_folder
from mimo_hf.models.mimoformer.configuration_mimoformer import MIMOFormerConfig
from mimo_hf.models.mimoformer.modeling_mimoformer import (
    MIMOFormerForSequenceClassification,
    sinusoidal_positions,
)

# The LRA tasks a converted folder can be for: they pick the tokenizer and the label names.
TASKS = ("listops", "text", "retrieval", "image", "pathfinder")
# Our attention types, and the authors' names for them (their config's "attn_type").
ATTENTION_ALIASES = {"performer-256": "performer", "mimoformer": "mimo_att", "blockformer": "mimo_att_mlp"}
# Only the authors' two poolings reproduce their outputs ("masked_mean" is ours).
POOLINGS = ("mean", "cls")

# What make_reference_config needs, read off the checkpoint or given.
ARCHITECTURE_SETTINGS = (
    "attention_type", "mimo_m", "mimo_n", "vocab_size", "max_position_embeddings", "hidden_size",
    "num_attention_heads", "head_dim", "intermediate_size", "num_hidden_layers", "num_random_features",
    "pooling", "classifier_hidden_size", "num_labels",
)
# Why a setting may be absent, for the error message.
_HINTS = {
    "pooling": "the authors' pooling_mode is not stored in a state dict: pass pooling 'mean' (their MEAN) or "
               "'cls' (their CLS)",
    "num_hidden_layers": "a tied-weight checkpoint (model.transformer.*) stores one block: pass num_hidden_layers "
                         "(the authors' num_layers)",
    "max_position_embeddings": "without position embeddings (sinusoidal positions) the checkpoint has no length: "
                               "pass max_position_embeddings (the authors' max_seq_len)",
    "num_attention_heads": "softmax attention has no buffer of size head_dim: pass num_attention_heads or head_dim",
    "head_dim": "softmax attention has no buffer of size head_dim: pass num_attention_heads or head_dim",
}

_UNTIED = re.compile(r"^model\.transformer_(\d+)\.")
_TIED = "model.transformer."
# Our sub-module names inside a layer -> the authors'.
_LAYER_NAMES = {
    "attention.query.": "mha.W_q.", "attention.key.": "mha.W_k.", "attention.value.": "mha.W_v.",
    "attention.output.": "mha.ff.", "mlp.": "mlpblock.", "norm1.": "norm1.", "norm2.": "norm2.",
    "attention.bindings": "mha.attn.bindings", "bindings_embedding": "mha.attn.bindings_embedding",
}
_PROJECTION = ("mha.attn.attn_fn.projection_matrix", "mha.attn.projection_matrix")  # Performer, FAVOR+S
_SINUSOIDAL = "mimoformer.embeddings.sinusoidal_table"




def normalize_attention_type(value):
    """Our attention type for ours or the authors' name ("performer-256", "mimoformer", "blockformer")."""
    if value is None:
        return None
    return ATTENTION_ALIASES.get(value.lower(), value.lower())


def normalize_pooling(value):
    """"mean" / "cls" for the authors' "MEAN" / "CLS" (any case); anything else is refused."""
    if value is None:
        return None
    pooling = value.lower()
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={value!r} is not one of the authors' pooling modes: use 'mean' (MEAN) or 'cls' (CLS)")
    return pooling


# ---------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------


def _layer_prefixes(state_dict):
    """(untied layer indices found, whether a tied block model.transformer.* is present)."""
    indices = {int(match.group(1)) for key in state_dict if (match := _UNTIED.match(key))}
    return indices, any(key.startswith(_TIED) for key in state_dict)


def _first_layer_prefix(state_dict):
    """"model.transformer_{i}." of the lowest block index, "model.transformer." for a tied model, else None."""
    indices, tied = _layer_prefixes(state_dict)
    if indices:
        return f"model.transformer_{min(indices)}."
    return _TIED if tied else None


def infer_reference_config(state_dict):
    """MIMOFormerConfig arguments read off the authors' state dict (key names and shapes).

    Each setting is read from the keys it depends on and left out when those are absent or oddly
    shaped: explicit settings can stand in for it, and the conversion names the faulty keys.
    The attention type is read off the first block's buffers: bindings_embedding -> "mimo_att_mlp",
    bindings -> "mimo_att", a projection matrix alone -> "performer", none -> "softmax".
    """
    found = {}
    words = state_dict.get("model.embeddings.word_embeddings.weight")
    if words is not None and words.dim() == 2:
        found.update(vocab_size=int(words.shape[0]), hidden_size=int(words.shape[1]))
    positions = state_dict.get("model.embeddings.position_embeddings.weight")
    if positions is not None:
        found["position_embedding_type"] = "learned"
        if positions.dim() == 2:
            found["max_position_embeddings"] = int(positions.shape[0])
    elif words is not None:
        found["position_embedding_type"] = "sinusoidal"

    indices, tied = _layer_prefixes(state_dict)
    if indices:
        # (With a tied block beside them, the conversion lists the model.transformer.* keys as unused.)
        found.update(tie_layer_weights=False, num_hidden_layers=max(indices) + 1)
    elif tied:
        found["tie_layer_weights"] = True  # the layer count is not stored
    prefix = _first_layer_prefix(state_dict)
    if prefix is not None:
        bindings = state_dict.get(prefix + "mha.attn.bindings")  # (1, M, N, 1, 1, D_h)
        embedding_keys = state_dict.get(prefix + "mha.attn.bindings_embedding")  # (1, M, N, 1, d)
        projection = next((state_dict[prefix + k] for k in _PROJECTION if prefix + k in state_dict), None)  # (R, D_h)
        if embedding_keys is not None:
            found["attention_type"] = "mimo_att_mlp"
        elif bindings is not None:
            found["attention_type"] = "mimo_att"
        elif projection is not None:
            found["attention_type"] = "performer"
        elif any(key.startswith(prefix + "mha.") for key in state_dict):
            found["attention_type"] = "softmax"
        if found.get("attention_type") in ("softmax", "performer"):
            found.update(mimo_m=1, mimo_n=1)
        if bindings is not None and bindings.dim() == 6:
            found.update(mimo_m=int(bindings.shape[1]), mimo_n=int(bindings.shape[2]), head_dim=int(bindings.shape[5]))
        elif embedding_keys is not None and embedding_keys.dim() == 5:
            found.update(mimo_m=int(embedding_keys.shape[1]), mimo_n=int(embedding_keys.shape[2]))
        if projection is not None and projection.dim() == 2:
            found["num_random_features"] = int(projection.shape[0])
            found.setdefault("head_dim", int(projection.shape[1]))
        query = state_dict.get(prefix + "mha.W_q.weight")  # (H * D_h, d)
        if query is not None and query.dim() == 2 and "head_dim" in found and query.shape[0] % found["head_dim"] == 0:
            found["num_attention_heads"] = int(query.shape[0] // found["head_dim"])
        mlp = state_dict.get(prefix + "mlpblock.0.weight")  # (I, d)
        if mlp is not None and mlp.dim() == 2:
            found["intermediate_size"] = int(mlp.shape[0])

    head = state_dict.get("seq_classifer.mlpblock.0.weight")  # (c, d) or (c, 4d) for the dual encoder
    if head is not None and head.dim() == 2:
        found["classifier_hidden_size"] = int(head.shape[0])
        if "hidden_size" in found:
            found["dual_encoder"] = int(head.shape[1]) == 4 * found["hidden_size"]
    labels = state_dict.get("seq_classifer.mlpblock.2.weight")  # (classes, c)
    if labels is not None and labels.dim() == 2:
        found["num_labels"] = int(labels.shape[0])
    return found


def _fill_heads(kwargs, state_dict):
    """num_attention_heads from head_dim or the reverse, through W_q's H * D_h rows (softmax models)."""
    prefix = _first_layer_prefix(state_dict)
    query = state_dict.get(f"{prefix}mha.W_q.weight") if prefix else None
    if query is None or query.dim() != 2:
        return
    rows = int(query.shape[0])
    for known, unknown in (("head_dim", "num_attention_heads"), ("num_attention_heads", "head_dim")):
        if kwargs.get(known) is not None and kwargs.get(unknown) is None:
            if rows % kwargs[known]:
                raise ValueError(
                    f"{prefix}mha.W_q.weight has {rows} rows (num_attention_heads * head_dim), which {known}="
                    f"{kwargs[known]} does not divide"
                )
            kwargs[unknown] = rows // kwargs[known]


def task_id2label(task, num_labels):
    """{i: class name} of an LRA task (as our training names them), {i: "LABEL_i"} without a task."""
    if task is None:
        return {i: f"LABEL_{i}" for i in range(num_labels)}
    from mimo_hf.data.lra import LRA_TASKS

    names = LRA_TASKS[task]["label_names"]
    if len(names) != num_labels:
        raise ValueError(f"task {task!r} has {len(names)} classes but the classifier has {num_labels} outputs")
    return dict(enumerate(names))


def make_reference_config(state_dict, task=None, **overrides):
    """MIMOFormerConfig for an authors' checkpoint: inferred architecture, updated by non-None ``overrides``.

    ``overrides`` are MIMOFormerConfig fields (``pooling`` also as the authors' "MEAN"/"CLS",
    ``attention_type`` also as their "performer-256"/"mimoformer"/"blockformer"). ``task`` (one of
    TASKS, or None) names the labels and must agree with the head (dual encoder <=> "retrieval").
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task={task!r} is not one of {', '.join(TASKS)}")
    overrides = dict(overrides)
    overrides["attention_type"] = normalize_attention_type(overrides.get("attention_type"))
    overrides["pooling"] = normalize_pooling(overrides.get("pooling"))
    kwargs = {"kernel": "relu"}
    kwargs.update(infer_reference_config(state_dict))
    kwargs.update({key: value for key, value in overrides.items() if value is not None})
    if kwargs.get("attention_type") in ("softmax", "performer"):
        kwargs.setdefault("mimo_m", 1)
        kwargs.setdefault("mimo_n", 1)
    if kwargs.get("attention_type") == "softmax":
        kwargs.setdefault("num_random_features", 256)  # unused by softmax attention, but a config field
    _fill_heads(kwargs, state_dict)
    if "classifier_hidden_size" not in kwargs and kwargs.get("hidden_size") is not None:
        kwargs["classifier_hidden_size"] = kwargs["hidden_size"]
    unknown = [name for name in ARCHITECTURE_SETTINGS if kwargs.get(name) is None]
    if unknown:
        hints = sorted({_HINTS[name] for name in unknown if name in _HINTS})
        raise ValueError(
            f"cannot read {', '.join(unknown)} off the checkpoint; pass them explicitly"
            + "".join(f"\n  {hint}" for hint in hints)
        )

    dual = kwargs.get("dual_encoder", False)
    if task == "retrieval" and not dual:
        raise ValueError("task 'retrieval' needs the dual-encoder head (seq_classifer.mlpblock.0 taking 4 * hidden_size inputs)")
    if task is not None and task != "retrieval" and dual:
        raise ValueError(f"the checkpoint has a dual-encoder head (LRA Retrieval) but task={task!r}")
    id2label = task_id2label(task, kwargs.pop("num_labels"))
    return MIMOFormerConfig(**kwargs, id2label=id2label, label2id={name: i for i, name in id2label.items()})


# ---------------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------------


def model_class(config):
    return MIMOFormerForSequenceClassification  # one class; config.dual_encoder selects the Retrieval head


def target_shapes(config):
    """{our key: shape} of the model for ``config``, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = model_class(config)(config)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def reference_keys(key, config):
    """The authors' candidate names of our state-dict key ``key``, preferred first."""
    if key.startswith("classifier."):
        return ["seq_classifer." + key[len("classifier."):]]
    key = key[len("mimoformer."):]
    if key.startswith("embeddings.") or key.startswith("norm."):
        return ["model." + key]
    match = re.match(r"layers\.(\d+)\.(.*)$", key)
    prefix = _TIED if config.tie_layer_weights else f"model.transformer_{match.group(1)}."
    rest = match.group(2)
    if rest == "attention.projection_matrix":
        # The Performer wraps performer_pytorch's FastAttention as attn.attn_fn; FAVOR+S subclasses it.
        ordered = _PROJECTION if config.attention_type == "performer" else _PROJECTION[::-1]
        return [prefix + name for name in ordered]
    for ours, theirs in _LAYER_NAMES.items():
        if rest.startswith(ours):
            return [prefix + theirs + rest[len(ours):]]
    return [prefix + rest]


def reference_shape(key, shape):
    """The authors' shape of our tensor ``key`` of shape ``shape`` (ours is always a reshape of theirs)."""
    if key.endswith("attention.bindings"):
        m, n, d = shape
        return (1, m, n, 1, 1, d)  # broadcast over (group, ..., heads, tokens)
    if key.endswith("bindings_embedding"):
        m, n, d = shape
        return (1, m, n, 1, d)  # broadcast over (group, ..., tokens)
    return shape


def convert_reference_state_dict(state_dict, config):
    """The authors' state dict -> ours, for the model of ``config`` (single or dual encoder).

    Strict in both directions: every source key must be used, every target key filled, every shape
    match. Otherwise a ValueError names all offending keys at once, with both shapes for each mismatch.
    The sinusoidal position table (not a weight of theirs) is rebuilt.
    """
    targets = target_shapes(config)
    converted, missing, mismatched, used = {}, [], [], set()
    for key, shape in targets.items():
        if key == _SINUSOIDAL:
            converted[key] = sinusoidal_positions(*shape)
            continue
        candidates = reference_keys(key, config)
        source_key = next((name for name in candidates if name in state_dict), None)
        if source_key is None:
            missing.append(f"{key} (checkpoint key {' or '.join(candidates)})")
            continue
        used.add(source_key)
        source = state_dict[source_key]
        expected = reference_shape(key, shape)
        if tuple(source.shape) != expected:
            mismatched.append(f"{source_key}: checkpoint {tuple(source.shape)} vs expected {expected}")
            continue
        converted[key] = source.reshape(shape).clone()  # clone: the converted dict owns its storage

    unused = sorted(state_dict.keys() - used)
    check_fit(_describe(config), unused, missing, mismatched,
              "check attention_type, mimo_m, mimo_n, hidden_size, num_attention_heads, head_dim, intermediate_size, "
              "num_hidden_layers, num_random_features, vocab_size, max_position_embeddings and num_labels")

    not_bipolar = sorted(
        key for key, value in converted.items()
        if key.endswith(("attention.bindings", "bindings_embedding")) and not bool((value.abs() == 1).all())
    )
    if not_bipolar:
        warnings.warn(f"binding keys that are not all +-1: {listing(not_bipolar)}; the authors draw them bipolar",
                      UserWarning, stacklevel=2)
    return converted


def _describe(config):
    layers = f"{config.num_hidden_layers} tied" if config.tie_layer_weights else str(config.num_hidden_layers)
    return (
        f"MIMOFormer(attention_type={config.attention_type!r}, grid={config.mimo_m}x{config.mimo_n}, "
        f"layers={layers}, hidden_size={config.hidden_size}, heads={config.num_attention_heads}x{config.head_dim}, "
        f"intermediate_size={config.intermediate_size}, num_random_features={config.num_random_features}, "
        f"vocab_size={config.vocab_size}, positions={config.max_position_embeddings} {config.position_embedding_type}, "
        f"classifier={config.classifier_hidden_size}->{config.num_labels}, dual_encoder={config.dual_encoder})"
    )


def task_tokenizer(task, config):
    """The tokenizer shipped for ``task`` (None for the pixel tasks and without a task), checked against the vocabulary."""
    if task in ("image", "pathfinder"):
        if config.vocab_size < 256:
            raise ValueError(f"task {task!r} feeds pixel values 0..255 as token ids, but vocab_size={config.vocab_size}")
        return None
    if task is None:
        return None
    from mimo_hf.data.lra import LRA_TASKS
    from mimo_hf.data.tokenization import tokenizer_for_kind

    tokenizer = tokenizer_for_kind(LRA_TASKS[task]["tokenizer"], config.max_position_embeddings)
    size = len(tokenizer)
    if config.vocab_size < size:
        raise ValueError(
            f"task {task!r} ships a tokenizer with {size} ids (mimo_hf/data/tokenization.py), more than the checkpoint's "
            f"vocab_size={config.vocab_size}"
        )
    if config.vocab_size != size:
        warnings.warn(
            f"the checkpoint's vocab_size={config.vocab_size} differs from the {task!r} tokenizer's {size} ids: the "
            "folder's tokenizer is only right if the checkpoint was trained on mimo_hf's token ids "
            "(mimo_hf/data/tokenization.py)",
            UserWarning,
            stacklevel=2,
        )
    return tokenizer





def convert_reference_checkpoint(checkpoint, output, config=None, task=None, **overrides):
    """Convert an authors' MIMOFormer checkpoint into a Hub-ready folder ``output``; returns the model (eval mode).

    ``checkpoint``: path of the authors' file, or a state dict already loaded with
    `load_reference_state_dict`. ``config``: our MIMOFormerConfig; None builds it with
    `make_reference_config(state_dict, task, **overrides)`. ``task`` picks the tokenizer
    (ListOps word-level, Text/Retrieval byte-level, none for Image/Pathfinder) and the label names.
    """
    state_dict = checkpoint if isinstance(checkpoint, Mapping) else load_reference_state_dict(checkpoint)
    if config is None:
        config = make_reference_config(state_dict, task, **overrides)
    converted = convert_reference_state_dict(state_dict, config)
    tokenizer = task_tokenizer(task, config)
    model = model_class(config)(config)
    model.load_state_dict(converted, strict=True)
    model.eval()
    save_hub_folder(model, output, tokenizer)
    return model


__all__ = [
    "ARCHITECTURE_SETTINGS",
    "TASKS",
    "convert_reference_checkpoint",
    "convert_reference_state_dict",
    "infer_reference_config",
    "load_reference_state_dict",
    "make_reference_config",
]
