"""The dcgan architecture: a trained run reloads to the same networks in the same memory layout."""
from __future__ import annotations

import pytest
import torch

import gantools


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
