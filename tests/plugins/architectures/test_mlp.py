"""The mlp architecture: shapes, output range and the data-scale option."""
from __future__ import annotations

import pytest
import torch

from gantools.errors import UserError
from gantools_plugins.architectures.mlp import MLP


def test_points_are_unbounded_images_are_tanh():
    arch = MLP(hidden=8, layers=1)
    g_points, g_images = arch.generator(3, (2,)), arch.generator(3, (1, 4, 4))
    assert not any(isinstance(m, torch.nn.Tanh) for m in g_points.modules())
    images = g_images(torch.randn(5, 3) * 100)
    assert images.shape == (5, 1, 4, 4) and images.abs().max() <= 1


def test_scale_multiplies_generator_output_and_divides_critic_input():
    torch.manual_seed(0)
    unit, scaled = MLP(hidden=8, scale=1.0), MLP(hidden=8, scale=2.5)
    g1, g2 = unit.generator(3, (2,)), scaled.generator(3, (2,))
    g2.load_state_dict(g1.state_dict())
    z = torch.randn(4, 3)
    assert torch.allclose(g2(z), 2.5 * g1(z))
    d1, d2 = unit.discriminator((2,), per_sample=True), scaled.discriminator((2,), per_sample=True)
    d2.load_state_dict(d1.state_dict())
    x = torch.randn(4, 2)
    assert torch.allclose(d2(2.5 * x), d1(x))


@pytest.mark.parametrize("opts", [{"hidden": 0}, {"layers": 0}, {"scale": 0.0}])
def test_bad_options(opts):
    with pytest.raises(UserError):
        MLP(**opts)
