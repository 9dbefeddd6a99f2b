"""The small MNIST GAN of the GAN-theory study (its tables 2.2 and 2.3): 28 x 28 images only."""
from __future__ import annotations

import torch
from torch import nn

from gantools.errors import UserError
from gantools.nn import FusedLeakyReLU

SIDE = 28
SLOPE = 0.01  # the study's leaky ReLU slope (alpha = 0.01)


def conv_trunk(channels: int) -> nn.Sequential:
    """The critic's convolutional part: (N, C, 28, 28) -> (N, 64, 4, 4), unpadded 5x5 convs and
    2x2 max pools, 28 -> 24 -> 12 -> 8 -> 4. Convs have no bias: the fused activation adds it."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, 5, 1, 0, bias=False), FusedLeakyReLU(32, SLOPE),  # (N, 32, 24, 24)
        nn.MaxPool2d(2, 2),  # (N, 32, 12, 12)
        nn.Conv2d(32, 64, 5, 1, 0, bias=False), FusedLeakyReLU(64, SLOPE),  # (N, 64, 8, 8)
        nn.MaxPool2d(2, 2),  # (N, 64, 4, 4)
    )


class Critic(nn.Module):
    """(N, C, 28, 28) -> (N,) logits: conv trunk, flatten, FC 4*4*64, leaky ReLU 0.01, FC 1."""

    def __init__(self, channels: int):
        super().__init__()
        self.features = conv_trunk(channels)
        self.head = nn.Sequential(
            nn.Flatten(),  # (N, 64 * 4 * 4)
            nn.Linear(4 * 4 * 64, 4 * 4 * 64, bias=False), FusedLeakyReLU(4 * 4 * 64, SLOPE),
            nn.Linear(4 * 4 * 64, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()

    def trunk(self) -> nn.Module:
        """The critic without its last FC (these weights): (N, C, 28, 28) -> (N, 1024)."""
        return nn.Sequential(self.features, self.head[:-1])


class Generator(nn.Module):
    """z (N, z_dim) -> (N, C, 28, 28) in [-1, 1]: FC 1024 and FC 7*7*128, each ReLU then BatchNorm
    (the study's order), reshape to 128 x 7 x 7, two 4x4 stride-2 transposed convs (7 -> 14 -> 28)."""

    def __init__(self, z_dim: int, channels: int):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(z_dim, 1024), nn.ReLU(inplace=True), nn.BatchNorm1d(1024),
            nn.Linear(1024, 7 * 7 * 128), nn.ReLU(inplace=True), nn.BatchNorm1d(7 * 7 * 128),
        )
        self.conv = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(inplace=True), nn.BatchNorm2d(64),  # (N, 64, 14, 14)
            nn.ConvTranspose2d(64, channels, 4, 2, 1), nn.Tanh(),  # (N, C, 28, 28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv(self.fc(z).view(-1, 128, 7, 7))  # (N, 7 * 7 * 128) -> (N, 128, 7, 7)


class Conv28:
    """conv28 architecture plugin: the study's MNIST DCGAN, exactly as its tables give it.

    No options. Weights start from PyTorch's default initialisation (the tables name none); the
    critic has no normalisation, so every loss fits, gradient penalties included. The study's
    recipe (uniform prior in [-1, 1], z_dim 96, Adam lr 1e-3, betas (0.5, 0.999), one critic step)
    is a command line (see the README), not a default: an architecture cannot set run settings.
    """

    def check_shape(self, image_shape: tuple[int, ...]) -> None:
        if len(image_shape) != 3 or tuple(image_shape[1:]) != (SIDE, SIDE):
            raise UserError(f"conv28 needs 28 x 28 images (C, 28, 28), got shape {tuple(image_shape)}; "
                            f"use --image-size 28 (MNIST's own size), or --arch dcgan for other sizes")

    def generator(self, z_dim: int, image_shape: tuple[int, ...]) -> nn.Module:
        self.check_shape(image_shape)
        return Generator(z_dim, image_shape[0])

    def discriminator(self, image_shape: tuple[int, ...], *, per_sample: bool) -> nn.Module:
        self.check_shape(image_shape)  # no normalisation in the critic: per_sample changes nothing
        return Critic(image_shape[0])

    def critic_trunk(self, image_shape: tuple[int, ...], *, per_sample: bool) -> tuple[nn.Module, int]:
        """The critic (fresh weights) without its last FC: (N, C, 28, 28) -> (N, 1024)."""
        return self.discriminator(image_shape, per_sample=per_sample).trunk(), 4 * 4 * 64

    def encoder_trunk(self, image_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
        """The critic's conv part with fresh weights, flattened: (N, C, 28, 28) -> (N, 1024)."""
        self.check_shape(image_shape)
        return nn.Sequential(conv_trunk(image_shape[0]), nn.Flatten()), 4 * 4 * 64


architecture = Conv28
