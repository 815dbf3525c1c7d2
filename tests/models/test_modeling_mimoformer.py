"""MIMOFormer models: shapes, grouping, masks, grids, baselines, save/reload, input errors."""

import pytest
import torch

from mimo_hf import MIMOFormerConfig, MIMOFormerForSequenceClassification, MIMOFormerModel

pytestmark = pytest.mark.usefixtures("single_thread")
TYPES = [("softmax", 1, 1), ("performer", 1, 1), ("mimo_att", 2, 2), ("mimo_att_mlp", 2, 2)]


def make(attention_type="mimo_att", m=2, n=2, seed=0, **kw):
    torch.manual_seed(seed)
    defaults = dict(attention_type=attention_type, mimo_m=m, mimo_n=n, num_random_features=16, vocab_size=20,
                    max_position_embeddings=32, hidden_size=16, num_attention_heads=2, head_dim=8,
                    intermediate_size=24, num_hidden_layers=2, num_labels=5)
    defaults.update(kw)
    return MIMOFormerForSequenceClassification(MIMOFormerConfig(**defaults)).eval()


def batch(b, length=12, seed=1, pad_from=None):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 19, (b, length), generator=g)
    mask = torch.ones_like(ids)
    for i, start in (pad_from or {}).items():
        ids[i, start:] = 0
        mask[i, start:] = 0
    return ids, mask


@pytest.mark.parametrize("kind,m,n", TYPES)
@pytest.mark.parametrize("b", [1, 3, 4, 7, 9])
def test_any_batch_size(kind, m, n, b):
    model = make(kind, m, n)
    ids, mask = batch(b)
    out = model(ids, attention_mask=mask, labels=torch.arange(b) % 5)
    assert out.logits.shape == (b, 5)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.arange(b) % 5))


@pytest.mark.parametrize("kind,m,n", TYPES + [("mimo_att", 2, 3)])
def test_groups_are_independent_and_ordered(kind, m, n):
    """A batch of whole groups equals its groups run one by one, in input order."""
    model = make(kind, m, n)
    g = m * n
    ids, mask = batch(3 * g, pad_from={1: 7, 2 * g - 1: 5})
    with torch.no_grad():
        whole = model(ids, attention_mask=mask).logits
        parts = torch.cat([model(ids[i:i + g], attention_mask=mask[i:i + g]).logits for i in range(0, 3 * g, g)])
    torch.testing.assert_close(whole, parts)


@pytest.mark.parametrize("kind,m,n", TYPES)
def test_partial_group_cycles_its_members(kind, m, n):
    model = make(kind, m, n)
    g = m * n
    ids, mask = batch(g + 1)
    encode = model.mimoformer
    with torch.no_grad():
        pooled = encode(ids, attention_mask=mask).pooler_output
        first = encode(ids[:g], attention_mask=mask[:g]).pooler_output
        alone = encode(ids[g:].repeat(g, 1), attention_mask=mask[g:].repeat(g, 1)).pooler_output
        logits = model(ids, attention_mask=mask).logits
    torch.testing.assert_close(pooled[:g], first)
    # The partial group holds g copies of the last input; their encodings are averaged, then classified.
    torch.testing.assert_close(pooled[g], alone.mean(0))
    torch.testing.assert_close(logits[g], model.classifier(alone.mean(0)))


@pytest.mark.parametrize("pooling", ["mean", "masked_mean"])
@pytest.mark.parametrize("kind,m,n", TYPES)
def test_padded_tokens_do_not_matter(kind, m, n, pooling):
    """Changing the token ids under attention_mask = 0 changes no input's logits (none leaks into a bundle)."""
    model = make(kind, m, n, pooling=pooling)
    ids, mask = batch(8, pad_from={0: 4, 3: 9, 5: 1})
    other = ids.clone()
    other[mask == 0] = 17
    with torch.no_grad():
        torch.testing.assert_close(model(ids, attention_mask=mask).logits, model(other, attention_mask=mask).logits)


def test_mask_changes_result():
    model = make("performer", 1, 1)
    ids, mask = batch(2)
    short = mask.clone()
    short[:, 6:] = 0
    with torch.no_grad():
        assert not torch.allclose(model(ids, attention_mask=mask).logits, model(ids, attention_mask=short).logits)


