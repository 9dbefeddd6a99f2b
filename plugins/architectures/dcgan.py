"""DCGAN (Radford et al. 2016): transposed-conv generator and strided-conv critic."""
from __future__ import annotations

import torch
from torch import nn

from gantools.nn import FusedLeakyReLU
from gantools_plugins.architectures._init import ConvArchitecture, dcgan_init, square_levels


def _levels(image_shape: tuple[int, ...]) -> int:
    """Number of 2x resolution steps between 4x4 and the image size."""
    return square_levels("dcgan", image_shape)


class Generator(nn.Module):
    """z (N, z_dim) -> 4x4 -> ... -> (N, C, S, S) in [-1, 1]; BatchNorm + ReLU, tanh output."""

    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], width: int):
        super().__init__()
        levels = _levels(image_shape)
        ch = width * 2 ** (levels - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, ch, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]
        for _ in range(levels - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, image_shape[0], 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])  # (N, z_dim, 1, 1) -> (N, C, S, S)


def _critic_norm(kind: str, channels: int) -> nn.Module | None:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # normalises over (C, H, W) of each sample
    return None


class Critic(nn.Module):
    """(N, C, S, S) -> (N,) scores: strided 4x4 convs, leaky ReLU 0.2 through the fused op."""

    def __init__(self, image_shape: tuple[int, int, int], width: int, norm: str):
        super().__init__()
        levels = _levels(image_shape)
        layers: list[nn.Module] = [nn.Conv2d(image_shape[0], width, 4, 2, 1, bias=False),
                                   FusedLeakyReLU(width, 0.2)]  # no norm on the first layer (DCGAN)
        ch = width
        for _ in range(levels - 1):
            layers.append(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False))
            ch *= 2
            norm_layer = _critic_norm(norm, ch)
            if norm_layer is not None:  # the norm's shift replaces the activation's bias
                layers += [norm_layer, FusedLeakyReLU(ch, 0.2, bias=False)]
            else:
                layers.append(FusedLeakyReLU(ch, 0.2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, 1, 4, 1, 0)  # 4x4 -> 1x1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()


class DCGAN(ConvArchitecture):
    """DCGAN architecture plugin.

    Args:
        width: channels of the critic's first layer and the generator's last hidden layer;
            they double at each resolution step (64 in the paper).
        norm: critic normalisation: "auto" (BatchNorm, or layer norm when the loss needs
            per-sample scores, e.g. a gradient penalty), "none", "batch" or "layer".
    """

    name = "dcgan"
    penalty_norm = "layer"
    generator_class, critic_class = Generator, Critic
    levels = staticmethod(_levels)
    init = staticmethod(dcgan_init)


architecture = DCGAN
