"""The converter for the authors' MIMOFormer checkpoints, checked against an independent reference.

Random authors'-layout models (tests/reference_mimoformer.py, whose state dicts have exactly the keys of
spec section 4) are saved with torch.save, converted through the script's main() into Hub folders, and
loaded back with AutoModelForSequenceClassification(trust_remote_code=True); their logits must equal the
reference forward pass's (eval mode, float64) on batches that fill whole M x N groups.

Padding: our model also zeroes padded queries and, in att.+MLP, the padded positions of the residual
stream before bundling, so that padding never leaks into the other inputs of a bundle; the authors (and
the reference) do not. Hence padded batches are compared exactly only for softmax and Performer, whose
inputs never share a bundle; FAVOR+S models are compared on unpadded batches (for CLS pooling: only the
last position padded, which the authors' CLS layout drops, so the shifted mask is all ones), and a test
pins the difference down.
"""

import copy
import importlib.util
import json
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification


from mimo_hf.convert.mimoformer import (
    convert_reference_state_dict,
    infer_reference_config,
    load_reference_state_dict,
    make_reference_config,
    model_class,
)

from reference_mimoformer import make_arch, random_reference_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "convert_reference_checkpoint.py"
# Tokens per input: the reference models' trained length (max_len / max_position_embeddings 10). Ours pads
# shorter inputs to that length (padding is not neutral in the authors' model), so the two compute the
# same thing exactly at the trained length.
LENGTH = 10

pytestmark = pytest.mark.usefixtures("single_thread")

# name: the authors' architecture, how the file is saved, the task, the flags the state dict cannot stand in for.
CASES = {
    "softmax_text": dict(
        arch=make_arch(attention_type="softmax", vocab_size=258, classes=2), form="raw", task="text",
        flags=["--pooling", "MEAN", "--num-attention-heads", "2"]),
    "performer_image": dict(
        arch=make_arch(attention_type="performer", vocab_size=256, classes=10), form="wrapped", task="image",
        flags=["--pooling", "mean"]),
    "mimo_att_2x3": dict(
        arch=make_arch(attention_type="mimo_att", m=2, n=3), form="raw", task=None, flags=["--pooling", "MEAN"],
        grids=[(2, 3), (1, 2), (2, 1)]),
    "mimo_att_mlp_3x2_listops": dict(
        arch=make_arch(attention_type="mimo_att_mlp", m=3, n=2, vocab_size=18, classes=10), form="wrapped",
        task="listops", flags=["--pooling", "MEAN"]),
    "mimo_att_tied_sinusoidal": dict(
        arch=make_arch(attention_type="mimo_att", m=2, n=2, tied=True, layers=3, max_len=None), form="wrapped",
        task=None, flags=["--pooling", "MEAN", "--num-hidden-layers", "3", "--max-position-embeddings", "10"]),
    "mimo_att_mlp_dual_retrieval": dict(
        arch=make_arch(attention_type="mimo_att_mlp", m=2, n=2, vocab_size=258, classes=2, dual=True), form="raw",
        task="retrieval", flags=["--pooling", "MEAN"]),
    "mimo_att_cls_listops": dict(
        arch=make_arch(attention_type="mimo_att", m=2, n=2, vocab_size=18, classes=10, pooling="CLS"), form="raw",
        task="listops", flags=["--pooling", "CLS"]),
}
LABELS = {"text": ["neg", "pos"], "listops": [str(d) for d in range(10)], "retrieval": ["unrelated", "related"],
          "image": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}


