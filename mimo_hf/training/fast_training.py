"""What makes a MIMOConv training step fast and a short schedule accurate.

Speed (results unchanged): channels-last tensors end to end, and on CPUs a glibc allocator that keeps
freed memory instead of returning it to the kernel (`tune_cpu_allocator`). The model itself computes
binding as one matrix product and has a cheap PReLU backward (mimoconv/binding.py, modeling_mimoconv.py).

Short schedules (the "fast" preset, chosen on validation data: see docs/mimoconv_recipe_study.md):
label smoothing, Nesterov momentum, a triangular learning rate, an exponential moving average (EMA) of
the weights evaluated and exported in place of the raw weights, faster BatchNorm statistics, and
alternating flips (each image is flipped in every other pass over the data instead of at random).
"""

import copy
import ctypes
import ctypes.util
import math
import platform

import torch

# Defaults of each preset; an explicit command-line flag always wins over its preset.
PRESETS = {
    # The paper's recipe (spec section 2), tuned for 1,200-epoch GPU runs.
    "paper": dict(lr_schedule="onecycle", lr=0.2, pct_start=0.3, momentum=0.95, nesterov=False, weight_decay=1e-5,
                  mixup_alpha=1.0, label_smoothing=0.0, ema_decay=0.0, bn_momentum=0.1, alternating_flip=False),
    # Architecture-agnostic tricks of fast CIFAR training (airbench, Page's ResNet-9), for tens of epochs.
    "fast": dict(lr_schedule="triangular", lr=0.2, pct_start=0.25, momentum=0.9, nesterov=True, weight_decay=5e-4,
                 mixup_alpha=0.0, label_smoothing=0.2, ema_decay=0.998, bn_momentum=0.4, alternating_flip=True),
}


def tune_cpu_allocator():
    """Make glibc keep and reuse freed memory instead of handing it back to the kernel; True if applied.

    Every activation of a training step is tens of MB. By default glibc serves such blocks with a fresh
    mmap (or grows the heap in small steps) and unmaps or trims them when they are freed, so the next
    step page-faults and zero-fills them again: ~100,000 page faults per MIMOConv N=4 step on a 2-core
    CPU, a third of its time. Without mmap, without trimming and with a 256 MB growth step, freed blocks
    stay in the heap and the next step reuses them (~3,000 faults per step). The peak resident memory
    is about the same (the blocks are needed anyway). No effect outside glibc.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4  # mallopt parameter ids from <malloc.h>
    settings = ((m_mmap_max, 0), (m_trim_threshold, 2**62), (m_top_pad, 256 << 20))
    return all(libc.mallopt(option, value) == 1 for option, value in settings)


def set_batchnorm_momentum(model, momentum):
    """Running-statistics momentum of every BatchNorm (PyTorch convention: weight of the new batch)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = momentum


def make_scheduler(optimizer, kind, max_lr, total_steps, pct_start, momentum):
    """'onecycle': torch's OneCycleLR (cosine; momentum cycles from `momentum` down to 0.85 at the peak
    and back; the paper). 'triangular': linear from max_lr/25 up to max_lr at pct_start of the steps,
    then linearly down to 0, at constant `momentum` (airbench)."""
    if kind == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start,
                                                   base_momentum=min(0.85, momentum), max_momentum=momentum)
    if kind != "triangular":
        raise ValueError(f"unknown learning-rate schedule {kind!r}; allowed: 'onecycle', 'triangular'")
    peak = max(1, round(pct_start * total_steps))

    def factor(step):  # LambdaLR multiplies the optimizer's lr (set to max_lr) by this
        if step < peak:
            return 1 / 25 + (1 - 1 / 25) * step / peak
        return max(0.0, (total_steps - step) / max(1, total_steps - peak))

    for group in optimizer.param_groups:
        group["lr"] = max_lr
        group["initial_lr"] = max_lr
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def smooth_targets(targets, smoothing):
    """(B, num_labels) target distributions mixed with the uniform one: label smoothing that also
    applies to mixed-up targets (equal to cross_entropy(..., label_smoothing=smoothing) for one-hot)."""
    if smoothing <= 0:
        return targets
    return targets * (1 - smoothing) + smoothing / targets.shape[1]


def flip_decisions(indices, data_pass, seed, dataset_size):
    """Alternating flips: image i is flipped in pass p iff base_i XOR (p odd), with base_i a fixed fair coin.

    Every image is seen flipped and unflipped in consecutive passes (random flips leave ~25% of images
    in the same orientation twice in a row). Deterministic in (seed, image, pass), so runs resume exactly.
    indices: (B,) int64 dataset indices in [0, dataset_size). Returns (B,) bool.
    """
    base = torch.rand(dataset_size, generator=torch.Generator().manual_seed(int(seed) * 7919 + 17)) < 0.5
    return base[indices.cpu()] ^ bool(data_pass % 2)


class WeightEMA:
    """Exponential moving average of a model's parameters and floating-point buffers.

    ema <- d * ema + (1 - d) * current after every optimizer step, with d warmed up as
    min(decay, (1 + t) / (10 + t)) so early averages are not dominated by the initial weights.
    BatchNorm running statistics are averaged like parameters; integer buffers are copied.
    Registered for checkpointing (state_dict / load_state_dict), so resumed runs continue the average.
    """

    def __init__(self, model, decay):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {name: t.detach().clone() for name, t in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, t in model.state_dict().items():
            shadow = self.shadow[name]
            if t.is_floating_point():
                shadow.mul_(d).add_(t.detach(), alpha=1 - d)
            else:
                shadow.copy_(t)

    def averaged_copy(self, model):
        """A deep copy of `model` holding the averaged weights (the model itself is left alone)."""
        averaged = copy.deepcopy(model)
        averaged.load_state_dict(self.shadow)
        return averaged

    def state_dict(self):
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state):
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        for name, t in state["shadow"].items():
            self.shadow[name].copy_(t)


