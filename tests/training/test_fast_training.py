"""The short-schedule tricks and CPU speed-ups of mimo_hf/training/fast_training.py, and their presets."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mimo_hf.training.fast_training import (
    PRESETS,
    WeightEMA,
    flip_decisions,
    make_scheduler,
    set_batchnorm_momentum,
    smooth_targets,
    tune_cpu_allocator,
)
from mimo_hf.training.recipes import MIMOConvRecipe


def _lrs(kind, total=100, pct=0.25, momentum=0.9):
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=123.0, momentum=momentum)
    scheduler = make_scheduler(optimizer, kind, 0.2, total, pct, momentum)
    lrs, moms = [], []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        moms.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        scheduler.step()
    return lrs, moms


def test_triangular_schedule_rises_linearly_to_the_peak_then_falls_to_zero():
    lrs, moms = _lrs("triangular")
    assert lrs[0] == pytest.approx(0.2 / 25)
    assert max(lrs) == pytest.approx(0.2) and lrs.index(max(lrs)) == 25
    assert all(b > a for a, b in zip(lrs[:25], lrs[1:26]))
    assert all(b < a for a, b in zip(lrs[25:], lrs[26:]))
    assert lrs[-1] == pytest.approx(0.2 / 75)  # one step before the end: (100 - 99) / 75 of the peak
    assert set(moms) == {0.9}  # constant momentum


def test_onecycle_schedule_cycles_momentum_up_to_the_given_value():
    lrs, moms = _lrs("onecycle", pct=0.3, momentum=0.95)
    assert max(lrs) == pytest.approx(0.2, rel=1e-3)
    assert max(moms) == pytest.approx(0.95) and min(moms) == pytest.approx(0.85, abs=1e-3)


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="'onecycle', 'triangular'"):
        make_scheduler(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1), "cosine", 0.1, 10, 0.2, 0.9)


def test_smoothed_targets_give_torchs_label_smoothing_loss():
    logits = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1])
    targets = smooth_targets(F.one_hot(labels, 5).float(), 0.2)
    torch.testing.assert_close(targets.sum(1), torch.ones(7))
    torch.testing.assert_close(F.cross_entropy(logits, targets), F.cross_entropy(logits, labels, label_smoothing=0.2))
    assert smooth_targets(targets, 0.0) is targets


def test_alternating_flips_alternate_per_image_and_do_not_depend_on_the_batch():
    everything = torch.arange(1000)
    first, second = flip_decisions(everything, 0, seed=3, dataset_size=1000), flip_decisions(everything, 1, 3, 1000)
    assert torch.equal(first, ~second)  # every image changes orientation between consecutive passes
    assert torch.equal(first, flip_decisions(everything, 2, 3, 1000))
    assert 400 < int(first.sum()) < 600  # a fair coin per image
    some = torch.tensor([999, 5, 17])
    assert torch.equal(flip_decisions(some, 0, 3, 1000), first[some])
    assert not torch.equal(first, flip_decisions(everything, 0, seed=4, dataset_size=1000))


def test_weight_ema_follows_the_formula_and_round_trips():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = WeightEMA(model, decay=0.9)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model.train()(torch.randn(4, 3))  # moves the BN running statistics and its counter
    ema.update(model)
    d = min(0.9, 2 / 11)
    torch.testing.assert_close(ema.shadow["0.weight"], d * start["0.weight"] + (1 - d) * model[0].weight)
    assert int(ema.shadow["1.num_batches_tracked"]) == 1  # integer buffers are copied
    averaged = ema.averaged_copy(model)
    torch.testing.assert_close(averaged[0].weight, ema.shadow["0.weight"])
    assert not torch.equal(model[0].weight, averaged[0].weight)  # the model itself is untouched

    other = WeightEMA(model, decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.9 and other.updates == 1
    torch.testing.assert_close(other.shadow["0.weight"], ema.shadow["0.weight"])
    with pytest.raises(ValueError, match="decay"):
        WeightEMA(model, 1.0)


def test_batchnorm_momentum_is_set_everywhere():
    model = nn.Sequential(nn.BatchNorm2d(3), nn.Sequential(nn.BatchNorm1d(2)))
    set_batchnorm_momentum(model, 0.4)
    assert [m.momentum for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] == [0.4, 0.4]


def test_presets_fill_only_unset_flags():
    paper = MIMOConvRecipe.from_flags(["--output-dir", "x"])
    assert paper.preset == "paper" and paper.lr_schedule == "onecycle" and paper.mixup_alpha == 1.0
    fast = MIMOConvRecipe.from_flags(["--output-dir", "x", "--preset", "fast", "--label-smoothing", "0.1", "--no-nesterov"])
    for key, value in PRESETS["fast"].items():
        expected = {"label_smoothing": 0.1, "nesterov": False}.get(key, value)
        assert getattr(fast, key) == expected, key


def test_cpu_allocator_tuning_is_harmless():
    tune_cpu_allocator()  # True on glibc Linux; either way memory keeps working
    x = torch.ones(8 << 20)
    del x
    assert float(torch.ones(8 << 20).sum()) == 8 << 20
