"""MIMOConvConfig: defaults, validation of every field combination, operating points, save/load."""

import re

import pytest
from conftest import CONFIG_FIELDS

from mimo_hf.models.mimoconv.configuration_mimoconv import MIMOConvConfig, divisors


def test_defaults_are_valid_and_match_the_docstring():
    config = MIMOConvConfig()
    assert config.model_type == "mimoconv"
    assert config.num_superpositions == 4
    assert config.default_superpositions == 4  # defaults to N
    assert config.binding == "hrr"
    assert config.depth == 16 and config.width == 4 and config.initial_width == 4
    assert config.num_channels == 3 and config.image_size == 32
    assert config.activation == "prelu" and config.activation_init == 0.5
    assert config.skip_init is False and config.trainable_keys is True
    assert config.trained_superpositions is None
    # Derived quantities.
    assert config.stem_channels == 64
    assert config.blocks_per_stage == 2
    assert config.num_features == 256
    assert config.operating_points == [1, 2, 4]


def test_default_activation_inits():
    assert MIMOConvConfig(activation="relu").activation_init is None
    assert MIMOConvConfig(activation="prelu").activation_init == 0.5
    assert MIMOConvConfig(activation="srelu").activation_init == -1.0
    assert MIMOConvConfig(activation="prelu", activation_init=0.25).activation_init == 0.25
    assert MIMOConvConfig(activation="srelu", activation_init=-0.5).activation_init == -0.5


@pytest.mark.parametrize(
    "n, expected",
    [(1, [1]), (2, [1, 2]), (4, [1, 2, 4]), (6, [1, 2, 3, 6]), (7, [1, 7]), (12, [1, 2, 3, 4, 6, 12])],
)
def test_operating_points_are_the_divisors(n, expected):
    assert divisors(n) == expected
    assert MIMOConvConfig(num_superpositions=n).operating_points == expected
    for k in expected:  # every divisor is accepted as default and as trained point
        config = MIMOConvConfig(num_superpositions=n, default_superpositions=k, trained_superpositions=[k])
        assert config.default_superpositions == k
        assert config.trained_superpositions == [k]


def test_valid_non_default_combinations():
    MIMOConvConfig(num_superpositions=1, binding="none", initial_width=1, activation="relu")  # plain WRN
    MIMOConvConfig(num_superpositions=1, binding="hrr")
    MIMOConvConfig(num_superpositions=3, binding="mbat", initial_width=9 / 16)  # odd C is fine for MBAT
    MIMOConvConfig(initial_width=1.5)  # 24 channels, even
    for depth in (10, 16, 22, 28, 34, 40):
        assert MIMOConvConfig(depth=depth).blocks_per_stage == (depth - 4) // 6
    cfg = MIMOConvConfig(num_superpositions=4, trained_superpositions=[4, 1, 1, 2])
    assert cfg.trained_superpositions == [1, 2, 4]  # sorted, deduplicated


def _raises(match_fields, allowed=None, **kwargs):
    with pytest.raises(ValueError) as info:
        MIMOConvConfig(**kwargs)
    message = str(info.value)
    for field in match_fields:
        assert field in message, f"error for {kwargs} does not name {field!r}: {message}"
    for value in allowed or ():
        assert value in message, f"error for {kwargs} does not list allowed value {value!r}: {message}"
    return message


@pytest.mark.parametrize("n", [0, -1, 2.0, "4", None, True, 1.5])
def test_num_superpositions_must_be_positive_int(n):
    _raises(["num_superpositions"], allowed=[">= 1"], num_superpositions=n)


@pytest.mark.parametrize("n, k", [(4, 3), (4, 8), (6, 4), (2, 0), (4, 2.0)])
def test_default_superpositions_must_divide_n(n, k):
    message = _raises(["default_superpositions"], num_superpositions=n, default_superpositions=k)
    if isinstance(k, int) and k >= 1:
        assert str(divisors(n)) in message, message


@pytest.mark.parametrize("binding", ["HRR", "fft", "", None, "mbat "])
def test_binding_must_be_known(binding):
    _raises(["binding"], allowed=["'hrr'", "'mbat'", "'none'"], binding=binding)


@pytest.mark.parametrize("n", [2, 4])
def test_none_binding_requires_n_1(n):
    message = _raises(["binding", "none", "num_superpositions"], num_superpositions=n, binding="none")
    assert "num_superpositions=1" in message


@pytest.mark.parametrize("depth", [12, 4, 0, 9, 15, 17, 29, 16.0, -2])
def test_depth_must_be_6n_plus_4(depth):
    message = _raises(["depth"], depth=depth)
    if isinstance(depth, int) and depth >= 1:
        assert "6n+4" in message and "10, 16" in message, message


