"""Linear attention kernels of MIMOFormer: FAVOR+ (Performer) and FAVOR+S (in superposition).

Shapes: G groups, an M x N grid per group, H heads, L tokens, D = head size, R random features.
Spec: ``shared/spec/mimonets.md`` section 3. This file runs as Hub remote code (torch only).
"""

import math

import torch
import torch.nn.functional as F

KERNEL_EPSILON = 1e-3  # the authors' ReLU kernel adds 0.001 so that no normaliser is ever 0


def orthogonal_gaussian_projection(num_features, dim, generator=None):
    """P (R, D): blocks of orthogonal rows, each row rescaled to the norm of a Gaussian D-vector.

    This is the Performer's orthogonal random feature matrix: orthogonality lowers the variance of
    the kernel estimate, the chi-distributed row norms keep each row marginally Gaussian.
    """
    blocks = []
    for _ in range(math.ceil(num_features / dim)):
        gaussian = torch.randn(dim, dim, generator=generator)
        q, _ = torch.linalg.qr(gaussian)  # (D, D), orthonormal columns
        blocks.append(q.T)
    rows = torch.cat(blocks)[:num_features]  # (R, D)
    norms = torch.randn(num_features, dim, generator=generator).norm(dim=1, keepdim=True)  # (R, 1)
    return rows * norms


def bipolar_keys(*shape, generator=None):
    """Random keys in {-1, +1}: binding by elementwise product, unbinding by the same product."""
    return torch.randint(0, 2, shape, generator=generator).float() * 2 - 1


def feature_map(x, projection, kernel, is_query=True):
    """phi(x) for x (..., D) already scaled by every factor (for ReLU: the query/key scaling times D^-1/4) -> (..., R)."""
    projected = x @ projection.T  # (..., R)
    if kernel == "relu":
        return F.relu(projected) + KERNEL_EPSILON
    # "exp": positive random features of exp(q.k): exp(Px - |x|^2 / 2) / sqrt(R). A constant shift
    # cancels between numerator and denominator: per row for queries, one global shift for keys
    # (their rows are summed together).
    logits = projected - (x * x).sum(dim=-1, keepdim=True) / 2
    shift = logits.amax(dim=-1, keepdim=True) if is_query else logits.amax()
    return torch.exp(logits - shift.detach()) / math.sqrt(projection.shape[0]) + 1e-6


def favor_attention(q, k, v, projection, kernel, keys=None, keep_superposed=False):
    """FAVOR+S on a grid; with M = N = 1 and `keys=None` it is plain FAVOR+ (the Performer).

    Args:
        q, k, v: (G, M, N, H, L, D); padded keys and values must already be zero.
        projection: (R, D) random feature matrix P.
        keys: (M, N, D) bipolar binding keys a_mn, or None for the single-input Performer.
        keep_superposed: "att.+MLP" variant: return the N query bundles' outputs, normalised once per
            bundle, without unbinding.

    Returns:
        (G, M, N, H, L, D) per-input outputs, or (G, N, H, L, D) bundle outputs if `keep_superposed`.
    """
    g, m, n, h, length, d = q.shape
    # Scaling by (sqrt(D) * M * N)^-1/2 keeps the bundles' dot products at the single-input scale.
    scale = (math.sqrt(d) * m * n) ** -0.5
    if kernel == "relu":
        scale *= d ** -0.25  # phi's own D^-1/4 normaliser, on top of the query/key scaling (spec)
    if keys is None:
        qs, ks, vs = q.reshape(g, n, h, length, d), k.reshape(g, m, h, length, d), v.reshape(g, m, h, length, d)
    else:
        a = keys[:, :, None, None, :]  # (M, N, 1, 1, D)
        qs = (q * a).sum(dim=1)  # (G, N, H, L, D): query bundles over m
        ks = (k * a).sum(dim=2)  # (G, M, H, L, D): key bundles over n
        vs = (v * a).sum(dim=2)  # (G, M, H, L, D)
    phi_q = feature_map(qs * scale, projection, kernel)  # (G, N, H, L, R)
    phi_k = feature_map(ks * scale, projection, kernel, is_query=False)  # (G, M, H, L, R)
    # A = sum_m sum_t phi(ks_mt) vs_mt^T: one (R, D) matrix per group and head.
    context = phi_k[:, 0].transpose(-1, -2) @ vs[:, 0]  # (G, H, R, D)
    for i in range(1, m):
        context = context + phi_k[:, i].transpose(-1, -2) @ vs[:, i]
    numerator = phi_q @ context.unsqueeze(1)  # (G, N, H, L, D)
    key_sums = phi_k.sum(dim=3)  # (G, M, H, R)

    if keep_superposed:
        total = key_sums.sum(dim=1)  # (G, H, R)
        denominator = phi_q @ total[:, None, :, :, None]  # (G, N, H, L, 1)
        return numerator / denominator
    # denominator_mn = phi(qs_n) . sum_t phi(ks_mt)
    denominator = phi_q.unsqueeze(1) @ key_sums[:, :, None, :, :, None]  # (G, M, N, H, L, 1)
    out = numerator.unsqueeze(1) / denominator  # (G, M, N, H, L, D)
    if keys is not None:
        out = out * keys[:, :, None, None, :]  # unbinding: a * a = 1
    return out


def _bundle_inputs(h, mask, over):
    """Inputs of the bundled projections, with the mask appended as a constant-1 feature for the bias.

    h (G, M, N, L, d), mask (G, M, N, L) -> (N, G*L, M*(d+1)) for `over="m"` (query bundles) or
    (M, G*L, N*(d+1)) for `over="n"` (key/value bundles). Padded positions are all zero, so their
    projections (bias included) are zero, as the spec requires of padded keys and values.
    """
    g, m, n, length, d = h.shape
    order = (2, 0, 3, 1) if over == "m" else (1, 0, 3, 2)  # bundle index first, bundled axis next to d
    h = h.permute(*order, 4)
    mask = mask.to(h.dtype).permute(*order)
    z = h.new_empty(*h.shape[:-1], d + 1)
    _multiply_into(z[..., :d], h, mask.unsqueeze(-1))
    z[..., d] = mask
    return z.view(z.shape[0], g * length, -1)


