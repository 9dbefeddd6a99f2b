"""ALI / BiGAN (Dumoulin et al. 2017; Donahue et al. 2017): an encoder trained with the GAN.

The discriminator judges joint pairs: (x, E(x)) for real images against (G(z), z) for
generated ones; the generator and the encoder are trained together to fool it (the loss
plugin's critic objective with the roles swapped, so `gan`, `wgan` and `wgan-gp` all work).
At the optimum E inverts G. The encoder is the critic's conv trunk (fresh weights) with a
fully connected head; the joint discriminator has a conv trunk for x, an MLP for z, and an
MLP on both, with dropout on its features (as in the ALI paper).

The encoder is stochastic by default, as in the paper: q(z|x) = N(mu(x), diag(sigma(x)^2)),
sampled with the reparametrisation trick during training; encoding returns mu. A
deterministic encoder starts with almost the same output for every image (its per-image
spread is a few hundredths), and the joint game never spreads it out: measured on digits,
its codes stayed collapsed (per-dimension spread across images 0.03 after 600 steps; every
real digit decoded to the same blob). The sampled codes match the prior's spread from the
first step, so the discriminator can only tell the pairs apart by how z depends on x.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from gantools.errors import UserError
from gantools.nn import FusedLeakyReLU
from gantools_plugins.inverters.encoder import (Encoder, gaussian_posterior, run_architecture, scaled_head,
                                                 trunk_for)


class JointDiscriminator(nn.Module):
    """Scores packed pairs (N, C*H*W + z_dim): the flattened image, then its latent."""

    def __init__(self, trunk: nn.Module, features: int, image_shape: tuple[int, ...], z_dim: int, width: int,
                 dropout: float = 0.0):
        super().__init__()
        self.image_shape, self.pixels = tuple(image_shape), math.prod(image_shape)
        self.x_trunk = nn.Sequential(trunk, nn.Dropout(dropout))
        self.z_branch = nn.Sequential(nn.Linear(z_dim, width, bias=False), FusedLeakyReLU(width, 0.2),
                                      nn.Dropout(dropout),
                                      nn.Linear(width, width, bias=False), FusedLeakyReLU(width, 0.2),
                                      nn.Dropout(dropout))
        self.joint = nn.Sequential(nn.Linear(features + width, 2 * width, bias=False),
                                   FusedLeakyReLU(2 * width, 0.2), nn.Dropout(dropout), nn.Linear(2 * width, 1))

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        x = pairs[:, :self.pixels].reshape(-1, *self.image_shape)
        z = pairs[:, self.pixels:]
        return self.joint(torch.cat([self.x_trunk(x), self.z_branch(z)], 1)).flatten()


def pack(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images and (N, d) latents -> (N, C*H*W + d) pairs."""
    return torch.cat([x.reshape(x.shape[0], -1), z.to(x.dtype)], 1)


class ALIInverter:
    """Joint inverter: `gantools run ... --inverter ali`.

    Args:
        width_scale: multiplies the encoder head's widths 4096-2048-1024.
        z_width: units of the discriminator's latent branch (and twice that in its joint MLP).
        stochastic: Gaussian encoder sampled during training (True), or a deterministic one.
        dropout: dropout rate in the joint discriminator.
    """

    joint = True

    def __init__(self, width_scale: float = 0.125, z_width: int = 256, stochastic: bool = True,
                 dropout: float = 0.2):
        if width_scale <= 0 or z_width < 1 or not 0.0 <= dropout < 1.0:
            raise UserError(f"ali needs width_scale > 0, z_width >= 1 and dropout in [0, 1) "
                            f"(got {width_scale}, {z_width}, {dropout})")
        self.head = scaled_head(width_scale)
        self.z_width, self.stochastic, self.dropout = z_width, bool(stochastic), dropout

    def _build(self, arch, image_shape, z_dim: int, device) -> None:
        trunk, features = trunk_for(arch, image_shape)
        self.z_dim = z_dim
        outputs = 2 * z_dim if self.stochastic else z_dim  # mu and log-variance when stochastic
        self.encoder = Encoder(trunk, features, outputs, self.head).to(device)
        d_trunk, d_features = trunk_for(arch, image_shape)
        self.discriminator = JointDiscriminator(d_trunk, d_features, image_shape, z_dim, self.z_width,
                                                self.dropout).to(device)

    def _sample(self, x: torch.Tensor) -> torch.Tensor:
        """z ~ q(z|x) (reparametrised, so gradients reach the encoder)."""
        if not self.stochastic:
            return self.encoder(x)
        mu, logvar = gaussian_posterior(self.encoder, x, self.z_dim)
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    # ---- training (trainer hooks) ----
    def attach(self, ctx) -> None:
        self._build(ctx.arch, ctx.data_shape, ctx.z_dim, ctx.device)
        self.encoder.to(memory_format=ctx.memory_format)  # the layout of the batches it encodes
        self.loss = ctx.loss

    def parameters(self):
        return self.encoder.parameters()

    def critic_inputs(self, real, z, fake):
        with torch.no_grad():
            z_real = self._sample(real)
        return pack(real, z_real), pack(fake, z)

    def generator_loss(self, ctx, z, fake):
        real = ctx.real_batch()
        real_pairs, fake_pairs = pack(real, self._sample(real)), pack(fake, z)
        # G and E fool the discriminator: its objective with real and generated pairs swapped.
        loss, _ = self.loss.discriminator_loss(self.discriminator, fake_pairs, real_pairs)
        return loss, {}

    # ---- use after training ----
    def setup(self, run, registry=None) -> None:
        self._build(run_architecture(run, registry), run.data_shape, run.config["z_dim"], run.device)
        self.encoder.to(memory_format=run.memory_format)  # as trained, so it encodes as it did then

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.encoder.eval()(images.to(next(self.encoder.parameters()).device))
            return out[:, :self.z_dim]  # mu for the stochastic encoder

    def state_dict(self) -> dict:
        return {"encoder": self.encoder.state_dict(), "discriminator": self.discriminator.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.discriminator.load_state_dict(state["discriminator"])


inverter = ALIInverter
