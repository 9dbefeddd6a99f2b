"""ResNet (Gulrajani et al. 2017, WGAN-GP): pre-activation residual generator and critic."""
from __future__ import annotations

import torch
from torch import nn

from gantools.nn import FusedLayerNormLeakyReLU, FusedLeakyReLU, load_unfused_layer_norms
from gantools_plugins.architectures._init import ConvArchitecture, square_levels

PLAIN_BLOCKS = 2  # unresampled critic blocks at 4x4, as the paper's CIFAR-10 critic has two


def _levels(image_shape: tuple[int, ...]) -> int:
    """Number of 2x resolution steps between 4x4 and the image size."""
    return square_levels("resnet", image_shape)


def resnet_init(module: nn.Module) -> None:
    """He init for the 3x3 convs (each feeds a ReLU), Glorot for 1x1 shortcuts and linear layers.

    This is the paper's implementation's choice. DCGAN's fixed N(0, 0.02) does not suit a
    residual net: a 3x3 conv of width 8 has fan-in 72, so a std of 0.02 shrinks every branch's
    signal about eightfold and un-normalised critics start with vanishing scores and gradients.
    """
    if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    elif isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, FusedLayerNormLeakyReLU)):
        nn.init.ones_(module.weight)
    if (isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.GroupNorm, FusedLayerNormLeakyReLU))
            and module.bias is not None):
        nn.init.zeros_(module.bias)


def _conv3(c_in: int, c_out: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)


class UpBlock(nn.Module):
    """(N, W, s, s) -> (N, W, 2s, 2s): BN-ReLU-up-conv-BN-ReLU-conv plus an upsampled 1x1 shortcut."""

    def __init__(self, channels: int):
        super().__init__()
        # One bias per residual sum, on the branch's last conv; convs feeding a BatchNorm have none.
        self.branch = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                    nn.Upsample(scale_factor=2, mode="nearest"),
                                    _conv3(channels, channels, bias=False),
                                    nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                    _conv3(channels, channels, bias=True))
        # conv1x1 then upsample equals upsample then conv1x1 (nearest copies pixels), at 1/4 the cost.
        self.shortcut = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False),
                                      nn.Upsample(scale_factor=2, mode="nearest"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.branch(x)


class Generator(nn.Module):
    """z (N, z_dim) -> 4x4xW -> UpBlocks -> BN-ReLU-conv3x3 -> (N, C, S, S) in [-1, 1]."""

    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], width: int):
        super().__init__()
        levels = _levels(image_shape)
        self.width = width
        self.fc = nn.Linear(z_dim, 4 * 4 * width)
        self.blocks = nn.Sequential(*(UpBlock(width) for _ in range(levels)))
        self.to_image = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                      _conv3(width, image_shape[0], bias=True), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, self.width, 4, 4)  # (N, W, 4, 4)
        return self.to_image(self.blocks(x))  # (N, C, S, S)


def _activation(norm: str, channels: int, bias: bool) -> list[nn.Module]:
    """[norm,] ReLU through the fused ops; a norm's shift replaces the activation's bias."""
    if norm == "batch":
        return [nn.BatchNorm2d(channels), FusedLeakyReLU(channels, 0.0, bias=False)]
    if norm == "layer":  # GroupNorm(1, C) (over (C, H, W) of each sample) and the ReLU in one op
        return [FusedLayerNormLeakyReLU(channels, 0.0)]
    return [FusedLeakyReLU(channels, 0.0, bias=bias)]


class FirstBlock(nn.Module):
    """The paper's "optimized" first critic block, (N, C, s, s) -> (N, W, s/2, s/2):
    conv-ReLU-conv-pool plus a pool-conv1x1 shortcut. No norm on the image layer (as DCGAN)."""

    def __init__(self, c_in: int, channels: int):
        super().__init__()
        self.branch = nn.Sequential(_conv3(c_in, channels, bias=False),  # its bias is the activation's
                                    FusedLeakyReLU(channels, 0.0),
                                    _conv3(channels, channels, bias=True), nn.AvgPool2d(2))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(c_in, channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.branch(x)


class CriticBlock(nn.Module):
    """Pre-activation critic block: [norm-]ReLU-conv-[norm-]ReLU-conv, then a 2x average pool
    when ``downsample`` (shortcut: pool-conv1x1), else an identity shortcut."""

    def __init__(self, channels: int, norm: str, downsample: bool):
        super().__init__()
        self.downsample = downsample
        # The input is a block output whose bias sits in that block's last conv: the first
        # activation needs none; the second replaces the bias of the conv before it.
        layers = [*_activation(norm, channels, bias=False), _conv3(channels, channels, bias=False),
                  *_activation(norm, channels, bias=True), _conv3(channels, channels, bias=True)]
        if downsample:
            layers.append(nn.AvgPool2d(2))
            # pool then conv1x1 equals conv1x1 then pool (both linear and per pixel), at 1/4 the cost.
            self.shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(channels, channels, 1, bias=False))
        else:
            self.shortcut = nn.Identity()
        # Checkpoints from before the fused layer norm had GroupNorm and FusedLeakyReLU entries.
        self.branch = load_unfused_layer_norms(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.branch(x)


class _MeanOverSpace(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))  # (N, W, 4, 4) -> (N, W)


class Critic(nn.Module):
    """(N, C, S, S) -> (N,) scores: FirstBlock, down blocks to 4x4, two plain blocks, ReLU,
    spatial mean, linear. ``features`` maps images to the last (N, W, 4, 4) feature map."""

    def __init__(self, image_shape: tuple[int, int, int], width: int, norm: str):
        super().__init__()
        levels = _levels(image_shape)
        blocks: list[nn.Module] = [FirstBlock(image_shape[0], width)]
        blocks += [CriticBlock(width, norm, downsample=True) for _ in range(levels - 1)]
        blocks += [CriticBlock(width, norm, downsample=False) for _ in range(PLAIN_BLOCKS)]
        self.features = nn.Sequential(*blocks, *_activation(norm, width, bias=False))
        self.head = nn.Sequential(_MeanOverSpace(), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()

    def trunk(self) -> nn.Module:
        """The critic without its output layer: (N, C, S, S) -> (N, W) (the features' spatial mean)."""
        return nn.Sequential(self.features, self.head[0])


class ResNet(ConvArchitecture):
    """ResNet architecture plugin: the WGAN-GP paper's residual models at any power-of-two size.

    The generator maps z linearly to 4x4xW and doubles the resolution with log2(S)-2 residual
    up blocks. The critic halves it with the paper's "optimized" first block and log2(S)-3 down
    blocks to 4x4 (the mirror of the generator), then applies two plain blocks at 4x4 as the
    paper's CIFAR-10 critic does after its last down block (that critic stops at 8x8; going on
    to 4x4 keeps one layout for every size). All blocks keep W channels. Weights use He/Glorot
    init (see resnet_init), not DCGAN's N(0, 0.02).

    Args:
        width: channels of every residual block, W (128 in the paper).
        norm: critic normalisation: "auto" (none when the loss needs per-sample scores, e.g. a
            gradient penalty, as in the paper; else BatchNorm), "none", "batch" or "layer".
    """

    name = "resnet"
    penalty_norm = "none"  # as in the paper
    generator_class, critic_class = Generator, Critic
    levels = staticmethod(_levels)
    init = staticmethod(resnet_init)

    def generator(self, z_dim: int, image_shape: tuple[int, int, int]) -> nn.Module:
        g = super().generator(z_dim, image_shape)
        nn.init.xavier_uniform_(g.to_image[2].weight)  # feeds tanh, not a ReLU (as the paper's code)
        return g


architecture = ResNet