def load_script_main():
    """The script's main(), imported from its file (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("convert_reference_checkpoint_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def save_checkpoint(state_dict, path, form):
    if form == "wrapped":
        # What a training script saves; a DataParallel prefix on top, as from multi-GPU runs.
        state_dict = {"epoch": 3, "model_state_dict": {f"module.{key}": value for key, value in state_dict.items()}}
    torch.save(state_dict, path)


def make_inputs(arch, batch, padded, seed=1):
    """Token ids and mask (B, LENGTH). padded: random lengths >= 2; CLS models always pad the last position."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, arch["vocab_size"] - 1, (batch, LENGTH), generator=gen)
    if padded:
        lengths = torch.randint(2, LENGTH + 1, (batch,), generator=gen)
        lengths[0] = LENGTH
    else:
        lengths = torch.full((batch,), LENGTH)
    if arch["pooling"] == "CLS":
        lengths = lengths.clamp(max=LENGTH - 1)  # the authors drop the last position; ours refuses a real token there
    mask = (torch.arange(LENGTH)[None, :] < lengths[:, None]).long()
    return ids * mask, mask


def logits_pair(model, reference, arch, grid, padded, seed=1):
    """(ours float32 -> float64, reference float64) logits on a batch of two groups at ``grid``."""
    batch = 2 * grid[0] * grid[1]
    ids, mask = make_inputs(arch, batch, padded, seed)
    ids_2, mask_2 = make_inputs(arch, batch, padded, seed + 1) if arch["dual"] else (None, None)
    expected = copy.deepcopy(reference).double()(ids, mask.double(), ids_2, None if mask_2 is None else mask_2.double(),
                                                 grid=grid)
    kwargs = {"mimo_grid": grid} if arch["attention_type"].startswith("mimo") else {}
    if arch["dual"]:
        kwargs.update(input_ids_2=ids_2, attention_mask_2=mask_2)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, **kwargs).logits
    return logits.double(), expected


def assert_matches_reference(model, reference, arch, grids=None, padded=False):
    model.eval()
    for grid in grids or [(arch["m"], arch["n"])]:
        got, expected = logits_pair(model, reference, arch, grid, padded)
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4, msg=lambda m: f"grid {grid}: {m}")


def convert_via_script(case, tmp_path, seed=0):
    reference = random_reference_model(case["arch"], seed=seed)
    checkpoint, output = tmp_path / "authors.pt", tmp_path / "hub"
    save_checkpoint(reference.state_dict(), checkpoint, case["form"])
    task = ["--task", case["task"]] if case["task"] else []
    code = load_script_main()(["--architecture", "mimoformer", "--checkpoint", str(checkpoint), "--output", str(output),
                               *task, *case["flags"]])
    assert code == 0
    return reference, output


