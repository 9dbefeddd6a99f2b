"""wgan-gp's lazy penalty: every k-th critic step, with weight * k."""
from __future__ import annotations

import pytest
import torch

from gantools.errors import UserError
from gantools_plugins.losses.wgan_gp import WGANGP


def critic_and_batches():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    return critic, torch.randn(8, 2), torch.randn(8, 2)


def test_lazy_penalty_every_other_step_with_doubled_weight():
    critic, real, fake = critic_and_batches()
    torch.manual_seed(3)
    _, every = WGANGP(weight=10.0).discriminator_loss(critic, real, fake)
    lazy = WGANGP(weight=10.0, lazy=2)
    torch.manual_seed(3)  # the same interpolation weights
    loss, logs = lazy.discriminator_loss(critic, real, fake)
    torch.testing.assert_close(logs["penalty"], 2 * every["penalty"])
    torch.testing.assert_close(loss, -logs["wasserstein"] + logs["penalty"])
    loss, logs = lazy.discriminator_loss(critic, real, fake)  # the skipped step: no penalty at all
    assert "penalty" not in logs
    torch.testing.assert_close(loss.detach(), -logs["wasserstein"])
    assert "penalty" in lazy.discriminator_loss(critic, real, fake)[1]
    assert lazy.state_dict() == {"calls": 3}


def test_lazy_phase_round_trips():
    loss = WGANGP(lazy=3)
    loss.load_state_dict({"calls": 4})
    critic, real, fake = critic_and_batches()
    assert "penalty" not in loss.discriminator_loss(critic, real, fake)[1]  # call 4 of every 3rd
    assert "penalty" not in loss.discriminator_loss(critic, real, fake)[1]
    assert "penalty" in loss.discriminator_loss(critic, real, fake)[1]  # call 6


def test_lazy_must_be_positive():
    with pytest.raises(UserError, match="lazy must be at least 1"):
        WGANGP(lazy=0)
