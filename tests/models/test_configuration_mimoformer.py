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


def test_default_grid_is_validated_at_init_and_when_set_at_load(tmp_path):
    """default_grid: None (the full grid) or a pair inside it; from_pretrained(..., default_grid=...) (a
    pipeline's model_kwargs) sets it on a built config and is checked there too, naming the allowed grids."""
    import torch

    from mimo_hf import MIMOFormerForSequenceClassification

    assert MIMOFormerConfig(mimo_m=4, mimo_n=2).default_grid is None
    assert MIMOFormerConfig(mimo_m=4, mimo_n=2, default_grid=(3, 1)).default_grid == [3, 1]
    for bad in ([5, 1], [1, 3], [0, 1], [1], "2x2", [1.0, 1], [True, 1]):
        with pytest.raises(ValueError, match=r"default_grid=.* 1 <= m <= 4 and 1 <= n <= 2"):
            MIMOFormerConfig(mimo_m=4, mimo_n=2, default_grid=bad)
    config = MIMOFormerConfig(mimo_m=2, mimo_n=2, num_random_features=8, vocab_size=20, max_position_embeddings=16,
                              hidden_size=8, num_attention_heads=2, head_dim=4, intermediate_size=8, num_labels=3)
    torch.manual_seed(0)
    MIMOFormerForSequenceClassification(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"default_grid=\[3, 1\] is not an operating point .* 1 <= m <= 2"):
        MIMOFormerForSequenceClassification.from_pretrained(tmp_path, default_grid=[3, 1])
    model = MIMOFormerForSequenceClassification.from_pretrained(tmp_path, default_grid=[1, 2]).eval()
    ids = torch.randint(1, 20, (5, 16))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, model(ids, mimo_grid=(1, 2)).logits)
        assert not torch.allclose(model(ids).logits, model(ids, mimo_grid=(2, 2)).logits)
