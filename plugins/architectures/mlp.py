"""Multi-layer perceptrons for 2-D toy data and small flat images."""
from __future__ import annotations

import math

import torch
from torch import nn

from gantools.errors import UserError
from gantools.nn import FusedLeakyReLU


class Generator(nn.Module):
    """z (N, z_dim) -> (N, *shape); tanh output for images, linear for points."""

    def __init__(self, z_dim: int, shape: tuple[int, ...], hidden: int, layers: int, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        blocks: list[nn.Module] = []
        width = z_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        blocks.append(nn.Linear(width, math.prod(shape)))
        if len(shape) > 1:
            blocks.append(nn.Tanh())
        self.net = nn.Sequential(*blocks)
        self.shape = tuple(shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.shape) * self.scale


class Critic(nn.Module):
    """(N, *shape) -> (N,) scores; hidden activations through the fused bias + leaky ReLU."""

    def __init__(self, shape: tuple[int, ...], hidden: int, layers: int, slope: float, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        blocks: list[nn.Module] = []
        width = math.prod(shape)
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden, bias=False), FusedLeakyReLU(hidden, slope)]
            width = hidden
        blocks.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1) / self.scale).flatten()


class Trunk(nn.Module):
    """A critic without its output layer: (N, *shape) -> (N, hidden)."""

    def __init__(self, critic: Critic):
        super().__init__()
        self.scale, self.net = critic.scale, critic.net[:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1) / self.scale)


class MLP:
    """MLP architecture plugin (PyTorch's default init; no normalisation, so any loss fits).

    Args:
        hidden: units per hidden layer.
        layers: hidden layers in each network.
        g_hidden, d_hidden: the generator's / the critic's units per hidden layer instead of
            ``hidden`` (0: ``hidden``).
        slope: the critic's leaky ReLU slope (0 gives ReLU, as in the WGAN-GP toy code).
        scale: data units per network unit: the generator's output is multiplied by it and the
            critic's input divided by it, so points far from [-1, 1] (the 25-gaussian grid spans
            +-4) are learnt at unit scale, like the WGAN-GP toy code's division of the data by 2.828.
    """

    def __init__(self, hidden: int = 256, layers: int = 3, slope: float = 0.2, scale: float = 1.0,
                 g_hidden: int = 0, d_hidden: int = 0):
        if hidden < 1 or layers < 1 or scale <= 0:
            raise UserError(f"mlp needs hidden >= 1, layers >= 1 and scale > 0 (got {hidden}, {layers}, {scale})")
        if g_hidden < 0 or d_hidden < 0:
            raise UserError(f"mlp g_hidden and d_hidden must be >= 0, 0 meaning hidden (got {g_hidden}, {d_hidden})")
        self.hidden, self.layers, self.slope, self.scale = hidden, layers, slope, scale
        self.g_hidden, self.d_hidden = g_hidden or hidden, d_hidden or hidden

    def check_shape(self, image_shape: tuple[int, ...]) -> None:
        if math.prod(image_shape) > 64 * 64 * 3:
            raise UserError(f"mlp is meant for points and small images; {tuple(image_shape)} is too large")

    def generator(self, z_dim: int, image_shape: tuple[int, ...]) -> nn.Module:
        return Generator(z_dim, image_shape, self.g_hidden, self.layers, self.scale)

    def discriminator(self, image_shape: tuple[int, ...], *, per_sample: bool) -> nn.Module:
        return Critic(image_shape, self.d_hidden, self.layers, self.slope, self.scale)

    def encoder_trunk(self, image_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
        """The critic's hidden layers with fresh weights, for encoders: (N, *shape) -> (N, d_hidden)."""
        return self.critic_trunk(image_shape, per_sample=True)

    def critic_trunk(self, image_shape: tuple[int, ...], *, per_sample: bool) -> tuple[nn.Module, int]:
        """The critic (fresh weights) without its output layer, and its width d_hidden."""
        return Trunk(self.discriminator(image_shape, per_sample=per_sample)), self.d_hidden


architecture = MLP
