"""An independent re-implementation of the authors' MIMOConv forward pass, for checking the converter.

Written from shared/spec/mimonets.md (sections 2 and 4) in plain torch, deliberately step by step
and in the authors' own layout: it reads an authors'-layout state dict directly and binds with the
authors' operations (circular conv1d for HRR, grouped 1x1 conv for MBAT). It does NOT import
mimo_hf, so a mistake shared by the converter and our model cannot cancel out here.

Also builds random authors'-layout state dicts (every key the authors' modules register, including
the alpha every block owns and the BN counters).
"""

import torch
import torch.nn.functional as F

STAGE_WIDTHS = (16, 32, 64)
BN_EPS = 1e-5  # nn.BatchNorm2d default, used by the authors


def _bn(x, sd, prefix):
    """BatchNorm2d in eval mode: running statistics, affine."""
    return F.batch_norm(
        x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"], sd[f"{prefix}.weight"], sd[f"{prefix}.bias"],
        training=False, eps=BN_EPS,
    )


def _act(x, sd, prefix, activation):
    if activation == "relu":
        return F.relu(x)
    if activation == "prelu":
        return F.prelu(x, sd[f"{prefix}.weight"])  # per-channel slopes (C,)
    bias = sd[f"{prefix}.srelu_bias"]  # (1, C, 1, 1); shifted ReLU max(x - b, 0) + b
    return F.relu(x - bias) + bias


def _block(x, sd, prefix, stride, activation, skip_init):
    """Pre-activation basic block, as the authors' BasicBlock / BasicISOBlock / AdjustedISOBlock."""
    out = _act(_bn(x, sd, f"{prefix}.bn1"), sd, f"{prefix}.relu1", activation)
    out = F.conv2d(out, sd[f"{prefix}.conv1.weight"], stride=stride, padding=1)
    out = _act(_bn(out, sd, f"{prefix}.bn2"), sd, f"{prefix}.relu2", activation)
    out = F.conv2d(out, sd[f"{prefix}.conv2.weight"], padding=1)
    identity = x
    if f"{prefix}.downsample.0.weight" in sd:
        # The shortcut takes the raw block input x, not its activation.
        identity = _bn(F.conv2d(x, sd[f"{prefix}.downsample.0.weight"], stride=stride), sd, f"{prefix}.downsample.1")
    if skip_init:
        return sd[f"{prefix}.alpha"] * out + identity
    return out + identity  # alpha exists but is unused


