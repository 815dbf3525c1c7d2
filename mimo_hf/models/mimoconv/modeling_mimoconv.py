"""MIMOConv: a pre-activation Wide ResNet that runs several images through one trunk, in superposition.

Forward pass for a batch of B images at operating point k (k | N, N the capacity):

    pixel_values (B, in_ch, H, W)
      -> stem, per image: conv3x3 -> BN -> ReLU                      (B, C, H, W), C = 16 * initial_width
      -> group consecutive images in runs of k (a partial last group is filled by cycling its members)
      -> bind every item with its slot keys and bundle each group    (G, C, H, W), G = ceil(B / k)
      -> trunk: three stages of pre-activation blocks                (G, 64w, H/4, W/4)
      -> global average pool                                         (G, F), F = 64w
      -> unbind: Linear(F, N*F) + ReLU, average the N/k slots of each item   (G*k, F)
      -> average the repeats of a partial group's members             (B, F)
      -> classifier (ForImageClassification only)                     (B, num_labels)

Spec: ``shared/spec/mimonets.md`` section 2. This file runs as Hub remote code, so it imports only
torch, transformers and its sibling files.
"""

import math
import numbers
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils import ModelOutput

from .binding import bind_and_bundle, hrr_matrices
from .configuration_mimoconv import MIMOConvConfig, check_default_superpositions


@dataclass
class MIMOConvModelOutput(ModelOutput):
    """Per-input features of MIMOConv.

    Args:
        pooler_output (`torch.FloatTensor` of shape `(batch_size, num_features)`):
            Unbound features of every input, in input order.
        bundle_hidden_state (`torch.FloatTensor` of shape `(num_bundles, num_features, h, w)`):
            Trunk output for each bundle (one bundle per group of k inputs).
    """

    pooler_output: Optional[torch.FloatTensor] = None
    bundle_hidden_state: Optional[torch.FloatTensor] = None


class SReLU(nn.Module):
    """Shifted ReLU of ISONet: max(x - b, 0) + b with a learned per-channel offset b."""

    def __init__(self, channels, init):
        super().__init__()
        self.srelu_bias = nn.Parameter(torch.full((1, channels, 1, 1), float(init)))

    def forward(self, x):
        return (x - self.srelu_bias).relu_().add_(self.srelu_bias)


class _PReLUFunction(torch.autograd.Function):
    """F.prelu with a cheaper backward; gradients equal torch's.

    torch's CPU backward of PReLU materialises a full-size tensor of per-element slope gradients and
    then reduces it; it costs ~5x a ReLU backward and was the largest elementwise cost of a MIMOConv
    training step. Here the backward is a ReLU-style mask, one multiply-add and one reduction.
    """

    @staticmethod
    def forward(ctx, x, weight):  # x (B, C, H, W), weight (C,)
        ctx.save_for_backward(x, weight)
        return F.prelu(x, weight)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_pos = torch.ops.aten.threshold_backward(grad, x, 0.0)  # grad where x > 0, else 0
        grad_neg = grad - grad_pos
        grad_x = torch.addcmul(grad_pos, grad_neg, weight.view(1, -1, 1, 1))
        grad_weight = (grad_neg * x).sum((0, 2, 3)) if ctx.needs_input_grad[1] else None
        return grad_x, grad_weight


class PReLU(nn.PReLU):
    """Per-channel PReLU (same parameter `weight` as nn.PReLU) whose training backward is fast."""

    def forward(self, x):
        if torch.is_grad_enabled() and x.dim() == 4 and (x.requires_grad or self.weight.requires_grad):
            return _PReLUFunction.apply(x, self.weight)
        return F.prelu(x, self.weight)


def make_activation(kind, channels, init):
    if kind == "relu":
        # In place: the input is always a fresh BatchNorm output, and not allocating a second
        # activation-sized tensor matters on CPUs (see MIMOConvModel.embed_and_bundle).
        return nn.ReLU(inplace=True)
    if kind == "prelu":
        return PReLU(num_parameters=channels, init=init)
    return SReLU(channels, init)


