"""dcgan's dropout option: nn.Dropout after each hidden activation of the critic, nowhere else."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gantools.errors import UserError
from gantools_plugins.architectures.dcgan import DCGAN


@pytest.mark.parametrize("norm,per_sample", [("auto", False), ("auto", True), ("none", True), ("layer", True)])
def test_dropout_follows_every_hidden_activation(norm, per_sample):
    critic = DCGAN(width=4, norm=norm, dropout=0.3).discriminator((1, 28, 28), per_sample=per_sample)
    layers = list(critic.features)
    # Activations are the leaky ReLUs, alone or fused with the norm before them.
    activations = [i for i, m in enumerate(layers) if hasattr(m, "negative_slope")]
    assert len(activations) == 2  # 28 px: 28 -> 14 -> 7, then the 7x7 head
    assert all(isinstance(layers[i + 1], nn.Dropout) and layers[i + 1].p == 0.3 for i in activations)
    assert sum(isinstance(m, nn.Dropout) for m in critic.modules()) == 2


def test_no_dropout_by_default_and_none_in_the_encoder_trunk():
    arch = DCGAN(width=4)
    assert not any(isinstance(m, nn.Dropout) for m in arch.discriminator((1, 16, 16), per_sample=False).modules())
    trunk, _ = DCGAN(width=4, dropout=0.5).encoder_trunk((1, 16, 16))
    assert not any(isinstance(m, nn.Dropout) for m in trunk.modules())


def test_dropout_is_active_in_training_and_off_in_eval():
    torch.manual_seed(0)
    critic = DCGAN(width=4, norm="none", dropout=0.5).discriminator((1, 16, 16), per_sample=True)
    x = torch.randn(3, 1, 16, 16)
    critic.train()
    assert not torch.equal(critic(x), critic(x))
    critic.eval()
    assert torch.equal(critic(x), critic(x))


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_dropout_outside_0_1_is_refused(p):
    with pytest.raises(UserError, match="dcgan dropout is a probability"):
        DCGAN(dropout=p)