def _hrr_bind(x, keys):
    """x (G, N, C, H, W), keys = channelConv.weight (N, 1, C) -> bound (G, N, C, H, W).

    A conv1d over the channel axis, one group per slot, with C//2 circular padding on both sides:
    output length C + 1, whose first element the authors drop.
    """
    g, n, c, h, w = x.shape
    rows = x.permute(0, 3, 4, 1, 2).reshape(g * h * w, n, c)  # (G*H*W, N, C)
    rows = F.pad(rows, (c // 2, c // 2), mode="circular")  # (G*H*W, N, 2C)
    rows = F.conv1d(rows, keys, groups=n)[:, :, 1:]  # (G*H*W, N, C+1) -> (G*H*W, N, C)
    return rows.reshape(g, h, w, n, c).permute(0, 3, 4, 1, 2)


def _mbat_bind(x, matrices):
    """x (G, N, C, H, W), matrices = channelLinear.weight (N*C, C, 1, 1) -> bound (G, N, C, H, W)."""
    g, n, c, h, w = x.shape
    out = F.conv2d(x.reshape(g, n * c, h, w), matrices, groups=n)  # (G, N*C, H, W)
    return out.reshape(g, n, c, h, w)


def reference_logits(sd, pixel_values, *, num_superpositions, k, binding, activation, skip_init, blocks_per_stage):
    """Logits (B, classes) of the authors' model in eval mode at operating point k (k | N).

    ``binding`` is the authors' "HRR", "MBAT" or "None". Like the authors' forward (which would drop
    the leftovers), only batches whose size is a multiple of k are accepted.
    """
    n = num_superpositions
    batch = pixel_values.shape[0]
    if n % k or batch % k:
        raise ValueError(f"k={k} must divide N={n} and the batch size {batch}")

    x = F.relu(_bn(F.conv2d(pixel_values, sd["conv1.weight"], padding=1), sd, "bn1"))  # (B, C, H, W)
    _, c, h, w = x.shape
    x = x.reshape(batch // k, k, c, h, w)  # (G, k, C, H, W)
    x = x.repeat(1, n // k, 1, 1, 1)  # (G, N, C, H, W): slot j holds item j mod k
    if binding == "HRR":
        x = _hrr_bind(x, sd["channelConv.weight"])
    elif binding == "MBAT":
        x = _mbat_bind(x, sd["channelLinear.weight"])
    x = x.sum(dim=1)  # bundle: (G, C, H, W)

    for stage in (1, 2, 3):
        for b in range(blocks_per_stage):
            stride = 2 if stage > 1 and b == 0 else 1
            x = _block(x, sd, f"layer{stage}.{b}", stride, activation, skip_init)

    x = F.adaptive_avg_pool2d(x, 1)  # (G, F, 1, 1)
    if "unbind.0.weight" in sd:
        x = F.relu(F.conv2d(x, sd["unbind.0.weight"], sd["unbind.0.bias"]))  # (G, N*F, 1, 1)
    features = sd["fc.weight"].shape[1]
    x = x.reshape(batch // k, n // k, k, features).mean(dim=1)  # (G, k, F): average the N/k copies
    return F.linear(x.reshape(batch, features), sd["fc.weight"], sd["fc.bias"])


# ---------------------------------------------------------------------------------------------------
# Random checkpoints in the authors' layout
# ---------------------------------------------------------------------------------------------------


def _bn_entries(prefix, channels, gen):
    """Random BN parameters and running statistics, far enough from identity that BN matters."""
    return {
        f"{prefix}.weight": torch.rand(channels, generator=gen) + 0.5,
        f"{prefix}.bias": 0.2 * torch.randn(channels, generator=gen),
        f"{prefix}.running_mean": 0.2 * torch.randn(channels, generator=gen),
        f"{prefix}.running_var": torch.rand(channels, generator=gen) + 0.5,
        f"{prefix}.num_batches_tracked": torch.randint(1, 10_000, (), generator=gen),
    }


def _conv(out_ch, in_ch, size, gen):
    """He-normal-ish random weights so activations stay O(1) through the trunk."""
    return torch.randn(out_ch, in_ch, size, size, generator=gen) * (2.0 / (in_ch * size * size)) ** 0.5


def _act_entries(prefix, channels, activation, gen):
    if activation == "prelu":
        return {f"{prefix}.weight": torch.rand(channels, generator=gen)}  # slopes in [0, 1)
    if activation == "srelu":
        return {f"{prefix}.srelu_bias": -1.0 + 0.5 * torch.randn(1, channels, 1, 1, generator=gen)}
    return {}  # nn.ReLU has no parameter


def random_reference_state_dict(
    *, depth=10, width=1, initial_width=4, binding="HRR", num_superpositions=2, activation="prelu",
    skip_init=False, num_classes=10, input_channels=3, seed=0,
):
    """A random state dict with exactly the keys and shapes of the authors' SuperWideISONet/Resnet.

    Alphas are random when skip_init is on and exactly 0 otherwise, as in a real checkpoint (an unused
    alpha never receives a gradient).
    """
    gen = torch.Generator().manual_seed(seed)
    n, c = num_superpositions, int(16 * initial_width)
    features = 64 * width
    sd = {"conv1.weight": _conv(c, input_channels, 3, gen), **_bn_entries("bn1", c, gen)}
    if binding == "HRR":
        sd["channelConv.weight"] = torch.randn(n, 1, c, generator=gen) / c**0.5  # (N, 1, C)
    elif binding == "MBAT":
        sd["channelLinear.weight"] = torch.randn(n * c, c, 1, 1, generator=gen) * (1.0 / c) ** 0.5  # (N*C, C, 1, 1)

    in_ch = c
    for stage, base in enumerate(STAGE_WIDTHS, start=1):
        out_ch = base * width
        for b in range((depth - 4) // 6):
            p = f"layer{stage}.{b}"
            stride = 2 if stage > 1 and b == 0 else 1
            sd.update(_bn_entries(f"{p}.bn1", in_ch, gen))
            sd.update(_act_entries(f"{p}.relu1", in_ch, activation, gen))
            sd[f"{p}.conv1.weight"] = _conv(out_ch, in_ch, 3, gen)
            sd.update(_bn_entries(f"{p}.bn2", out_ch, gen))
            sd.update(_act_entries(f"{p}.relu2", out_ch, activation, gen))
            sd[f"{p}.conv2.weight"] = _conv(out_ch, out_ch, 3, gen)
            if stride != 1 or in_ch != out_ch:
                sd[f"{p}.downsample.0.weight"] = _conv(out_ch, in_ch, 1, gen)
                sd.update(_bn_entries(f"{p}.downsample.1", out_ch, gen))
            sd[f"{p}.alpha"] = (0.5 + torch.rand((), generator=gen)) if skip_init else torch.zeros(())
            in_ch = out_ch

    if not (binding == "None" and n == 1):  # the plain WRN has unbind = nn.Identity()
        sd["unbind.0.weight"] = torch.randn(n * features, features, 1, 1, generator=gen) / features**0.5
        sd["unbind.0.bias"] = 0.1 * torch.randn(n * features, generator=gen)
    sd["fc.weight"] = torch.randn(num_classes, features, generator=gen) / features**0.5
    sd["fc.bias"] = 0.1 * torch.randn(num_classes, generator=gen)
    return sd