class MIMOConvBlock(nn.Module):
    """Pre-activation basic block: BN -> act -> conv3x3(stride) -> BN -> act -> conv3x3, plus shortcut."""

    def __init__(self, config, in_channels, out_channels, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = make_activation(config.activation, in_channels, config.activation_init)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = make_activation(config.activation, out_channels, config.activation_init)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            # The shortcut sees the block input itself (not its activation), as in the authors' code.
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.alpha = nn.Parameter(torch.zeros(())) if config.skip_init else None

    def forward(self, x):  # (G, in, H, W) -> (G, out, H/stride, W/stride)
        out = self.conv1(self.relu1(self.bn1(x)))
        out = self.conv2(self.relu2(self.bn2(out)))
        shortcut = x if self.downsample is None else self.downsample(x)
        if self.alpha is not None:
            out = self.alpha * out
        return out + shortcut

    def convolutions(self):
        convs = [self.conv1, self.conv2]
        if self.downsample is not None:
            convs.append(self.downsample[0])
        return convs


class MIMOConvBinding(nn.Module):
    """The N slot keys: HRR vectors (N, C) or MBAT matrices (N, C, C)."""

    def __init__(self, config):
        super().__init__()
        n, c = config.num_superpositions, config.stem_channels
        self.kind = config.binding
        if self.kind == "hrr":
            self.keys = nn.Parameter(torch.empty(n, c), requires_grad=config.trainable_keys)
        else:
            self.keys = nn.Parameter(torch.empty(n, c, c), requires_grad=config.trainable_keys)

    def matrices(self):
        """Binding matrices (N, C, C): slot j binds an item x (C at one pixel) to M_j x."""
        return hrr_matrices(self.keys) if self.kind == "hrr" else self.keys


def _load_with_file_errors(load, name_or_path):
    """Run `load()`; a weights file that cannot be read is reported with its path and what to do.

    safetensors says only "header too large" (or "invalid JSON in header") for a truncated, corrupt or
    non-safetensors file, without naming it; the path is what a user needs to find and replace it.
    """
    try:
        return load()
    except Exception as error:  # safetensors' SafetensorError derives from Exception only
        if type(error).__name__ != "SafetensorError" and "safetensors" not in type(error).__module__:
            raise
        import os

        where = str(name_or_path)
        path = os.path.join(where, "model.safetensors") if os.path.isdir(where) else f"model.safetensors of {where}"
        raise OSError(
            f"{path}: cannot read the weights ({error}): the file is corrupt, truncated or not a safetensors "
            "file; download it again (or re-export the folder)"
        ) from error


class MIMOConvPreTrainedModel(PreTrainedModel):
    config_class = MIMOConvConfig
    base_model_prefix = "mimoconv"
    main_input_name = "pixel_values"

    def __init__(self, config, *args, **kwargs):
        # Overrides given at load (from_pretrained kwargs, a pipeline's model_kwargs) bypass the
        # config's __init__; check them here, before any weights are read.
        check_default_superpositions(config.num_superpositions, config.default_superpositions)
        super().__init__(config, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        load = super().from_pretrained
        return _load_with_file_errors(lambda: load(pretrained_model_name_or_path, *args, **kwargs),
                                      pretrained_model_name_or_path)

    @torch.no_grad()
    def _init_weights(self, module):
        # The authors' initialisation: He-normal (fan_out) convolutions, unit BN, PyTorch-default linear
        # layers, HRR keys uniform in +-1/sqrt(C), MBAT matrices He-normal.
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
            module.num_batches_tracked.zero_()
        elif isinstance(module, nn.Linear):
            module.reset_parameters()
        elif isinstance(module, nn.PReLU):
            module.weight.fill_(self.config.activation_init)
        elif isinstance(module, SReLU):
            module.srelu_bias.fill_(self.config.activation_init)
        elif isinstance(module, MIMOConvBinding):
            c = self.config.stem_channels
            if module.kind == "hrr":
                nn.init.uniform_(module.keys, -1.0 / math.sqrt(c), 1.0 / math.sqrt(c))
            else:
                nn.init.normal_(module.keys, std=math.sqrt(2.0 / c))
        elif isinstance(module, MIMOConvBlock) and module.alpha is not None:
            module.alpha.zero_()


def resolve_operating_point(config, num_superpositions):
    k = config.default_superpositions if num_superpositions is None else num_superpositions
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1 or config.num_superpositions % k:
        raise ValueError(
            f"num_superpositions={num_superpositions!r} is not an operating point of this model (capacity "
            f"N={config.num_superpositions}); allowed values: {config.operating_points}"
        )
    return int(k)


# ITU-R 601-2 luma weights, what PIL's convert("L") uses. They sum to 1, so on normalised channels
# ((v - mean) / std, the same mean and std for all three) the weighted sum is the normalised luminance.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def check_pixel_values(config, pixel_values, dtype):
    """Validated `pixel_values` (B, C, H, W) in the model's floating dtype `dtype`.

    Other floating dtypes (float64 from numpy, float16) are cast: the values mean the same thing, and
    torch would otherwise fail inside the first convolution. Integer tensors are refused: raw 0-255
    pixels are not normalised inputs (the image processor makes those). A grayscale model also takes
    3-channel input and reduces it to luminance (see `MIMOConvConfig.num_channels`).
    """
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(f"pixel_values must be a torch.Tensor, got {type(pixel_values).__name__}")
    channels = (config.num_channels, 3) if config.num_channels == 1 else (config.num_channels,)
    expected = (config.num_channels, config.image_size, config.image_size)
    if (pixel_values.dim() != 4 or pixel_values.shape[1] not in channels
            or tuple(pixel_values.shape[2:]) != expected[1:] or pixel_values.shape[0] < 1):
        also = " (or 3 channels, reduced to luminance)" if config.num_channels == 1 else ""
        raise ValueError(
            f"pixel_values must have shape (batch_size >= 1, {', '.join(map(str, expected))}){also}, "
            f"got {tuple(pixel_values.shape)}"
        )
    if not pixel_values.is_floating_point():
        raise TypeError(
            f"pixel_values must be a floating-point tensor (the model runs in {dtype}; normalised values, as "
            f"its image processor returns them), got {pixel_values.dtype}"
        )
    pixel_values = pixel_values.to(dtype)
    if pixel_values.shape[1] != config.num_channels:  # 3 channels into a grayscale model
        weights = torch.tensor(LUMA_WEIGHTS, dtype=dtype, device=pixel_values.device)
        pixel_values = torch.einsum("bchw,c->bhw", pixel_values, weights).unsqueeze(1)
    return pixel_values


# Inference on a CPU runs in chunks of about 16 MB of float32 per widest activation: below glibc's
# largest mmap threshold (32 MB), so chunk buffers are reused from the heap instead of being freshly
# mapped and page-faulted on every call. Accelerators get whole batches (they want large kernels).
_STEM_CHUNK_ELEMENTS = 1 << 22


def _chunk_elements(device):
    return _STEM_CHUNK_ELEMENTS if device.type == "cpu" else float("inf")


def group_layout(batch_size, k):
    """Which input fills each of the G*k group positions, or None when B is a multiple of k.

    Groups are consecutive runs of k inputs. A partial last group of r < k inputs is filled by cycling
    its own members (position i holds member i mod r), so no input is dropped and no input borrows
    another group's images.
    """
    full = batch_size - batch_size % k
    if full == batch_size:
        return None
    rest = batch_size - full
    tail = full + torch.arange(k) % rest
    return torch.cat([torch.arange(full), tail])


class MIMOConvModel(MIMOConvPreTrainedModel):
    """MIMOConv without a classifier: per-input features (B, 64 * width)."""

    def __init__(self, config):
        super().__init__(config)
        c = config.stem_channels
        self.conv1 = nn.Conv2d(config.num_channels, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.binding = None if config.binding == "none" else MIMOConvBinding(config)
        in_channels = c
        for stage, (channels, stride) in enumerate(zip((16, 32, 64), (1, 2, 2)), start=1):
            blocks = []
            for b in range(config.blocks_per_stage):
                blocks.append(MIMOConvBlock(config, in_channels, channels * config.width, stride if b == 0 else 1))
                in_channels = channels * config.width
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        f = config.num_features
        # The plain Wide ResNet (binding "none", N = 1) has no unbinding layer, as in the authors' code.
        self.unbind = None if config.binding == "none" else nn.Linear(f, config.num_superpositions * f)
        self.post_init()

    def trunk_convolutions(self):
        """The convolutions the isometry regulariser acts on: every trunk conv, not stem or (un)binding."""
        return [conv for layer in (self.layer1, self.layer2, self.layer3) for block in layer for conv in block.convolutions()]

    def binding_regularization(self):
        """R_bind = ||triu(K'K'^T, 1)||_F^2 / (N(N-1)/2) + ||rownorms(K) - 1||^2 / N for HRR keys K (N, C).

        Zero for MBAT and no binding, which have no key vectors.
        """
        if self.binding is None or self.binding.kind != "hrr":
            return self.conv1.weight.new_zeros(())
        keys = self.binding.keys
        n = keys.shape[0]
        norms = keys.norm(dim=1)
        penalty = ((norms - 1.0) ** 2).sum() / n
        if n > 1:
            unit = keys / norms.clamp_min(1e-12).unsqueeze(1)
            cosines = torch.triu(unit @ unit.t(), diagonal=1)
            penalty = penalty + (cosines**2).sum() / (n * (n - 1) / 2)
        return penalty

    def isometry_regularization(self):
        """R_iso = sum over trunk convs of 0.5 * ||conv2d(W, W, padding=k-1) - T||_F^2 (ISONet).

        W (out, in, k, k) is transposed in its first two axes when out > in; T is the identity placed at
        the spatial centre of the Gram tensor.
        """
        total = self.conv1.weight.new_zeros(())
        for conv in self.trunk_convolutions():
            w = conv.weight
            if w.shape[0] > w.shape[1]:
                w = w.transpose(0, 1)
            size = w.shape[-1]
            gram = F.conv2d(w, w, padding=size - 1)  # (o, o, 2k-1, 2k-1)
            target = torch.zeros_like(gram)
            target[:, :, size - 1, size - 1] = torch.eye(w.shape[0], device=w.device, dtype=w.dtype)
            total = total + 0.5 * ((gram - target) ** 2).sum()
        return total

    def embed_and_bundle_reference(self, pixel_values, k, positions):
        """Stem, grouping, binding and bundling, step by step (training, and the reference for tests)."""
        items = F.relu(self.bn1(self.conv1(pixel_values)))  # (B, C, H, W)
        if positions is not None:
            items = items.index_select(0, positions)  # (G*k, C, H, W)
        if self.binding is None:
            return items  # N = k = 1: nothing to bind
        return bind_and_bundle(items, self.binding.matrices(), k)  # (G, C, H, W)

    def embed_and_bundle(self, pixel_values, k, positions):
        """Inference version of `embed_and_bundle_reference`: same result, less memory traffic.

        The stem BatchNorm is folded into the stem convolution, the ReLU runs in place, and the batch
        is processed in chunks of whole groups so that the wide per-image stem output (C = 64 channels
        at full resolution for MIMOConv) never exists for the whole batch at once: on a CPU, a fresh
        batch-sized tensor costs more in page faults and cache misses than the convolution itself.
        """
        bn = self.bn1
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        weight = self.conv1.weight * scale.reshape(-1, 1, 1, 1)
        bias = bn.bias - bn.running_mean * scale
        matrices = None if self.binding is None else self.binding.matrices()
        if positions is not None:
            pixel_values = pixel_values.index_select(0, positions)  # (G*k, in_ch, H, W)
        batch, _, height, width = pixel_values.shape
        c = self.config.stem_channels
        per_group = c * height * width * k
        chunk = int(min(batch, max(1, _chunk_elements(pixel_values.device) // per_group) * k))  # whole groups
        bundles = []
        for part in pixel_values.split(chunk):
            # A 3-channel convolution is several times faster in channels-last layout on CPUs.
            part = part.contiguous(memory_format=torch.channels_last)
            items = F.conv2d(part, weight, bias, padding=1).relu_()  # (b, C, H, W), stored as (b, H, W, C)
            if matrices is None:
                bundles.append(items.contiguous())
                continue
            bundles.append(bind_and_bundle(items, matrices, k).contiguous())  # (g, C, H, W)
        return bundles[0] if len(bundles) == 1 else torch.cat(bundles)

    def stages(self, bundles):
        """The three trunk stages: (G, C, H, W) bundles -> (G, F, H/4, W/4)."""
        return self.layer3(self.layer2(self.layer1(bundles)))

    def encode_inference(self, pixel_values, k, positions):
        """Stem, binding, bundling and trunk at inference, chunk by chunk: (G, F, H/4, W/4).

        At inference every bundle is independent (BatchNorm uses running statistics), so the batch runs
        in chunks of whole groups whose widest trunk activation stays within the same memory budget as
        the stem chunks; no activation of the whole batch is ever materialised.
        """
        if positions is not None:
            pixel_values = pixel_values.index_select(0, positions)  # (G*k, in_ch, H, W)
        per_bundle = 16 * self.config.width * pixel_values.shape[2] * pixel_values.shape[3]
        groups = int(min(pixel_values.shape[0] // k, max(1, _chunk_elements(pixel_values.device) // per_bundle)))
        hidden = [self.stages(self.embed_and_bundle(part, k, None)) for part in pixel_values.split(groups * k)]
        return hidden[0] if len(hidden) == 1 else torch.cat(hidden)

    def forward(self, pixel_values, num_superpositions=None, return_dict=None, **kwargs):
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        k = resolve_operating_point(self.config, num_superpositions)
        pixel_values = check_pixel_values(self.config, pixel_values, self.conv1.weight.dtype)
        batch_size = pixel_values.shape[0]

        positions = group_layout(batch_size, k)
        if positions is not None:
            positions = positions.to(pixel_values.device)
        if self.training:
            bundles = self.embed_and_bundle_reference(pixel_values, k, positions)  # (G, C, H, W)
            hidden = self.stages(bundles)  # (G, F, h, w)
        else:
            hidden = self.encode_inference(pixel_values, k, positions)  # (G, F, h, w)
        pooled = hidden.mean(dim=(2, 3))  # (G, F)

        if self.unbind is None:
            features = pooled
        else:
            n, f = self.config.num_superpositions, self.config.num_features
            slots = F.relu(self.unbind(pooled))  # (G, N*F); slot j holds item j mod k
            features = slots.reshape(-1, n // k, k, f).mean(dim=1).reshape(-1, f)  # (G*k, F)

        if positions is not None:
            # Average the repeats of the partial group's members back into one row per input.
            summed = features.new_zeros(batch_size, features.shape[1]).index_add_(0, positions, features)
            counts = torch.bincount(positions, minlength=batch_size).to(features.dtype)
            features = summed / counts.unsqueeze(1)

        if not return_dict:
            return (features, hidden)
        return MIMOConvModelOutput(pooler_output=features, bundle_hidden_state=hidden)


class MIMOConvForImageClassification(MIMOConvPreTrainedModel):
    """MIMOConv with one linear classifier shared by every superposition slot: per-input logits."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mimoconv = MIMOConvModel(config)
        self.classifier = nn.Linear(config.num_features, config.num_labels)
        self.post_init()

    def binding_regularization(self):
        return self.mimoconv.binding_regularization()

    def isometry_regularization(self):
        return self.mimoconv.isometry_regularization()

    def forward(self, pixel_values=None, labels=None, num_superpositions=None, return_dict=None, **kwargs):
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)` or `torch.FloatTensor` of shape
        `(batch_size, num_labels)`, *optional*):
            Class indices, or class probabilities (e.g. mixed-up targets), for the cross-entropy loss.
        num_superpositions (`int`, *optional*):
            Operating point k (k | N): how many inputs share one bundle. Defaults to
            `config.default_superpositions`.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.mimoconv(pixel_values, num_superpositions=num_superpositions, return_dict=True)
        logits = self.classifier(outputs.pooler_output)  # (B, num_labels)
        loss = None
        if labels is not None:
            if labels.shape[0] != logits.shape[0]:
                raise ValueError(f"labels has {labels.shape[0]} rows but pixel_values has {logits.shape[0]}")
            labels = labels.to(logits.device)
            target = labels if labels.is_floating_point() else labels.long()
            loss = F.cross_entropy(logits, target)
        if not return_dict:
            return (logits,) if loss is None else (loss, logits)
        return ImageClassifierOutput(loss=loss, logits=logits)
