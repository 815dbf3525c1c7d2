"""Binding and bundling of MIMOConv as dense matrix work.

Every binding here is a per-slot linear map K_j in R^{C x C} applied at every pixel. Bundling sums the
bound items, so binding + bundling of one group is a single 1x1 convolution from k*C to C channels
whose weight stacks the key matrices (spec section 2). This file is copied into Hub-ready folders
beside ``modeling_mimoconv.py`` and imports only torch.
"""

import torch


def hrr_index(channels, device=None):
    """Index matrix I with I[c, m] = (m - c - 1 + C/2) mod C.

    The authors' position-wise HRR binding is y[c] = sum_t k[t] x[(c + t + 1 - C/2) mod C]. Writing
    m = (c + t + 1 - C/2) mod C gives y[c] = sum_m k[(m - c - 1 + C/2) mod C] x[m], so the binding is
    the matrix-vector product with M[c, m] = k[I[c, m]].
    """
    c = torch.arange(channels, device=device).unsqueeze(1)
    m = torch.arange(channels, device=device).unsqueeze(0)
    return (m - c - 1 + channels // 2) % channels


def hrr_matrices(keys):
    """HRR keys (N, C) -> binding matrices (N, C, C) with M_j[c, m] = k_j[(m - c - 1 + C/2) mod C]."""
    channels = keys.shape[-1]
    return keys[:, hrr_index(channels, keys.device)]


def operating_point_weight(matrices, k):
    """Weight (C, k*C, 1, 1) of the 1x1 convolution that binds and bundles a group of k items.

    At operating point k, slot j of the N slots holds item j mod k, so item i is bound with the sum of
    the N/k matrices of the slots j = i (mod k). Summing first costs k*C^2 instead of N*C^2 MACs per
    pixel and gives the same bundle up to float rounding.
    """
    n, c, _ = matrices.shape
    per_item = matrices.reshape(n // k, k, c, c).sum(dim=0)  # (k, C_out, C_in)
    return per_item.permute(1, 0, 2).reshape(c, k * c, 1, 1)  # (C_out, k*C_in, 1, 1)


def bind_and_bundle(items, matrices, k):
    """Bind groups of k consecutive items and bundle each group into one tensor.

    items: (G*k, C, H, W) in group order, in either memory format; matrices: (N, C, C). Returns bundles
    (G, C, H, W) in channels-last memory format.

    Computed as one matrix product over rows of k*C channel values (one row per group and pixel), not
    as a 1x1 convolution over a (G, k*C, H, W) view: that view is not a view of a channels-last tensor,
    and on CPUs the convolution's backward over it costs ~10x its forward. The product and its
    backward are single BLAS calls in any layout.
    """
    gk, c, h, w = items.shape
    groups = gk // k
    # (G*k, C, H, W) -> (G, H*W, k*C): items of a group side by side in each row (free for channels-last input).
    rows = items.permute(0, 2, 3, 1).reshape(groups, k, h * w, c).transpose(1, 2).reshape(groups * h * w, k * c)
    bundled = rows @ operating_point_weight(matrices, k).reshape(c, k * c).t()  # (G*H*W, C)
    return bundled.reshape(groups, h, w, c).permute(0, 3, 1, 2)  # (G, C, H, W), channels-last strides
