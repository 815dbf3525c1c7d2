"""MIMOFormerConfig: defaults, validation messages, round trip."""

import pytest

from mimo_hf import MIMOFormerConfig


def test_defaults_and_derived_fields():
    c = MIMOFormerConfig(mimo_m=4, mimo_n=2)
    assert c.num_superpositions == 8
    assert c.cls_token_id == c.vocab_size - 1
    assert (4, 2) in c.operating_points and (1, 1) in c.operating_points
    assert c.classifier_hidden_size == c.hidden_size


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attention_type": "linear"}, "attention_type='linear' is not supported"),
        ({"attention_type": "performer", "mimo_m": 2}, "needs mimo_m=1 and mimo_n=1"),
        ({"attention_type": "softmax", "mimo_n": 4}, "needs mimo_m=1 and mimo_n=1"),
        ({"mimo_m": 0}, "mimo_m must be an integer >= 1"),
        ({"mimo_n": 2.5}, "mimo_n must be an integer >= 1"),
        ({"kernel": "cos"}, "kernel='cos' is not supported"),
        ({"pooling": "max"}, "pooling='max' is not supported"),
        ({"position_embedding_type": "rope"}, "position_embedding_type='rope'"),
        ({"position_embedding_type": "sinusoidal", "hidden_size": 63}, "even hidden_size"),
        ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob must be a probability"),
        ({"num_random_features": 0}, "num_random_features must be an integer >= 1"),
        ({"trained_grids": [[3, 1]], "mimo_m": 2, "mimo_n": 2}, "outside the 2x2 grid"),
    ],
)
def test_invalid_values_name_field_and_allowed_values(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MIMOFormerConfig(**kwargs)


def test_round_trip(tmp_path):
    c = MIMOFormerConfig(attention_type="mimo_att_mlp", mimo_m=2, mimo_n=2, trained_grids=[(2, 2), (1, 2)], num_labels=10)
    c.save_pretrained(tmp_path)
    r = MIMOFormerConfig.from_pretrained(tmp_path)
    assert r.to_dict() == c.to_dict()
    assert r.trained_grids == [[1, 2], [2, 2]]
