"""DCGAN (Radford et al. 2016): transposed-conv generator and strided-conv critic."""
from __future__ import annotations

import torch
from torch import nn

from gantools.errors import UserError
from gantools.nn import FusedLayerNormLeakyReLU, FusedLeakyReLU, load_unfused_layer_norms
from gantools_plugins.architectures._init import ConvArchitecture, dcgan_init


def _grid(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """(levels, base): the side is base * 2**levels with base 4..7 and at least one 2x step, so
    16 px is 4 -> 8 -> 16 and MNIST's 28 px is 7 -> 14 -> 28 (as the DCGANs for MNIST do)."""
    if len(image_shape) != 3:
        raise UserError(f"dcgan needs images (C, H, W), got shape {tuple(image_shape)}; use --arch mlp for points")
    _, height, width = image_shape
    side, levels = height, 0
    while side > 7 and side % 2 == 0:
        side, levels = side // 2, levels + 1
    if height != width or levels < 1 or not 4 <= side <= 7:
        raise UserError(f"dcgan needs square images whose side is 4..7 times a power of two, at least 8 "
                        f"(8, 16, 28, 32, 64, ...), got {height}x{width}")
    return levels, side


def _levels(image_shape: tuple[int, ...]) -> int:
    """Number of 2x resolution steps between the base grid (4x4 to 7x7) and the image size."""
    return _grid(image_shape)[0]


class Generator(nn.Module):
    """z (N, z_dim) -> 4x4 (7x7 for 28 px) -> ... -> (N, C, S, S) in [-1, 1]; BatchNorm + ReLU, tanh output."""

    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], width: int):
        super().__init__()
        levels, base = _grid(image_shape)
        ch = width * 2 ** (levels - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, ch, base, 1, 0, bias=False),  # 1x1 -> base x base
                                   nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]
        for _ in range(levels - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, image_shape[0], 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])  # (N, z_dim, 1, 1) -> (N, C, S, S)


def _critic_activation(norm: str, channels: int) -> list[nn.Module]:
    """[norm,] leaky ReLU 0.2 after a conv without bias; a norm's shift replaces the activation's bias."""
    if norm == "batch":
        return [nn.BatchNorm2d(channels), FusedLeakyReLU(channels, 0.2, bias=False)]
    if norm == "layer":  # GroupNorm(1, C) (over (C, H, W) of each sample) and the activation in one op
        return [FusedLayerNormLeakyReLU(channels, 0.2)]
    return [FusedLeakyReLU(channels, 0.2)]


class Critic(nn.Module):
    """(N, C, S, S) -> (N,) scores: strided 4x4 convs, leaky ReLU 0.2 through the fused op."""

    def __init__(self, image_shape: tuple[int, int, int], width: int, norm: str):
        super().__init__()
        levels, base = _grid(image_shape)
        layers: list[nn.Module] = [nn.Conv2d(image_shape[0], width, 4, 2, 1, bias=False),
                                   FusedLeakyReLU(width, 0.2)]  # no norm on the first layer (DCGAN)
        ch = width
        for _ in range(levels - 1):
            layers.append(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False))
            ch *= 2
            layers += _critic_activation(norm, ch)
        # Checkpoints from before the fused layer norm had GroupNorm and FusedLeakyReLU entries.
        self.features = load_unfused_layer_norms(nn.Sequential(*layers))
        self.head = nn.Conv2d(ch, 1, base, 1, 0)  # base x base -> 1x1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()

    def trunk(self) -> nn.Module:
        """The critic without its output layer: (N, C, S, S) -> (N, features) (the head is a linear map
        of the flattened base x base feature map)."""
        return nn.Sequential(self.features, nn.Flatten())


def _with_dropout(features: nn.Sequential, p: float) -> nn.Sequential:
    """``features`` with nn.Dropout(p) after each activation, i.e. after every hidden layer."""
    layers: list[nn.Module] = []
    for layer in features:
        layers.append(layer)
        if isinstance(layer, (FusedLeakyReLU, FusedLayerNormLeakyReLU)):
            layers.append(nn.Dropout(p))
    return load_unfused_layer_norms(nn.Sequential(*layers))


class DCGAN(ConvArchitecture):
    """DCGAN architecture plugin.

    Args:
        width: channels of the critic's first layer and the generator's last hidden layer;
            they double at each resolution step (64 in the paper).
        norm: critic normalisation: "auto" (BatchNorm, or layer norm when the loss needs
            per-sample scores, e.g. a gradient penalty), "none", "batch" or "layer".
        dropout: probability of nn.Dropout after each hidden activation of the critic (the GAN
            survey's MNIST DCGAN has it); 0 (default) adds none. The encoder trunk has none.
    """

    name = "dcgan"
    penalty_norm = "layer"
    generator_class, critic_class = Generator, Critic
    levels = staticmethod(_levels)
    init = staticmethod(dcgan_init)

    def __init__(self, width: int = 64, norm: str = "auto", dropout: float = 0.0):
        super().__init__(width, norm)
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"dcgan dropout is a probability in [0, 1) (got {dropout})")
        self.dropout = dropout

    def discriminator(self, image_shape: tuple[int, int, int], *, per_sample: bool) -> nn.Module:
        critic = super().discriminator(image_shape, per_sample=per_sample)
        if self.dropout > 0:
            critic.features = _with_dropout(critic.features, self.dropout)
        return critic


architecture = DCGAN
