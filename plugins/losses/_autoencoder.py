"""What the autoencoder objectives (ae, dae, vae) share: their encoder, recipe and reconstruction terms."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantools.errors import UserError

# Adam at 1e-3 with the usual betas: the autoencoders' recipe (no adversarial game to damp).
DEFAULTS = {"n_critic": 1, "optimizer": "adam", "lr": 1e-3, "betas": (0.9, 0.999)}
RECONSTRUCTIONS = ("mse", "bce")


class CodeEncoder(nn.Module):
    """The architecture's encoder trunk (its critic's layers, fresh weights) and a linear map to
    ``outputs`` code values."""

    def __init__(self, trunk: nn.Module, features: int, outputs: int):
        super().__init__()
        self.trunk, self.head = trunk, nn.Linear(features, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def build_encoder(loss_name: str, arch, image_shape: tuple[int, ...], outputs: int) -> nn.Module:
    """A CodeEncoder on ``arch.encoder_trunk``; UserError naming the loss when there is none."""
    make_trunk = getattr(arch, "encoder_trunk", None)
    if make_trunk is None:
        raise UserError(f"--loss {loss_name} trains an encoder on the architecture's encoder_trunk, and "
                        f"{type(arch).__name__} has none; use dcgan, resnet, conv28 or mlp")
    trunk, features = make_trunk(tuple(image_shape))
    return CodeEncoder(trunk, features, outputs)


def check_reconstruction(loss_name: str, recon: str) -> None:
    if recon not in RECONSTRUCTIONS:
        raise UserError(f"{loss_name} recon must be one of {', '.join(RECONSTRUCTIONS)} (got {recon!r})")


def reconstruction(recon: str, decoded: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-sample reconstruction cost (N,), summed over the values of a sample.

    mse: squared error in [-1, 1] units. bce: binary cross-entropy of the intensities (x + 1) / 2
    against the decoder's (tanh output + 1) / 2, the classic MNIST VAE likelihood.
    """
    if recon == "mse":
        return (decoded.float() - real.float()).pow(2).flatten(1).sum(1)
    p = ((decoded.float() + 1) / 2).clamp(1e-6, 1 - 1e-6)
    target = ((real.float() + 1) / 2).clamp(0, 1)
    return F.binary_cross_entropy(p, target, reduction="none").flatten(1).sum(1)
