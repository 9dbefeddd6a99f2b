"""Weight initialisation and option handling shared by the built-in conv architectures."""
import math
from typing import Callable

import torch
from torch import nn

from gantools.errors import UserError
from gantools.nn import FusedLayerNormLeakyReLU

NORMS = ("auto", "none", "batch", "layer")


def square_levels(arch: str, image_shape: tuple[int, ...]) -> int:
    """Number of 2x resolution steps between 4x4 and a square power-of-two image (>= 8 px)."""
    if len(image_shape) != 3:
        raise UserError(f"{arch} needs images (C, H, W), got shape {tuple(image_shape)}; use --arch mlp for points")
    _, height, width = image_shape
    if height != width or height < 8 or 2 ** round(math.log2(height)) != height:
        raise UserError(f"{arch} needs square images with a power-of-two side >= 8 (8, 16, 32, 64, ...), "
                        f"got {height}x{width}")
    return int(math.log2(height)) - 2


def check_width_norm(arch: str, width: int, norm: str) -> None:
    """Refuse a non-positive width or an unknown critic normalisation, naming the architecture."""
    if width < 1:
        raise UserError(f"{arch} width must be positive (got {width})")
    if norm not in NORMS:
        raise UserError(f"{arch} norm must be one of {', '.join(NORMS)} (got {norm!r})")


def critic_norm(arch: str, norm: str, per_sample: bool, for_penalty: str) -> str:
    """The critic's normalisation: "auto" is BatchNorm, or ``for_penalty`` when the loss needs
    per-sample scores (gradient penalties); an explicit BatchNorm with such a loss is refused."""
    if norm == "auto":
        return for_penalty if per_sample else "batch"
    if norm == "batch" and per_sample:
        raise UserError(f"{arch} norm=batch couples the samples of a batch, which breaks this loss's "
                        f"per-sample gradient penalty; use norm=layer or norm=none")
    return norm


def dcgan_init(module: nn.Module) -> None:
    """DCGAN paper init: conv/linear weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif (isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, FusedLayerNormLeakyReLU))
          and module.weight is not None):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def flat_features(trunk: nn.Module, image_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    """(trunk, its output width for one blank input); the trunk is left in training mode."""
    was_training = trunk.training
    trunk.eval()  # BatchNorm's statistics must not see the blank image
    with torch.no_grad():
        features = trunk(torch.zeros(1, *image_shape)).shape[1]
    trunk.train(was_training)
    return trunk, features


class ConvArchitecture:
    """What the conv architectures share: the width/norm options, building and initialising the
    networks, and the encoder trunk. A subclass sets ``name``, ``generator_class``,
    ``critic_class`` (built as cls(image_shape-or-z_dim..., width[, norm]), the critic with a
    ``features`` trunk), ``levels`` (image shape -> resolution steps, raising UserError for
    shapes it cannot build), ``init`` and ``penalty_norm`` (the critic's normalisation under
    a gradient penalty)."""

    name = ""
    penalty_norm = "layer"
    generator_class: type
    critic_class: type
    levels: Callable
    init: Callable

    def __init__(self, width: int = 64, norm: str = "auto"):
        check_width_norm(self.name, width, norm)
        self.width = width
        self.norm = norm

    def check_shape(self, image_shape: tuple[int, ...]) -> None:
        type(self).levels(image_shape)

    def generator(self, z_dim: int, image_shape: tuple[int, int, int]) -> nn.Module:
        g = self.generator_class(z_dim, image_shape, self.width)
        g.apply(type(self).init)
        return g

    def discriminator(self, image_shape: tuple[int, int, int], *, per_sample: bool) -> nn.Module:
        d = self.critic_class(image_shape, self.width, critic_norm(self.name, self.norm, per_sample, self.penalty_norm))
        d.apply(type(self).init)
        return d

    def critic_trunk(self, image_shape: tuple[int, ...], *, per_sample: bool) -> tuple[nn.Module, int]:
        """The critic (fresh weights, normalised as ``discriminator`` does) up to its last linear
        map, (N, *image_shape) -> (N, features), and ``features`` (read off one blank image)."""
        return flat_features(self.discriminator(tuple(image_shape), per_sample=per_sample).trunk(), image_shape)

    def encoder_trunk(self, image_shape: tuple[int, int, int]) -> tuple[nn.Module, int]:
        """The critic's conv trunk with fresh weights (layer norm), and its flat feature count
        (read off one blank image, so it cannot disagree with the trunk)."""
        trunk = nn.Sequential(self.critic_class(image_shape, self.width, "layer").features, nn.Flatten())
        trunk.apply(type(self).init)
        with torch.no_grad():
            features = trunk(torch.zeros(1, *image_shape)).shape[1]
        return trunk, features
