"""Conversion of checkpoints trained with the authors' code into Hub-ready folders (`convert_checkpoint`).

`convert.mimoconv` maps SuperWideResnet / SuperWideISONet state dicts, `convert.mimoformer` the LRA
ModelForSC / ModelForSCDual ones; `convert.common` loads them safely and reports a bad fit.
"""

ARCHITECTURES = ("mimoconv", "mimoformer")
# Settings of one architecture only, to refuse them for the other (scripts/convert_reference_checkpoint.py).
MIMOCONV_ONLY = ("dataset", "depth", "width", "initial_width", "binding", "num_superpositions", "activation",
                 "skip_init", "num_channels", "image_size")
MIMOFORMER_ONLY = ("task", "attention_type", "mimo_m", "mimo_n", "vocab_size", "max_position_embeddings", "hidden_size",
                   "num_attention_heads", "head_dim", "intermediate_size", "num_hidden_layers", "num_random_features",
                   "pooling")


def convert_checkpoint(settings):
    """Convert `settings["checkpoint"]` (the authors' file) into the folder `settings["output"]`, for
    `settings["architecture"]`; unset (None) architecture settings are read off the checkpoint.
    Returns a one-line summary of the converted architecture."""
    from mimo_hf.convert import mimoconv, mimoformer
    from mimo_hf.convert.common import load_reference_state_dict

    state_dict = load_reference_state_dict(settings["checkpoint"])
    if settings["architecture"] == "mimoformer":
        overrides = {name: settings.get(name) for name in (*MIMOFORMER_ONLY, "num_labels") if name != "task"}
        config = mimoformer.make_reference_config(state_dict, settings.get("task"), **overrides)
        mimoformer.convert_reference_checkpoint(state_dict, settings["output"], config, task=settings.get("task"))
        layers = f"{config.num_hidden_layers}{' (tied)' if config.tie_layer_weights else ''}"
        return (
            f"attention_type={config.attention_type} grid={config.mimo_m}x{config.mimo_n} layers={layers} "
            f"hidden_size={config.hidden_size} heads={config.num_attention_heads}x{config.head_dim} "
            f"intermediate_size={config.intermediate_size} R={config.num_random_features} "
            f"vocab_size={config.vocab_size} positions={config.max_position_embeddings} "
            f"({config.position_embedding_type}) pooling={config.pooling} labels={config.num_labels} "
            f"dual_encoder={config.dual_encoder} task={settings.get('task')}"
        )
    dataset = settings.get("dataset") or "cifar10"
    overrides = {name: settings.get(name) for name in (*MIMOCONV_ONLY, "num_labels") if name != "dataset"}
    config = mimoconv.make_reference_config(state_dict, dataset, **overrides)
    mimoconv.convert_reference_checkpoint(state_dict, settings["output"], config, dataset=dataset)
    return (
        f"depth={config.depth} width={config.width} initial_width={config.initial_width} "
        f"binding={config.binding} N={config.num_superpositions} activation={config.activation} "
        f"skip_init={config.skip_init} labels={config.num_labels} dataset={dataset}"
    )
