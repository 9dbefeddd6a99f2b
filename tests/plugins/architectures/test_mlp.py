"""The mlp architecture: shapes, output range and the data-scale option."""
from __future__ import annotations

import json

import pytest
import torch

import gantools
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


@pytest.mark.parametrize("opts", [{"hidden": 0}, {"layers": 0}, {"scale": 0.0}, {"g_hidden": -1},
                                  {"d_hidden": -1}])
def test_bad_options(opts):
    with pytest.raises(UserError):
        MLP(**opts)


def _linears(net):
    return [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, torch.nn.Linear)]


def test_generator_and_critic_widths_apart():
    arch = MLP(hidden=32, layers=2, g_hidden=64, d_hidden=16)
    assert _linears(arch.generator(8, (2,))) == [(8, 64), (64, 64), (64, 2)]
    assert _linears(arch.discriminator((2,), per_sample=False)) == [(2, 16), (16, 16), (16, 1)]
    same = MLP(hidden=32, layers=1)
    assert _linears(same.generator(8, (2,))) == [(8, 32), (32, 2)]
    assert _linears(same.discriminator((2,), per_sample=False)) == [(2, 32), (32, 1)]


def test_the_surveys_784_128_1_gan(tmp_path):
    """--arch mlp --arch-opt hidden=128 --arch-opt layers=1 --arch-opt slope=0 on 28 px digits: a
    784-128-1 critic with a ReLU hidden layer whose logit the gan loss reads through a sigmoid."""
    run = gantools.train(out=tmp_path / "r", arch="mlp", arch_opts={"hidden": "128", "layers": "1", "slope": "0"},
                         loss="gan", dataset="digits", image_size=28, z_dim=100, batch_size=8, steps=2,
                         log_every=1)
    assert _linears(run.critic) == [(784, 128), (128, 1)]
    assert _linears(run.generator) == [(100, 128), (128, 784)]
    activation = next(m for m in run.critic.modules() if hasattr(m, "negative_slope"))
    assert activation.negative_slope == 0.0  # ReLU
    assert sum(p.numel() for p in run.critic.parameters()) == 784 * 128 + 128 + 128 + 1
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all(0 < r["d_real_prob"] < 1 for r in rows if "d_loss" in r)  # D(x) = sigmoid(logit)
