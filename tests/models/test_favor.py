"""FAVOR+ and FAVOR+S against a direct, loop-by-loop evaluation of the spec's formulas (section 3)."""

import math

import pytest
import torch

from mimo_hf.models.mimoformer.favor import KERNEL_EPSILON, bipolar_keys, favor_attention, feature_map, orthogonal_gaussian_projection

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons in double precision, restored afterwards (the default dtype is process-wide)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def phi(x, p):
    """The spec's phi(x) = ReLU(P x D^-1/4) + 0.001 (applied to already scaled queries and keys)."""
    return torch.relu(p @ (x * x.shape[-1] ** -0.25)) + KERNEL_EPSILON


def spec_favor_s(q, k, v, a, p, superposed_output=False):
    """q, k, v (M, N, L, D) of one group and head, a (M, N, D), p (R, D): the spec, one term at a time."""
    m_, n_, length, d = q.shape
    s = (math.sqrt(d) * m_ * n_) ** -0.5
    qs = [sum(a[m, n] * q[m, n] * s for m in range(m_)) for n in range(n_)]  # N x (L, D)
    ks = [sum(a[m, n] * k[m, n] * s for n in range(n_)) for m in range(m_)]  # M x (L, D)
    vs = [sum(a[m, n] * v[m, n] for n in range(n_)) for m in range(m_)]
    big_a = sum(torch.outer(phi(ks[m][t], p), vs[m][t]) for m in range(m_) for t in range(length))  # (R, D)
    if superposed_output:
        out = torch.zeros(n_, length, d)
        for n in range(n_):
            for l in range(length):
                fq = phi(qs[n][l], p)
                den = sum(fq @ phi(ks[m][t], p) for m in range(m_) for t in range(length))
                out[n, l] = (fq @ big_a) / den
        return out
    out = torch.zeros(m_, n_, length, d)
    for m in range(m_):
        for n in range(n_):
            for l in range(length):
                fq = phi(qs[n][l], p)
                den = sum(fq @ phi(ks[m][t], p) for t in range(length))
                out[m, n, l] = a[m, n] * (fq @ big_a) / den
    return out


def spec_performer(q, k, v, p):
    """(L, D) single input: out_l = sum_t phi(q_l).phi(k_t) v_t / sum_t phi(q_l).phi(k_t), scale D^-1/4."""
    d = q.shape[-1]
    s = d ** -0.25
    out = torch.zeros_like(q)
    for l in range(q.shape[0]):
        weights = torch.stack([phi(q[l] * s, p) @ phi(k[t] * s, p) for t in range(k.shape[0])])
        out[l] = (weights[:, None] * v).sum(0) / weights.sum()
    return out


