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
