"""Model helpers: the generator's weight average and the latent prior."""
from __future__ import annotations

import pytest
import torch

from gantools.models import ema_decay, sample_prior, update_ema


def test_ema_decay_warms_up_then_caps():
    assert ema_decay(0.999, 0) == pytest.approx(0.1)
    assert ema_decay(0.999, 90) == pytest.approx(0.91)
    assert ema_decay(0.999, 10**6) == 0.999
    assert ema_decay(0.5, 100) == 0.5


def test_update_ema_interpolates_parameters_and_copies_buffers():
    model, ema = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        model.weight.fill_(2.0)
        ema.weight.fill_(0.0)
        model.running_mean.fill_(5.0)
    update_ema(ema, model, 0.75)
    assert torch.allclose(ema.weight, torch.full((3,), 0.5))
    assert torch.equal(ema.running_mean, model.running_mean)


def test_priors():
    torch.manual_seed(0)
    uniform = sample_prior(10000, 3, "uniform", torch.device("cpu"))
    assert uniform.min() >= -1 and uniform.max() <= 1 and uniform.mean().abs() < 0.03
    normal = sample_prior(10000, 3, "normal", torch.device("cpu"))
    assert normal.std().item() == pytest.approx(1.0, abs=0.03)
