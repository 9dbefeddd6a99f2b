"""conv28: exactly the study's MNIST GAN (tables 2.2 and 2.3), 28 x 28 images only."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import gantools
from gantools import inversion
from gantools.errors import UserError
from gantools.nn import FusedLeakyReLU
from gantools_plugins.architectures.conv28 import Conv28

# (layer, output shape per sample) as the tables list them; a fused activation is the table's
# leaky ReLU with the preceding layer's bias.
CRITIC_TABLE = [
    ("conv 32 5x5 s1", (32, 24, 24)), ("leaky 0.01", (32, 24, 24)), ("maxpool 2 s2", (32, 12, 12)),
    ("conv 64 5x5 s1", (64, 8, 8)), ("leaky 0.01", (64, 8, 8)), ("maxpool 2 s2", (64, 4, 4)),
    ("flatten", (1024,)), ("fc 1024", (1024,)), ("leaky 0.01", (1024,)), ("fc 1", (1,)),
]
GENERATOR_TABLE = [
    ("fc 1024", (1024,)), ("relu", (1024,)), ("bn1d", (1024,)),
    ("fc 6272", (6272,)), ("relu", (6272,)), ("bn1d", (6272,)),
    ("convT 64 4x4 s2 p1", (64, 14, 14)), ("relu", (64, 14, 14)), ("bn2d", (64, 14, 14)),
    ("convT 1 4x4 s2 p1", (1, 28, 28)), ("tanh", (1, 28, 28)),
]


def _describe(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d):
        return f"conv {m.out_channels} {m.kernel_size[0]}x{m.kernel_size[1]} s{m.stride[0]}"
    if isinstance(m, nn.ConvTranspose2d):
        return f"convT {m.out_channels} {m.kernel_size[0]}x{m.kernel_size[1]} s{m.stride[0]} p{m.padding[0]}"
    if isinstance(m, nn.Linear):
        return f"fc {m.out_features}"
    if isinstance(m, FusedLeakyReLU):
        return f"leaky {m.negative_slope}"
    if isinstance(m, nn.MaxPool2d):
        return f"maxpool {m.kernel_size} s{m.stride}"
    names = {nn.Flatten: "flatten", nn.ReLU: "relu", nn.BatchNorm1d: "bn1d", nn.BatchNorm2d: "bn2d", nn.Tanh: "tanh"}
    return names[type(m)]


def _trace(layers, x):
    """[(description, per-sample output shape)] running x through ``layers`` one by one."""
    out = []
    for layer in layers:
        x = x.view(-1, 128, 7, 7) if isinstance(layer, nn.ConvTranspose2d) and x.dim() == 2 else x
        x = layer(x)
        out.append((_describe(layer), tuple(x.shape[1:])))
    return out


def test_critic_layers_and_shapes_are_the_table():
    critic = Conv28().discriminator((1, 28, 28), per_sample=False)
    assert _trace([*critic.features, *critic.head], torch.randn(2, 1, 28, 28)) == CRITIC_TABLE
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)) for m in critic.modules())
    conv = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.padding == (0, 0) for m in conv)  # 28 -> 24 -> 12 -> 8 -> 4: no padding


def test_generator_layers_and_shapes_are_the_table():
    g = Conv28().generator(96, (1, 28, 28))
    assert _trace([*g.fc, *g.conv], torch.rand(3, 96) * 2 - 1) == GENERATOR_TABLE
    x = g(torch.rand(3, 96) * 2 - 1)
    assert x.shape == (3, 1, 28, 28) and x.abs().max() <= 1


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_follow_from_the_tables():
    critic = (1 * 32 * 5 * 5 + 32) + (32 * 64 * 5 * 5 + 64) + (1024 * 1024 + 1024) + (1024 + 1)
    generator = ((96 * 1024 + 1024) + 2 * 1024 + (1024 * 6272 + 6272) + 2 * 6272
                 + (128 * 64 * 4 * 4 + 64) + 2 * 64 + (64 * 1 * 4 * 4 + 1))
    assert critic == 1_102_721 and generator == 6_675_009
    arch = Conv28()
    assert _count(arch.discriminator((1, 28, 28), per_sample=True)) == critic
    assert _count(arch.generator(96, (1, 28, 28))) == generator


def test_any_channel_count_at_28_px():
    arch = Conv28()
    g, d = arch.generator(8, (3, 28, 28)), arch.discriminator((3, 28, 28), per_sample=True)
    assert d(g(torch.randn(2, 8))).shape == (2,)


@pytest.mark.parametrize("shape", [(1, 32, 32), (1, 16, 16), (1, 28, 32), (2,), (28, 28)])
def test_other_shapes_are_refused(shape):
    arch = Conv28()
    with pytest.raises(UserError, match=r"conv28 needs 28 x 28 images"):
        arch.check_shape(shape)
    with pytest.raises(UserError, match=r"conv28 needs 28 x 28 images"):
        arch.discriminator(shape, per_sample=False)


def test_encoder_trunk_is_the_conv_part_with_fresh_weights():
    arch = Conv28()
    critic = arch.discriminator((1, 28, 28), per_sample=False)
    trunk, features = arch.encoder_trunk((1, 28, 28))
    assert features == math.prod((64, 4, 4)) and trunk(torch.randn(2, 1, 28, 28)).shape == (2, features)
    assert [_describe(m) for m in trunk[0]] == [_describe(m) for m in critic.features]
    assert not torch.equal(trunk[0][0].weight, critic.features[0].weight)


def test_short_training_run_with_the_recipe_and_an_encoder_fit(tmp_path):
    run = gantools.train(out=tmp_path / "r", arch="conv28", loss="gan", dataset="digits", image_size=28,
                         prior="uniform", z_dim=96, lr=1e-3, betas=(0.5, 0.999), batch_size=8, steps=3,
                         log_every=1)
    rows = [r for r in _rows(tmp_path / "r") if "d_loss" in r]
    assert len(rows) == 3 and all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in rows)
    assert run.sample(2, seed=0).shape == (2, 1, 28, 28)
    inversion.fit(run, "encoder", {"width_scale": 0.0625, "batch_size": 4}, steps=2)
    z = inversion.load(run, "encoder").encode(run.sample(2, seed=1))
    assert z.shape == (2, 96) and torch.isfinite(z).all()


def _rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_the_critics_trunk_is_the_critic_up_to_its_last_fc():
    critic = Conv28().discriminator((1, 28, 28), per_sample=True)
    x = torch.randn(3, 1, 28, 28)
    features = critic.trunk()(x)
    assert features.shape == (3, 1024)
    torch.testing.assert_close(critic.head[-1](features).flatten(), critic(x))
    assert critic.trunk()[0] is critic.features  # the trained weights, not a copy