def test_lower_grid_equals_model_with_the_sub_grid():
    """A 4x4 model at grid (2, 2) is a 2x2 model whose keys are the top-left block of the 4x4 keys."""
    for kind in ("mimo_att", "mimo_att_mlp"):
        big = make(kind, 4, 4)
        small = make(kind, 2, 2, seed=5)
        state = big.state_dict()
        for name, tensor in small.state_dict().items():
            if name.endswith("bindings") or name.endswith("bindings_embedding"):
                state_value = state[name][:2, :2]
            else:
                state_value = state[name]
            tensor.copy_(state_value)
        ids, mask = batch(8, pad_from={2: 5})
        with torch.no_grad():
            torch.testing.assert_close(big(ids, attention_mask=mask, mimo_grid=(2, 2)).logits, small(ids, attention_mask=mask).logits)


def test_one_by_one_mimo_model_with_unit_keys_is_the_performer():
    perf = make("performer", 1, 1)
    mimo = make("mimo_att", 1, 1, seed=3)
    state = perf.state_dict()
    for name, tensor in mimo.state_dict().items():
        tensor.copy_(torch.ones_like(tensor) if name.endswith("bindings") else state[name])
    ids, mask = batch(5, pad_from={1: 6})
    with torch.no_grad():
        torch.testing.assert_close(mimo(ids, attention_mask=mask).logits, perf(ids, attention_mask=mask).logits)


def test_full_grid_differs_from_sub_grid_and_superposition_mixes_inputs():
    model = make("mimo_att", 2, 2)
    ids, mask = batch(4)
    changed = ids.clone()
    changed[3] = torch.randint(1, 19, (12,))
    with torch.no_grad():
        a = model(ids, attention_mask=mask).logits
        b = model(changed, attention_mask=mask).logits
        alone = model(ids, attention_mask=mask, mimo_grid=(1, 1)).logits
        alone_changed = model(changed, attention_mask=mask, mimo_grid=(1, 1)).logits
    assert not torch.allclose(a[0], b[0])  # input 0 shares its group with input 3: interference
    torch.testing.assert_close(alone[0], alone_changed[0])  # at 1x1 nothing is shared


def test_save_reload_gives_identical_outputs(tmp_path):
    for kind, m, n in TYPES:
        model = make(kind, m, n, position_embedding_type="sinusoidal")
        model.save_pretrained(tmp_path / kind)
        again = MIMOFormerForSequenceClassification.from_pretrained(tmp_path / kind).eval()
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, again.state_dict()[name]), name
        ids, mask = batch(6, pad_from={0: 3})
        with torch.no_grad():
            assert torch.equal(model(ids, attention_mask=mask).logits, again(ids, attention_mask=mask).logits)


def test_fixed_random_buffers_are_saved():
    model = make("mimo_att_mlp", 2, 2)
    keys = set(model.state_dict())
    assert "mimoformer.layers.0.attention.bindings" in keys
    assert "mimoformer.layers.0.attention.projection_matrix" in keys
    assert "mimoformer.layers.0.bindings_embedding" in keys
    a = model.state_dict()["mimoformer.layers.0.attention.bindings"]
    assert set(a.unique().tolist()) == {-1.0, 1.0}


def test_tied_layers_share_one_block():
    tied = make("mimo_att", tie_layer_weights=True, num_hidden_layers=3)
    untied = make("mimo_att", num_hidden_layers=3)
    assert len(tied.mimoformer.layers) == 1 and len(untied.mimoformer.layers) == 3
    tied(*batch(4))


def test_cls_pooling_prepends_token_and_refuses_to_drop_a_real_token():
    model = make("performer", 1, 1, pooling="cls")
    ids, mask = batch(3, pad_from={0: 10, 1: 11, 2: 5})
    assert model(ids, attention_mask=mask).logits.shape == (3, 5)
    # At the trained length (max_position_embeddings = 32) a real last token would be dropped: refused.
    full_ids, full_mask = batch(2, length=32)
    with pytest.raises(ValueError, match=r"drops the last position, but inputs \[0, 1\]"):
        model(full_ids, attention_mask=full_mask)


