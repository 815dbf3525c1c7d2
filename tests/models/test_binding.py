"""Binding and bundling (mimo_hf/models/mimoconv/binding.py) against slow, loop-based evaluations of the spec.

Spec (shared/spec/mimonets.md section 2):
    PWHRR:  y_j[c] = sum_{t=0}^{C-1} k_j[t] * x_j[(c + t + 1 - C/2) mod C]   at every pixel
    MBAT:   y_j = M_j x_j                                                   at every pixel
    bundle  z = sum_{j=0}^{N-1} y_j  with slot j holding item (j mod k) of its group of k items.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

from mimo_hf.models.mimoconv.binding import bind_and_bundle, hrr_index, hrr_matrices, operating_point_weight

CHANNELS = (2, 4, 6, 8)
CAPACITIES = (1, 2, 4)


pytestmark = pytest.mark.usefixtures("single_thread")


def _divisors(n):
    return [k for k in range(1, n + 1) if n % k == 0]


# ---------------------------------------------------------------- slow references (pure Python loops)


def slow_hrr_bind_vector(key, x):
    """The spec formula on one C-vector, one term at a time."""
    c_count = len(key)
    assert c_count % 2 == 0
    out = []
    for c in range(c_count):
        total = 0.0
        for t in range(c_count):
            total += float(key[t]) * float(x[(c + t + 1 - c_count // 2) % c_count])
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)


def slow_mbat_bind_vector(matrix, x):
    c_count = matrix.shape[0]
    return torch.tensor(
        [sum(float(matrix[c, m]) * float(x[m]) for m in range(c_count)) for c in range(c_count)], dtype=torch.float64
    )


def slow_bind_and_bundle(items, keys, k, kind):
    """items (G*k, C, H, W); keys (N, C) for hrr or (N, C, C) for mbat -> bundles (G, C, H, W)."""
    gk, c_count, height, width = items.shape
    n = keys.shape[0]
    groups = gk // k
    out = torch.zeros(groups, c_count, height, width, dtype=torch.float64)
    for g in range(groups):
        for j in range(n):  # every slot of the bundle
            item = items[g * k + (j % k)]  # slot j holds item j mod k
            for h in range(height):
                for w in range(width):
                    x = item[:, h, w]
                    if kind == "hrr":
                        out[g, :, h, w] += slow_hrr_bind_vector(keys[j], x)
                    else:
                        out[g, :, h, w] += slow_mbat_bind_vector(keys[j], x)
    return out


def authors_conv1d_bind(key, x):
    """The authors' realisation: conv1d over channels, circular padding C/2, first output dropped.

    key (C,), x (P, C) pixels -> (P, C).
    """
    c_count = key.shape[0]
    padded = F.pad(x.unsqueeze(1), (c_count // 2, c_count // 2), mode="circular")  # (P, 1, 2C)
    out = F.conv1d(padded, key.reshape(1, 1, c_count))  # (P, 1, C + 1)
    return out[:, 0, 1:]


# --------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("c_count", CHANNELS)
def test_hrr_index_definition(c_count):
    index = hrr_index(c_count)
    assert index.shape == (c_count, c_count)
    for c, m in itertools.product(range(c_count), repeat=2):
        assert int(index[c, m]) == (m - c - 1 + c_count // 2) % c_count


@pytest.mark.parametrize("c_count", CHANNELS)
@pytest.mark.parametrize("n", CAPACITIES)
def test_hrr_matrices_match_slow_formula(c_count, n):
    gen = torch.Generator().manual_seed(100 * c_count + n)
    keys = torch.randn(n, c_count, generator=gen, dtype=torch.float64)
    matrices = hrr_matrices(keys)
    assert matrices.shape == (n, c_count, c_count)
    for j in range(n):
        for _ in range(3):
            x = torch.randn(c_count, generator=gen, dtype=torch.float64)
            expected = slow_hrr_bind_vector(keys[j], x)
            torch.testing.assert_close(matrices[j] @ x, expected, atol=1e-10, rtol=0)
        # The binding of basis vectors reads the matrix column by column.
        for m in range(c_count):
            e = torch.zeros(c_count, dtype=torch.float64)
            e[m] = 1.0
            torch.testing.assert_close(matrices[j][:, m], slow_hrr_bind_vector(keys[j], e), atol=0, rtol=0)


def test_hrr_matrices_known_small_case():
    """C=2: y[c] = sum_t k[t] x[(c + t) mod 2], so y[0] = k0 x0 + k1 x1 and y[1] = k0 x1 + k1 x0."""
    keys = torch.tensor([[3.0, 5.0]])
    matrices = hrr_matrices(keys)
    torch.testing.assert_close(matrices[0], torch.tensor([[3.0, 5.0], [5.0, 3.0]]))
    # C=4, key e_0: y[c] = x[(c + 1 - 2) mod 4] = x[c - 1]: a cyclic shift by one.
    key = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    x = torch.tensor([10.0, 20.0, 30.0, 40.0])
    torch.testing.assert_close(hrr_matrices(key)[0] @ x, torch.tensor([40.0, 10.0, 20.0, 30.0]))


@pytest.mark.parametrize("c_count", CHANNELS)
def test_hrr_matrices_match_authors_conv1d(c_count):
    gen = torch.Generator().manual_seed(c_count)
    keys = torch.randn(4, c_count, generator=gen)
    x = torch.randn(7, c_count, generator=gen)  # 7 pixels
    matrices = hrr_matrices(keys)
    for j in range(4):
        expected = authors_conv1d_bind(keys[j], x)
        torch.testing.assert_close(x @ matrices[j].t(), expected, atol=1e-5, rtol=0)
        # And the conv1d realisation is the spec formula (sanity of the reference itself).
        torch.testing.assert_close(
            expected[0].double(), slow_hrr_bind_vector(keys[j], x[0]), atol=1e-5, rtol=0
        )


def test_hrr_matrices_keep_gradients_to_keys():
    keys = torch.randn(2, 4, requires_grad=True)
    hrr_matrices(keys).sum().backward()
    # Every key entry appears exactly once in each of the C rows of its circulant matrix.
    torch.testing.assert_close(keys.grad, torch.full((2, 4), 4.0))


@pytest.mark.parametrize("kind", ["hrr", "mbat"])
@pytest.mark.parametrize("c_count", (2, 4, 6))
@pytest.mark.parametrize("n", CAPACITIES)
def test_bind_and_bundle_matches_slow_reference(kind, c_count, n):
    for k in _divisors(n):
        gen = torch.Generator().manual_seed(1000 * n + 10 * k + c_count)
        groups = 2
        items = torch.randn(groups * k, c_count, 2, 3, generator=gen, dtype=torch.float64)
        if kind == "hrr":
            keys = torch.randn(n, c_count, generator=gen, dtype=torch.float64)
            matrices = hrr_matrices(keys)
        else:
            keys = torch.randn(n, c_count, c_count, generator=gen, dtype=torch.float64)
            matrices = keys
        expected = slow_bind_and_bundle(items, keys, k, kind)
        # float64: exact up to rounding.
        got = bind_and_bundle(items, matrices, k)
        assert got.shape == (groups, c_count, 2, 3)
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)
        # float32: within 1e-5.
        got32 = bind_and_bundle(items.float(), matrices.float(), k)
        assert got32.dtype == torch.float32
        torch.testing.assert_close(got32.double(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n", CAPACITIES)
def test_bind_and_bundle_matches_authors_conv1d_per_slot(n):
    """Bundle = sum over the N slots of the authors' conv1d binding of item (j mod k)."""
    c_count = 8
    for k in _divisors(n):
        gen = torch.Generator().manual_seed(n * 31 + k)
        keys = torch.randn(n, c_count, generator=gen)
        items = torch.randn(3 * k, c_count, 4, 4, generator=gen)
        expected = torch.zeros(3, c_count, 4, 4)
        for g in range(3):
            for j in range(n):
                x = items[g * k + j % k].permute(1, 2, 0).reshape(-1, c_count)  # (H*W, C)
                y = authors_conv1d_bind(keys[j], x)
                expected[g] += y.reshape(4, 4, c_count).permute(2, 0, 1)
        torch.testing.assert_close(bind_and_bundle(items, hrr_matrices(keys), k), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n", CAPACITIES)
def test_operating_point_weight_layout(n):
    """Weight block i (input channels i*C..(i+1)*C) is the sum of the matrices of slots j = i (mod k)."""
    c_count = 4
    matrices = torch.randn(n, c_count, c_count, dtype=torch.float64)
    for k in _divisors(n):
        weight = operating_point_weight(matrices, k)
        assert weight.shape == (c_count, k * c_count, 1, 1)
        for i in range(k):
            expected = sum(matrices[j] for j in range(n) if j % k == i)
            torch.testing.assert_close(weight[:, i * c_count : (i + 1) * c_count, 0, 0], expected, atol=1e-12, rtol=0)


def test_bind_and_bundle_groups_are_independent_and_ordered():
    """Bundle g depends only on items g*k .. g*k+k-1, and the item order inside the group matters."""
    c_count, n, k = 4, 4, 2
    gen = torch.Generator().manual_seed(0)
    matrices = hrr_matrices(torch.randn(n, c_count, generator=gen, dtype=torch.float64))
    items = torch.randn(3 * k, c_count, 2, 2, generator=gen, dtype=torch.float64)
    full = bind_and_bundle(items, matrices, k)
    for g in range(3):
        alone = bind_and_bundle(items[g * k : (g + 1) * k], matrices, k)
        torch.testing.assert_close(full[g : g + 1], alone, atol=1e-12, rtol=0)
    swapped = items.clone()
    swapped[[0, 1]] = items[[1, 0]]
    assert not torch.allclose(bind_and_bundle(swapped, matrices, k)[0], full[0])


@pytest.mark.parametrize("k", (1, 2, 4))
def test_bind_and_bundle_is_layout_agnostic_and_its_gradients_match_the_convolution(k):
    """Channels-last and contiguous items give the same bundles; gradients equal those of the 1x1 convolution
    over the (G, k*C, H, W) view (the textbook formulation the matrix product replaces)."""
    n, c_count = 4, 8
    gen = torch.Generator().manual_seed(k)
    keys = torch.randn(n, c_count, generator=gen, dtype=torch.float64, requires_grad=True)
    items = torch.randn(3 * k, c_count, 5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(3, c_count, 5, 4, generator=gen, dtype=torch.float64)

    fast = bind_and_bundle(items, hrr_matrices(keys), k)
    fast_grads = torch.autograd.grad((fast * upstream).sum(), (items, keys))
    as_conv = F.conv2d(items.reshape(3, k * c_count, 5, 4), operating_point_weight(hrr_matrices(keys), k))
    conv_grads = torch.autograd.grad((as_conv * upstream).sum(), (items, keys))
    torch.testing.assert_close(fast, as_conv, atol=1e-12, rtol=0)
    for got, expected in zip(fast_grads, conv_grads):
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)

    channels_last = items.detach().contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(bind_and_bundle(channels_last, hrr_matrices(keys), k), fast, atol=1e-12, rtol=0)
