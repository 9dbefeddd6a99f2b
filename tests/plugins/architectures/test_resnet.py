"""The resnet architecture: shapes, block layout, per-sample critic, options, training end to end."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import gantools
from gantools.cli import main
from gantools.errors import UserError
from gantools.nn import FusedLayerNormLeakyReLU, FusedLeakyReLU
from gantools_plugins.architectures.resnet import CriticBlock, FirstBlock, ResNet, UpBlock

NORMS = (nn.BatchNorm2d, nn.GroupNorm)


@pytest.mark.parametrize("size", [8, 16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(size, channels):
    torch.manual_seed(0)
    arch = ResNet(width=4)
    g, d = arch.generator(6, (channels, size, size)), arch.discriminator((channels, size, size), per_sample=True)
    x = g(torch.randn(5, 6) * 10)  # large latents push the pre-tanh values far out
    assert x.shape == (5, channels, size, size)
    assert x.abs().max() <= 1 and x.std() > 0.05
    scores = d(x)
    assert scores.shape == (5,) and torch.isfinite(scores).all()
    assert d.features(x).shape == (5, 4, 4, 4)


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_block_counts_follow_the_resolution(size):
    arch = ResNet(width=4)
    shape = (1, size, size)
    g, d = arch.generator(6, shape), arch.discriminator(shape, per_sample=False)
    levels = int(math.log2(size)) - 2
    assert sum(isinstance(m, UpBlock) for m in g.modules()) == levels
    first = [m for m in d.modules() if isinstance(m, FirstBlock)]
    down = [m for m in d.modules() if isinstance(m, CriticBlock) and m.downsample]
    plain = [m for m in d.modules() if isinstance(m, CriticBlock) and not m.downsample]
    assert len(first) == 1 and len(first) + len(down) == levels and len(plain) == 2
    # one activation inside the first block, two per later block, one final
    acts = [m for m in d.modules() if isinstance(m, FusedLeakyReLU)]
    assert len(acts) == 1 + 2 * (len(down) + len(plain)) + 1
    assert all(a.negative_slope == 0.0 for a in acts)
    assert not any(isinstance(m, (nn.ReLU, nn.LeakyReLU)) for m in d.modules())


@pytest.mark.parametrize("norm,per_sample", [("none", True), ("layer", True), ("batch", False)])
def test_activation_bias_replaces_the_conv_bias(norm, per_sample):
    d = ResNet(width=4, norm=norm).discriminator((1, 16, 16), per_sample=per_sample)
    checked = 0
    for seq in (m for m in d.modules() if isinstance(m, nn.Sequential)):
        for i, act in enumerate(seq):
            if not isinstance(act, (FusedLeakyReLU, FusedLayerNormLeakyReLU)):
                continue
            checked += 1
            before = seq[i - 1] if i > 0 else None
            if isinstance(act, FusedLayerNormLeakyReLU):  # layer norm fused in: its shift is the bias
                assert act.bias is not None and getattr(before, "bias", None) is None
            elif isinstance(before, nn.Conv2d):  # the activation's bias replaces the conv's
                assert before.bias is None and act.bias is not None
            else:  # a norm's shift, or the bias in the last conv of the block output it reads
                assert act.bias is None and isinstance(before, (*NORMS, CriticBlock, type(None)))
    assert checked == 1 + 2 * 3 + 1


def test_per_sample_critic_has_no_batchnorm_and_does_not_couple_samples():
    torch.manual_seed(0)
    arch = ResNet(width=4)
    d = arch.discriminator((3, 16, 16), per_sample=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    x = torch.randn(4, 3, 16, 16)
    other = torch.cat([x[:1], torch.randn(3, 3, 16, 16) * 3])
    d.train()
    assert torch.allclose(d(x)[0], d(other)[0], atol=1e-6)
    assert torch.allclose(d(x)[0], d(x[:1])[0], atol=1e-6)
    layer = ResNet(width=4, norm="layer").discriminator((3, 16, 16), per_sample=True)
    assert any(isinstance(m, FusedLayerNormLeakyReLU) for m in layer.modules())
    assert torch.allclose(layer(x)[0], layer(other)[0], atol=1e-6)
    # without a penalty, "auto" picks BatchNorm, which does couple the batch in training mode
    coupled = arch.discriminator((3, 16, 16), per_sample=False)
    assert any(isinstance(m, nn.BatchNorm2d) for m in coupled.modules())
    assert not torch.allclose(coupled(x)[0], coupled(other)[0], atol=1e-4)


def test_bad_options_and_shapes_are_user_errors():
    with pytest.raises(UserError, match="per-sample"):
        ResNet(norm="batch").discriminator((1, 16, 16), per_sample=True)
    for opts in ({"width": 0}, {"width": -3}, {"norm": "instance"}):
        with pytest.raises(UserError):
            ResNet(**opts)
    arch = ResNet(width=4)
    for shape in [(2,), (1, 16, 8), (1, 24, 24), (1, 4, 4), (16, 16)]:
        with pytest.raises(UserError):
            arch.check_shape(shape)
        with pytest.raises(UserError):
            arch.generator(4, shape)
        with pytest.raises(UserError):
            arch.discriminator(shape, per_sample=True)


def test_init_is_he_for_3x3_convs_and_the_shortcut_reorder_is_exact():
    torch.manual_seed(0)
    g = ResNet(width=64).generator(8, (1, 8, 8))
    conv = g.blocks[0].branch[3]
    assert conv.kernel_size == (3, 3)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.05)
    # the shortcut applies conv1x1 before the nearest upsample; that equals upsample then conv
    block = g.blocks[0]
    x = torch.randn(2, 64, 4, 4)
    up_then_conv = block.shortcut[0](nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
    assert torch.allclose(block.shortcut(x), up_then_conv, atol=1e-6)


def test_encoder_trunk():
    trunk, features = ResNet(width=4).encoder_trunk((1, 16, 16))
    assert any(isinstance(m, FusedLayerNormLeakyReLU) for m in trunk.modules())
    assert trunk(torch.randn(2, 1, 16, 16)).shape == (2, features) and features == 4 * 16


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("size", [32, 64])
def test_trains_with_wgan_gp_and_reloads(size, channels_last, tmp_path):
    run = gantools.train(out=tmp_path / "r", arch="resnet", loss="wgan-gp", dataset="digits", image_size=size,
                         arch_opts={"width": 8}, z_dim=8, batch_size=8, steps=3, n_critic=1, log_every=1,
                         checkpoint_every=3, sample_every=3, channels_last=channels_last)
    assert run.status == "finished"
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert all(math.isfinite(row[k]) for k in ("d_loss", "g_loss", "wasserstein", "penalty"))
    loaded = gantools.load_run(tmp_path / "r")
    assert loaded.memory_format == run.memory_format
    samples = loaded.sample(3, seed=0)
    assert samples.shape == (3, 1, size, size) and samples.abs().max() <= 1
    # Exact: the reloaded networks are the trained ones in the same layout on the same machine, so
    # the same kernels sum in the same order (another layout differs in the last bits).
    assert torch.equal(samples, run.sample(3, seed=0))


def test_cli_run(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--arch", "resnet", "--loss", "wgan-gp", "--image-size", "32", "--arch-opt", "width=8",
              "--steps", "2", "--batch-size", "4", "--z-dim", "8", "--out", str(tmp_path / "c"), "--no-progress"])
    assert exit_info.value.code == 0
    assert (tmp_path / "c" / "checkpoints" / "latest.pt").exists()


def test_checkpoints_of_the_unfused_layer_norm_blocks_load():
    # Before the fused op, a block's branch had nn.GroupNorm and FusedLeakyReLU entries.
    torch.manual_seed(0)
    old_branch = nn.Sequential(nn.GroupNorm(1, 4), FusedLeakyReLU(4, 0.0, bias=False), nn.Conv2d(4, 4, 3, 1, 1, bias=False),
                               nn.GroupNorm(1, 4), FusedLeakyReLU(4, 0.0, bias=False), nn.Conv2d(4, 4, 3, 1, 1),
                               nn.AvgPool2d(2))
    for parameter in old_branch.parameters():
        nn.init.normal_(parameter, 0.5, 0.5)
    block = CriticBlock(4, "layer", downsample=True)
    block.load_state_dict({**{f"branch.{k}": v for k, v in old_branch.state_dict().items()},
                           **{f"shortcut.{k}": v for k, v in block.shortcut.state_dict().items()}})
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block.branch(x), old_branch(x))