@pytest.mark.parametrize("pooling", ["mean", "masked_mean", "cls"])
@pytest.mark.parametrize("kind,m,n", [("performer", 1, 1), ("mimo_att", 2, 2), ("mimo_att_mlp", 2, 2)])
def test_results_do_not_depend_on_how_much_padding_the_caller_asked_for(kind, m, n, pooling):
    """Unpadded, padded to the longest input, and padded to the trained length (max_position_embeddings,
    what training always feeds) give the same logits: pooling divides by the trained length, not by L."""
    model = make(kind, m, n, pooling=pooling)
    lengths = [5, 12, 9, 3, 12, 7]
    ids, _ = batch(len(lengths), length=32)
    mask = (torch.arange(32) < torch.tensor(lengths)[:, None]).long()
    ids = ids * mask
    with torch.no_grad():
        trained = model(ids, attention_mask=mask).logits  # (6, 5) at the trained length
        longest = model(ids[:, :12], attention_mask=mask[:, :12]).logits
        # One input per call: unpadded, and padded to the trained length.
        plain = torch.cat([model(ids[i : i + 1, :n_i], attention_mask=mask[i : i + 1, :n_i]).logits
                           for i, n_i in enumerate(lengths)])
        alone = torch.cat([model(ids[i : i + 1], attention_mask=mask[i : i + 1]).logits for i in range(len(lengths))])
    torch.testing.assert_close(longest, trained, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(plain, alone, rtol=1e-5, atol=1e-6)


def test_base_model_outputs():
    config = make().config
    base = MIMOFormerModel(config).eval()
    ids, mask = batch(5, pad_from={0: 4})
    out = base(ids, attention_mask=mask)
    assert out.pooler_output.shape == (5, 16)
    assert out.last_hidden_state.shape == (5, 12, 16)
    assert torch.all(out.last_hidden_state[0, 4:] == 0)


def test_dual_encoder_head():
    config = make().config
    config.dual_encoder = True
    model = MIMOFormerForSequenceClassification(config).eval()
    ids, mask = batch(5)
    ids2, mask2 = batch(5, seed=9)
    out = model(ids, attention_mask=mask, input_ids_2=ids2, attention_mask_2=mask2, labels=torch.zeros(5, dtype=torch.long))
    assert out.logits.shape == (5, 5) and out.loss is not None
    assert model.classifier.mlpblock[0].in_features == 4 * config.hidden_size
    u = model.mimoformer(ids, attention_mask=mask).pooler_output
    v = model.mimoformer(ids2, attention_mask=mask2).pooler_output
    torch.testing.assert_close(out.logits, model.classifier(torch.cat([u, v, u * v, u - v], -1)))
    with pytest.raises(ValueError, match="pass both input_ids and input_ids_2"):
        model(ids, attention_mask=mask)
    with pytest.raises(ValueError, match="only accepted by dual encoders"):
        make()(ids, input_ids_2=ids2)


@pytest.mark.parametrize(
    "grid, kind, message",
    [((3, 1), "mimo_att", "outside the model's 2x2 grid"), ((0, 1), "mimo_att", "outside"),
     ("2x2", "mimo_att", "must be a pair"), ((2, 2), "performer", "runs one input at a time")],
)
def test_bad_grids(grid, kind, message):
    model = make(kind, 2 if kind != "performer" else 1, 2 if kind != "performer" else 1)
    with pytest.raises(ValueError, match=message):
        model(*batch(2), mimo_grid=grid)


def test_bad_inputs():
    model = make()
    ids, mask = batch(2)
    with pytest.raises(ValueError, match="must be a \\(batch, sequence_length\\) tensor"):
        model(ids[0])
    for dtype in (torch.float32, torch.float64, torch.float16):
        with pytest.raises(TypeError, match=r"integer token ids \(torch.long\), got dtype torch.float"):
            model(ids.to(dtype))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 20\)"):
        model(ids + 100)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=32"):
        model(torch.ones(2, 33, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids, attention_mask=mask[:, :5])
    with pytest.raises(ValueError, match="labels has 3 rows"):
        model(ids, labels=torch.zeros(3, dtype=torch.long))


def test_training_step_updates_weights_but_not_the_fixed_buffers():
    model = make("mimo_att_mlp").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids, mask = batch(8)
    model(ids, attention_mask=mask, labels=torch.arange(8) % 5).loss.backward()
    opt.step()
    after = model.state_dict()
    assert torch.equal(before["mimoformer.layers.0.attention.bindings"], after["mimoformer.layers.0.attention.bindings"])
    assert not torch.equal(before["mimoformer.layers.0.attention.query.weight"], after["mimoformer.layers.0.attention.query.weight"])
