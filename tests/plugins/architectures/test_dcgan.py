"""The dcgan architecture: a trained run reloads to the same networks in the same memory layout; older
layer-norm checkpoints load."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import gantools
from gantools.nn import FusedLayerNormLeakyReLU, FusedLeakyReLU


@pytest.mark.parametrize("channels_last", [True, False])
def test_reloaded_run_samples_exactly_what_the_trained_run_samples(channels_last, tmp_path):
    run = gantools.train(out=tmp_path / "r", arch="dcgan", loss="wgan-gp", dataset="digits", image_size=16,
                         arch_opts={"width": 8}, z_dim=8, batch_size=8, steps=2, n_critic=1, ema=0.9,
                         channels_last=channels_last)
    loaded = gantools.load_run(tmp_path / "r")
    want = torch.channels_last if channels_last else torch.preserve_format
    assert run.memory_format == loaded.memory_format == want
    conv = next(m for m in loaded.critic.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) == channels_last
    # Exact: the same weights in the same layout run the same kernels on this machine.
    assert torch.equal(loaded.sample(5, seed=1), run.sample(5, seed=1))
    x = loaded.sample(4, seed=2)
    with torch.no_grad():  # the wgan-gp critic has no batch norm or dropout: train and eval mode agree
        assert torch.equal(loaded.critic(x), run.critic(x))


@pytest.mark.parametrize("side,base,levels", [(8, 4, 1), (16, 4, 2), (28, 7, 2), (24, 6, 2), (64, 4, 4)])
def test_sides_are_a_base_of_4_to_7_doubled(side, base, levels):
    from gantools_plugins.architectures.dcgan import DCGAN, _grid

    assert _grid((1, side, side)) == (levels, base)
    arch = DCGAN(width=4)
    g, d = arch.generator(6, (1, side, side)), arch.discriminator((1, side, side), per_sample=True)
    x = g(torch.randn(2, 6))
    assert x.shape == (2, 1, side, side) and d(x).shape == (2,)
    assert d.features(x).shape[-1] == base  # the head reads the base grid (7x7 for MNIST's 28 px)


@pytest.mark.parametrize("side", [4, 9, 30, 36, 112 * 3])
def test_other_sides_are_refused(side):
    from gantools.errors import UserError
    from gantools_plugins.architectures.dcgan import DCGAN

    with pytest.raises(UserError, match="4..7 times a power of two"):
        DCGAN().check_shape((1, side, side))


def _unfused_critic(width: int) -> tuple[nn.Sequential, nn.Conv2d]:
    """The 16 px layer-norm critic as it was before the norm was fused into its activation."""
    features = nn.Sequential(nn.Conv2d(1, width, 4, 2, 1, bias=False), FusedLeakyReLU(width, 0.2),
                             nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.GroupNorm(1, 2 * width),
                             FusedLeakyReLU(2 * width, 0.2, bias=False))
    for parameter in features.parameters():
        nn.init.normal_(parameter, 0.5, 0.5)
    return features, nn.Conv2d(2 * width, 1, 4, 1, 0)


def test_checkpoints_of_the_unfused_layer_norm_critic_load():
    from gantools_plugins.architectures.dcgan import DCGAN

    torch.manual_seed(0)
    features, head = _unfused_critic(4)
    old = {**{f"features.{k}": v for k, v in features.state_dict().items()},
           **{f"head.{k}": v for k, v in head.state_dict().items()}}
    arch = DCGAN(width=4, norm="layer")
    critic = arch.discriminator((1, 16, 16), per_sample=True)
    critic.load_state_dict(old)
    assert any(isinstance(m, FusedLayerNormLeakyReLU) for m in critic.modules())
    x = torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(critic(x), head(features(x)).flatten())
    # The encoder trunk (inverter files) is the same Sequential under another prefix.
    trunk, _ = arch.encoder_trunk((1, 16, 16))
    trunk.load_state_dict({f"0.{k}": v for k, v in features.state_dict().items()})
    with torch.no_grad():
        torch.testing.assert_close(trunk(x), features(x).flatten(1))