@pytest.mark.parametrize("width", [0, -1, 1.5, "4"])
def test_width_must_be_positive_int(width):
    _raises(["width"], width=width)


@pytest.mark.parametrize("initial_width", [0, -1, "4", None, 1 / 3])
def test_initial_width_must_give_whole_positive_channels(initial_width):
    _raises(["initial_width"], initial_width=initial_width)


def test_hrr_needs_even_stem_channels():
    message = _raises(["binding", "hrr", "initial_width", "even"], binding="hrr", initial_width=9 / 16)
    assert "9" in message


@pytest.mark.parametrize("activation", ["gelu", "ReLU", None, ""])
def test_activation_must_be_known(activation):
    _raises(["activation"], allowed=["'relu'", "'prelu'", "'srelu'"], activation=activation)


def test_activation_init_not_allowed_with_relu():
    _raises(["activation_init", "relu", "None"], activation="relu", activation_init=0.5)


@pytest.mark.parametrize("trained", [[3], [1, 3], [8], [0], [2, 4, 5]])
def test_trained_superpositions_must_divide_n(trained):
    message = _raises(["trained_superpositions"], num_superpositions=4, trained_superpositions=trained)
    assert str(divisors(4)) in message


@pytest.mark.parametrize("field", ["num_channels", "image_size"])
@pytest.mark.parametrize("value", [0, -3, 2.5])
def test_num_channels_and_image_size_positive_ints(field, value):
    _raises([field], **{field: value})


def _non_default_config():
    return MIMOConvConfig(
        num_superpositions=6,
        default_superpositions=3,
        binding="mbat",
        depth=22,
        width=2,
        initial_width=1.5,
        num_channels=1,
        image_size=28,
        activation="srelu",
        activation_init=-0.25,
        skip_init=True,
        trainable_keys=False,
        trained_superpositions=[1, 6],
        id2label={0: "zero", 1: "one", 2: "two"},
        # transformers v5 no longer derives label2id from id2label, so pass both.
        label2id={"zero": 0, "one": 1, "two": 2},
    )




def test_to_dict_from_dict_round_trip():
    config = _non_default_config()
    data = config.to_dict()
    for field in CONFIG_FIELDS:
        assert data[field] == getattr(config, field), field
    assert data["model_type"] == "mimoconv"
    again = MIMOConvConfig.from_dict(data)
    for field in CONFIG_FIELDS:
        assert getattr(again, field) == getattr(config, field), field
    assert again.id2label == {0: "zero", 1: "one", 2: "two"}
    assert again.label2id == {"zero": 0, "one": 1, "two": 2}


def test_save_and_load_round_trip(tmp_path):
    config = _non_default_config()
    config.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").exists()
    loaded = MIMOConvConfig.from_pretrained(tmp_path)
    for field in CONFIG_FIELDS:
        assert getattr(loaded, field) == getattr(config, field), field
    assert loaded.id2label == {0: "zero", 1: "one", 2: "two"}
    assert loaded.label2id == {"zero": 0, "one": 1, "two": 2}
    assert loaded.num_labels == 3
    assert loaded.stem_channels == 24 and loaded.blocks_per_stage == 3 and loaded.num_features == 128
    assert loaded.operating_points == [1, 2, 3, 6]
    # Full dictionaries agree except bookkeeping that legitimately changes on save.
    skip = {"_name_or_path", "transformers_version"}
    left = {k: v for k, v in config.to_dict().items() if k not in skip}
    right = {k: v for k, v in loaded.to_dict().items() if k not in skip}
    assert left == right


def test_saved_config_is_validated_on_load(tmp_path):
    """A hand-edited invalid config.json is rejected on load, not silently accepted."""
    import json

    MIMOConvConfig(num_superpositions=4).save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    data = json.loads(path.read_text())
    data["default_superpositions"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=re.escape("default_superpositions")):
        MIMOConvConfig.from_pretrained(tmp_path)


def test_default_superpositions_set_at_load_is_validated(tmp_path):
    """from_pretrained(..., default_superpositions=k) (a pipeline's model_kwargs) sets the field on a
    built config: a k that does not divide N fails there, naming the allowed values."""
    from mimo_hf import MIMOConvForImageClassification

    MIMOConvForImageClassification(MIMOConvConfig(num_superpositions=4, depth=10, width=1, initial_width=1)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=re.escape("default_superpositions=3 is not an operating point of this model "
                                                   "(capacity N=4); allowed values (the divisors of N): [1, 2, 4]")):
        MIMOConvForImageClassification.from_pretrained(tmp_path, default_superpositions=3)
    assert MIMOConvForImageClassification.from_pretrained(tmp_path, default_superpositions=2).config.default_superpositions == 2