# ---------------------------------------------------------------------------------------------------
# Exactness
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_converted_folder_matches_reference(name, tmp_path, capsys):
    case = CASES[name]
    arch = case["arch"]
    reference, output = convert_via_script(case, tmp_path, seed=len(name))
    assert "model.safetensors" in capsys.readouterr().out

    for file in ("config.json", "model.safetensors", "configuration_mimoformer.py", "modeling_mimoformer.py", "favor.py"):
        assert (output / file).is_file(), file
    assert (output / "tokenizer.json").is_file() == (case["task"] in ("listops", "text", "retrieval"))
    auto_map = json.loads((output / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForSequenceClassification"] == "modeling_mimoformer.MIMOFormerForSequenceClassification"
    model = AutoModelForSequenceClassification.from_pretrained(output, trust_remote_code=True)
    assert type(model).__name__ == "MIMOFormerForSequenceClassification"
    config = model.config
    assert (config.attention_type, config.mimo_m, config.mimo_n) == (arch["attention_type"], arch["m"], arch["n"])
    assert (config.num_hidden_layers, config.tie_layer_weights) == (arch["layers"], arch["tied"])
    assert config.pooling == arch["pooling"].lower() and config.dual_encoder == arch["dual"]
    assert config.position_embedding_type == ("sinusoidal" if arch["max_len"] is None else "learned")
    labels = [config.id2label[i] for i in range(config.num_labels)]
    assert labels == LABELS.get(case["task"], [f"LABEL_{i}" for i in range(arch["classes"])])

    assert_matches_reference(model, reference, arch, case.get("grids"))
    if arch["attention_type"] in ("softmax", "performer"):
        assert_matches_reference(model, reference, arch, padded=True)  # inputs never share a bundle


def test_padding_inside_a_bundle_is_where_we_deliberately_differ():
    """The authors bundle padded queries with real ones (and pad rows of the residual stream in att.+MLP);
    ours zeroes them. Unpadded batches agree exactly (above); padded FAVOR+S batches do not."""
    for kind in ("mimo_att", "mimo_att_mlp"):
        arch = make_arch(attention_type=kind, m=2, n=2)
        reference = random_reference_model(arch, seed=3)
        config = make_reference_config(reference.state_dict(), pooling="mean")
        model = model_class(config)(config)
        model.load_state_dict(convert_reference_state_dict(reference.state_dict(), config), strict=True)
        model.eval()
        assert_matches_reference(model, reference, arch)
        got, expected = logits_pair(model, reference, arch, (2, 2), padded=True)
        assert not torch.allclose(got, expected, atol=1e-3), kind


def test_reference_comparison_detects_swapped_weights():
    """The comparison has teeth: swapped W_q/W_k or permuted binding keys are caught."""
    arch = make_arch(attention_type="mimo_att", m=2, n=3)
    reference = random_reference_model(arch, seed=5)
    state_dict = reference.state_dict()
    config = make_reference_config(state_dict, pooling="mean")
    prefix = "model.transformer_1.mha."
    for wrong in ({prefix + "W_q.weight": state_dict[prefix + "W_k.weight"], prefix + "W_k.weight": state_dict[prefix + "W_q.weight"]},
                  {prefix + "attn.bindings": state_dict[prefix + "attn.bindings"].flip(2)}):
        model = model_class(config)(config)
        model.load_state_dict(convert_reference_state_dict({**state_dict, **wrong}, config), strict=True)
        with pytest.raises(AssertionError):
            assert_matches_reference(model, reference, arch)


def test_inferred_architecture():
    performer = random_reference_model(make_arch(attention_type="performer", layers=3, num_random_features=7)).state_dict()
    assert infer_reference_config(performer) == {
        "attention_type": "performer", "mimo_m": 1, "mimo_n": 1, "vocab_size": 12, "hidden_size": 8,
        "position_embedding_type": "learned", "max_position_embeddings": 10, "tie_layer_weights": False,
        "num_hidden_layers": 3, "num_random_features": 7, "head_dim": 4, "num_attention_heads": 2,
        "intermediate_size": 12, "classifier_hidden_size": 5, "dual_encoder": False, "num_labels": 3,
    }
    tied = make_arch(attention_type="mimo_att_mlp", m=3, n=2, heads=3, tied=True, max_len=None, dual=True)
    inferred = infer_reference_config(random_reference_model(tied).state_dict())
    assert inferred == {
        "attention_type": "mimo_att_mlp", "mimo_m": 3, "mimo_n": 2, "vocab_size": 12, "hidden_size": 8,
        "position_embedding_type": "sinusoidal", "tie_layer_weights": True, "num_random_features": 6, "head_dim": 4,
        "num_attention_heads": 3, "intermediate_size": 12, "classifier_hidden_size": 5, "dual_encoder": True,
        "num_labels": 3,
    }
    softmax = infer_reference_config(random_reference_model(make_arch(attention_type="softmax")).state_dict())
    assert softmax["attention_type"] == "softmax" and "head_dim" not in softmax and "num_attention_heads" not in softmax
    # The softmax head count follows from either setting through W_q's H * D_h rows.
    state_dict = random_reference_model(make_arch(attention_type="softmax", heads=2, head_dim=4)).state_dict()
    assert make_reference_config(state_dict, pooling="MEAN", head_dim=4).num_attention_heads == 2
    assert make_reference_config(state_dict, pooling="CLS", num_attention_heads=4).head_dim == 2


# ---------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mimo_checkpoint():
    state_dict = random_reference_model(make_arch(attention_type="mimo_att", m=2, n=3)).state_dict()
    return state_dict, make_reference_config(state_dict, pooling="mean")


def test_unused_missing_and_misshaped_keys_are_all_named(mimo_checkpoint):
    state_dict, config = mimo_checkpoint
    broken = dict(state_dict)
    broken["model.transformer_0.mha.attn.extra"] = torch.zeros(1)  # unknown
    del broken["model.transformer_1.norm2.bias"]  # missing
    broken["seq_classifer.mlpblock.2.bias"] = torch.zeros(4)  # misshaped
    broken["model.transformer_0.mha.attn.bindings"] = torch.ones(2, 3, 4)  # misshaped (not the broadcast layout)
    with pytest.raises(ValueError) as error:
        convert_reference_state_dict(broken, config)
    message = str(error.value)
    assert "unused checkpoint keys (1): model.transformer_0.mha.attn.extra" in message
    assert "mimoformer.layers.1.norm2.bias (checkpoint key model.transformer_1.norm2.bias)" in message
    assert "seq_classifer.mlpblock.2.bias: checkpoint (4,) vs expected (3,)" in message
    assert "model.transformer_0.mha.attn.bindings: checkpoint (2, 3, 4) vs expected (1, 2, 3, 1, 1, 4)" in message


@pytest.mark.parametrize("change, named", [
    (dict(attention_type="performer", mimo_m=1, mimo_n=1),
     ["unused checkpoint keys (2): model.transformer_0.mha.attn.bindings, model.transformer_1.mha.attn.bindings"]),
    (dict(attention_type="softmax", mimo_m=1, mimo_n=1),
     ["model.transformer_0.mha.attn.projection_matrix", "unused checkpoint keys (4)"]),
    (dict(mimo_m=3), ["model.transformer_0.mha.attn.bindings: checkpoint (1, 2, 3, 1, 1, 4) vs expected (1, 3, 3, 1, 1, 4)"]),
    (dict(num_hidden_layers=3), ["mimoformer.layers.2.mlp.0.weight (checkpoint key model.transformer_2.mlpblock.0.weight)"]),
    (dict(tie_layer_weights=True, num_hidden_layers=2), ["model.transformer.norm1.weight", "unused checkpoint keys (36)"]),
    (dict(num_attention_heads=1), ["model.transformer_0.mha.W_q.weight: checkpoint (8, 8) vs expected (4, 8)"]),
])
def test_config_that_contradicts_the_checkpoint_is_refused(mimo_checkpoint, change, named):
    state_dict, _ = mimo_checkpoint
    config = make_reference_config(state_dict, pooling="mean", **change)
    with pytest.raises(ValueError) as error:
        convert_reference_state_dict(state_dict, config)
    for text in named:
        assert text in str(error.value)


@pytest.mark.parametrize("arch, settings, hint", [
    (make_arch(attention_type="mimo_att", m=2, n=2), {}, "cannot read pooling"),
    (make_arch(attention_type="performer", tied=True), dict(pooling="mean"), "cannot read num_hidden_layers"),
    (make_arch(attention_type="softmax"), dict(pooling="mean"), "cannot read num_attention_heads, head_dim"),
    (make_arch(attention_type="performer", max_len=None), dict(pooling="mean"), "cannot read max_position_embeddings"),
    (make_arch(attention_type="performer"), dict(pooling="masked_mean"), "not one of the authors' pooling modes"),
    (make_arch(attention_type="softmax"), dict(pooling="mean", head_dim=3), "does not divide"),
    (make_arch(attention_type="performer"), dict(pooling="mean", task="retrieval"), "needs the dual-encoder head"),
    (make_arch(attention_type="performer", dual=True), dict(pooling="mean", task="text"), "dual-encoder head"),
    (make_arch(attention_type="performer"), dict(pooling="mean", task="listops"), "'listops' has 10 classes"),
])
def test_settings_the_checkpoint_cannot_give_must_be_passed(arch, settings, hint):
    state_dict = random_reference_model(arch).state_dict()
    settings = dict(settings)
    task = settings.pop("task", None)
    with pytest.raises(ValueError, match=hint):
        make_reference_config(state_dict, task, **settings)


def test_script_reports_errors_with_status_2(mimo_checkpoint, tmp_path, capsys):
    state_dict, _ = mimo_checkpoint
    main = load_script_main()
    checkpoint, output = tmp_path / "authors.pt", tmp_path / "out"
    base = ["--architecture", "mimoformer", "--checkpoint", str(checkpoint), "--output", str(output)]
    torch.save({**state_dict, "extra.weight": torch.zeros(3)}, checkpoint)

    assert main([*base, "--pooling", "mean", "--mimo-n", "2"]) == 2
    err = capsys.readouterr().err
    assert "extra.weight" in err and "model.transformer_1.mha.attn.bindings: checkpoint (1, 2, 3, 1, 1, 4)" in err
    assert "Traceback" not in err and not output.exists()

    torch.save(state_dict, checkpoint)
    assert main(base) == 2  # no --pooling
    err = capsys.readouterr().err
    assert "cannot read pooling" in err and "MEAN" in err and not output.exists()

    assert main([*base, "--pooling", "mean", "--task", "image"]) == 2
    assert "task 'image' has 10 classes but the classifier has 3 outputs" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_:  # a MIMOConv flag with --architecture mimoformer
        main([*base, "--pooling", "mean", "--depth", "10"])
    assert exit_.value.code == 2 and "--depth" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # and the reverse
        main(["--checkpoint", str(checkpoint), "--output", str(output), "--pooling", "mean"])
    assert exit_.value.code == 2 and "--pooling" in capsys.readouterr().err


class NotATensor:
    """A pickled object of an arbitrary class: weights_only loading must refuse it."""


@pytest.mark.parametrize("payload", [
    {"model_state_dict": {"model.norm.weight": torch.zeros(1)}, "extra": Fraction(1, 3)},
    {"model.norm.weight": NotATensor()},
])
def test_pickled_objects_are_refused(payload, tmp_path, capsys):
    path = tmp_path / "objects.pt"
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"objects\.pt.*weights_only=True.*Unsupported global"):
        load_reference_state_dict(path)
    assert load_script_main()(["--architecture", "mimoformer", "--checkpoint", str(path), "--output",
                               str(tmp_path / "out"), "--pooling", "mean"]) == 2
    assert "weights_only=True" in capsys.readouterr().err


def test_vocabulary_is_checked_against_the_task(tmp_path):
    """The authors' LRA configs use 32 (ListOps) or 512 ids: the shipped tokenizer's ids may not be theirs."""
    from mimo_hf.convert.mimoformer import convert_reference_checkpoint

    state_dict = random_reference_model(make_arch(attention_type="performer", vocab_size=32, classes=10)).state_dict()
    with pytest.warns(UserWarning, match="vocab_size=32 differs from the 'listops' tokenizer's 18 ids"):
        convert_reference_checkpoint(state_dict, tmp_path / "hub", task="listops", pooling="MEAN")
    tokenizer_config = json.loads((tmp_path / "hub" / "tokenizer_config.json").read_text())
    assert tokenizer_config["model_max_length"] == 10

    # Fewer ids than the task's inputs need is an error, not a warning.
    state_dict = random_reference_model(make_arch(attention_type="performer", vocab_size=12, classes=2)).state_dict()
    with pytest.raises(ValueError, match="pixel values 0..255 as token ids, but vocab_size=12"):
        convert_reference_checkpoint(state_dict, tmp_path / "hub2", task="pathfinder", pooling="MEAN")
    with pytest.raises(ValueError, match="258 ids .* more than the checkpoint's vocab_size=12"):
        convert_reference_checkpoint(state_dict, tmp_path / "hub3", task="text", pooling="MEAN")


def test_script_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        load_script_main()(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--architecture", "--task", "--attention-type", "--mimo-m", "--mimo-n", "--vocab-size",
                 "--max-position-embeddings", "--hidden-size", "--num-attention-heads", "--head-dim",
                 "--intermediate-size", "--num-hidden-layers", "--num-random-features", "--pooling", "--num-labels"):
        assert flag in text, flag