def _bundle_weights(weight, bias, keys, over):
    """[a_mn * W | a_mn * b] of every cell, stacked to multiply `_bundle_inputs`' rows.

    weight (E, d), bias (E,), keys (M, N, E) -> (N, M*(d+1), E) for `over="m"`, (M, N*(d+1), E) for "n".
    """
    cells = keys.unsqueeze(-1) * torch.cat([weight, bias.unsqueeze(1)], dim=1)  # (M, N, E, d+1)
    if over == "m":
        cells = cells.permute(1, 0, 3, 2)  # (N, M, d+1, E)
    else:
        cells = cells.permute(0, 1, 3, 2)  # (M, N, d+1, E)
    return cells.reshape(cells.shape[0], -1, cells.shape[-1])


def _inference(*tensors):
    """True when no gradient is recorded: then results may be written in place (one memory pass fewer)."""
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def _multiply_into(dst, a, b):
    if _inference(a, b):
        torch.mul(a, b, out=dst)
    else:
        dst.copy_(a * b)


def _features(x, projection, kernel, is_query):
    if kernel == "relu" and _inference(x, projection):
        return torch.relu_(x @ projection.T).add_(KERNEL_EPSILON)
    return feature_map(x, projection, kernel, is_query)


def fused_favor_attention(h, mask, query, key, value, projection, kernel, keys, heads, keep_superposed=False):
    """FAVOR+ / FAVOR+S from the normalised hidden states, with binding and bundling folded into the projections.

    Computes what `favor_attention` computes from per-input Q, K, V (tests hold them equal), but
    never materialises per-input queries, keys or values: the bound-and-bundled projection of a
    group is one matrix product over the concatenated inputs of its grid row or column, so binding
    and bundling cost no extra passes over memory (on CPUs those passes, not the arithmetic, limit
    this small model).

    Args:
        h: (G, M, N, L, d) LayerNorm outputs; mask: (G, M, N, L) with 1 for real tokens.
        query, key, value: the nn.Linear projections d -> H*D.
        projection: (R, D) random features; keys: (M, N, D) bipolar keys, or None (Performer, M = N = 1).

    Returns:
        (G, M, N, L, H*D) per-input attention outputs, or (G, N, L, H*D) for `keep_superposed`.
    """
    g, m, n, length, _ = h.shape
    e = query.weight.shape[0]
    d = e // heads
    tiled = torch.ones(m, n, e, dtype=h.dtype, device=h.device) if keys is None else keys.repeat(1, 1, heads)  # (M, N, E)
    # Fold the query/key scaling (and, for the ReLU kernel, phi's own D^-1/4) into P.
    scaled = projection * ((math.sqrt(d) * m * n) ** -0.5 * (d ** -0.25 if kernel == "relu" else 1.0))

    # Query bundles qs_n = sum_m a_mn * q_mn: one matrix product per n.
    qs = torch.bmm(_bundle_inputs(h, mask, "m"), _bundle_weights(query.weight, query.bias, tiled, "m"))  # (N, G*L, E)
    qs = qs.view(n, g, length, heads, d).transpose(2, 3)  # (N, G, H, L, D)
    # Key and value bundles ks_m, vs_m = sum_n a_mn * (k_mn, v_mn): one product per m for both.
    kv_weight = torch.cat([key.weight, value.weight])
    kv_bias = torch.cat([key.bias, value.bias])
    kv = torch.bmm(_bundle_inputs(h, mask, "n"), _bundle_weights(kv_weight, kv_bias, tiled.repeat(1, 1, 2), "n"))
    kv = kv.view(m, g, length, 2, heads, d).permute(3, 0, 1, 4, 2, 5)  # (2, M, G, H, L, D)

    phi_q = _features(qs.contiguous(), scaled, kernel, True)  # (N, G, H, L, R)
    phi_k = _features(kv[0].contiguous(), scaled, kernel, False)  # (M, G, H, L, R)
    values = kv[1]
    # One (R, D) context per group and head, plus one normaliser column per key bundle m (and their sum).
    context = sum(phi_k[i].transpose(-1, -2) @ values[i] for i in range(m))  # (G, H, R, D)
    key_sums = phi_k.sum(dim=3)  # (M, G, H, R)
    columns = [context, key_sums.sum(0).unsqueeze(-1)] if keep_superposed else [context, key_sums.permute(1, 2, 3, 0)]
    context = torch.cat(columns, dim=-1)  # (G, H, R, D + 1) or (G, H, R, D + M)

    if keep_superposed:
        out = h.new_empty(g, n, length, heads, d)
        for j in range(n):
            both = phi_q[j] @ context  # (G, H, L, D + 1)
            out[:, j] = (both[..., :d] / both[..., d:]).transpose(1, 2)
        return out.view(g, n, length, e)
    out = h.new_empty(g, m, n, length, heads, d)
    for j in range(n):
        both = phi_q[j] @ context  # (G, H, L, D + M): numerator_n and the M denominators
        for i in range(m):
            ratio = both[..., :d] / both[..., d + i:d + i + 1]  # (G, H, L, D)
            if keys is not None:
                ratio = ratio.mul_(keys[i, j].view(1, 1, 1, d))  # unbinding
            out[:, i, j] = ratio.transpose(1, 2)
    return out.view(g, m, n, length, e)