def random_group(m, n, length=3, d=4, r=5, groups=2, heads=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (groups, m, n, heads, length, d)
    q, k, v = (torch.randn(shape, generator=g) for _ in range(3))
    return q, k, v, bipolar_keys(m, n, d, generator=g), orthogonal_gaussian_projection(r, d, generator=g)


@pytest.mark.parametrize("m,n", [(1, 1), (2, 2), (2, 3), (3, 1)])
def test_favor_s_matches_spec(m, n):
    q, k, v, a, p = random_group(m, n)
    out = favor_attention(q, k, v, p, "relu", keys=a)  # (G, M, N, H, L, D)
    for g in range(q.shape[0]):
        for h in range(q.shape[3]):
            ref = spec_favor_s(q[g, :, :, h], k[g, :, :, h], v[g, :, :, h], a, p)
            torch.testing.assert_close(out[g, :, :, h], ref)


@pytest.mark.parametrize("m,n", [(1, 1), (2, 2), (3, 2)])
def test_superposed_output_matches_spec(m, n):
    q, k, v, a, p = random_group(m, n, seed=1)
    out = favor_attention(q, k, v, p, "relu", keys=a, keep_superposed=True)  # (G, N, H, L, D)
    for g in range(q.shape[0]):
        for h in range(q.shape[3]):
            ref = spec_favor_s(q[g, :, :, h], k[g, :, :, h], v[g, :, :, h], a, p, superposed_output=True)
            torch.testing.assert_close(out[g, :, h], ref)


def test_performer_matches_spec():
    q, k, v, _, p = random_group(1, 1, length=4, seed=2)
    out = favor_attention(q, k, v, p, "relu")
    for g in range(q.shape[0]):
        for h in range(q.shape[3]):
            torch.testing.assert_close(out[g, 0, 0, h], spec_performer(q[g, 0, 0, h], k[g, 0, 0, h], v[g, 0, 0, h], p))


def test_one_by_one_grid_reduces_to_performer():
    q, k, v, a, p = random_group(1, 1, seed=3)
    # With the all-ones key, FAVOR+S on a 1x1 grid is exactly FAVOR+ ...
    torch.testing.assert_close(favor_attention(q, k, v, p, "relu", keys=torch.ones_like(a)), favor_attention(q, k, v, p, "relu"))
    # ... and with a bipolar key a, it is FAVOR+ with the projection P diag(a) (same distribution).
    torch.testing.assert_close(favor_attention(q, k, v, p, "relu", keys=a), favor_attention(q, k, v, p * a[0, 0], "relu"))


def test_orthogonal_projection_rows():
    p = orthogonal_gaussian_projection(10, 4, generator=torch.Generator().manual_seed(0))
    assert p.shape == (10, 4)
    block = p[:4] / p[:4].norm(dim=1, keepdim=True)
    torch.testing.assert_close(block @ block.T, torch.eye(4))


def test_bipolar_keys_are_signs():
    a = bipolar_keys(3, 2, 16, generator=torch.Generator().manual_seed(0))
    assert set(a.unique().tolist()) == {-1.0, 1.0}


def test_exp_kernel_estimates_softmax_kernel():
    g = torch.Generator().manual_seed(5)
    d = 8
    x, y = torch.randn(d, generator=g) * 0.3, torch.randn(d, generator=g) * 0.3
    p = orthogonal_gaussian_projection(20000, d, generator=g)
    fx = feature_map(x, p, "exp", is_query=False)
    fy = feature_map(y, p, "exp", is_query=False)
    # Both shifts are global constants here; undo them to compare with exp(x.y).
    shift_x = ((p @ x) - (x @ x) / 2).amax()
    shift_y = ((p @ y) - (y @ y) / 2).amax()
    estimate = (fx @ fy) * torch.exp(shift_x + shift_y)
    assert abs(float(estimate / torch.exp(x @ y)) - 1) < 0.1


@pytest.mark.parametrize("kind,m,n", [("performer", 1, 1), ("att", 2, 2), ("att", 2, 3), ("att_mlp", 2, 2), ("att_mlp", 3, 2)])
@pytest.mark.parametrize("grad", [False, True])
def test_fused_path_equals_per_input_formula(kind, m, n, grad):
    """Binding folded into the projections == per-input Q, K, V, masked, then `favor_attention`."""
    from mimo_hf.models.mimoformer.favor import fused_favor_attention

    gen = torch.Generator().manual_seed(7)
    g, length, d_model, heads, d = 2, 5, 6, 2, 4
    torch.manual_seed(0)
    query, key, value = (torch.nn.Linear(d_model, heads * d) for _ in range(3))
    h = torch.randn(g, m, n, length, d_model, generator=gen, requires_grad=grad)
    mask = torch.ones(g, m, n, length)
    mask[0, 0, 0, 3:] = 0
    mask[1, m - 1, n - 1, 1:] = 0
    keys = None if kind == "performer" else bipolar_keys(m, n, d, generator=gen)
    p = orthogonal_gaussian_projection(7, d, generator=gen)

    def per_input(linear):
        x = linear(h) * mask.unsqueeze(-1)  # (G, M, N, L, H*D), padded positions zeroed
        return x.view(g, m, n, length, heads, d).transpose(3, 4)  # (G, M, N, H, L, D)

    ref = favor_attention(per_input(query), per_input(key), per_input(value), p, "relu", keys=keys,
                          keep_superposed=kind == "att_mlp")
    fast = fused_favor_attention(h, mask, query, key, value, p, "relu", keys, heads, keep_superposed=kind == "att_mlp")
    if kind == "att_mlp":
        ref = ref.transpose(2, 3).reshape(g, n, length, heads * d)
    else:
        ref = ref.transpose(3, 4).reshape(g, m, n, length, heads * d)
    torch.testing.assert_close(fast, ref)
    if grad:
        (fast ** 2).sum().backward()
        assert h.grad is not None and torch.isfinite(h.grad).all()
