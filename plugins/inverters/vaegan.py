"""VAE-GAN (Larsen et al. 2016): a VAE encoder whose decoder is the generator, trained with the GAN.

The encoder maps x to a Gaussian q(z|x) = N(mu, diag(exp(logvar))); a sample from it is decoded
by the generator and compared with x in the critic's feature layer (its conv trunk), not in
pixels; a KL term pulls q(z|x) to the prior. The encoder gets only the reconstruction and KL
gradients (no GAN gradient); the generator gets the loss plugin's objective plus the
reconstruction term. The critic trains as usual on real against generated images. Encoding
returns mu.
"""
from __future__ import annotations

import torch

from gantools.errors import UserError
from gantools_plugins.inverters.encoder import (Encoder, gaussian_posterior, run_architecture, scaled_head,
                                                 trunk_for)


class VAEGANInverter:
    """Joint inverter: `gantools run ... --inverter vaegan`.

    Args:
        width_scale: multiplies the encoder head's widths 4096-2048-1024.
        recon_weight: weight of the feature-wise reconstruction error (gamma in the paper).
        kl_weight: weight of the KL divergence to the prior, per latent dimension.
    """

    joint = True

    def __init__(self, width_scale: float = 0.125, recon_weight: float = 1.0, kl_weight: float = 0.05):
        if width_scale <= 0 or recon_weight < 0 or kl_weight < 0:
            raise UserError("vaegan needs width_scale > 0 and non-negative weights")
        self.head = scaled_head(width_scale)
        self.recon_weight, self.kl_weight = recon_weight, kl_weight

    def _build(self, arch, image_shape, z_dim: int, device) -> None:
        trunk, features = trunk_for(arch, image_shape)
        self.z_dim = z_dim
        self.encoder = Encoder(trunk, features, 2 * z_dim, self.head).to(device)  # mu and log-variance

    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return gaussian_posterior(self.encoder, x, self.z_dim)

    # ---- training (trainer hooks) ----
    def attach(self, ctx) -> None:
        if ctx.prior != "normal":
            raise UserError("vaegan's KL term assumes the normal prior (--prior normal)")
        self.features = getattr(ctx.critic, "features", None)
        if self.features is None:
            raise UserError(f"vaegan measures reconstructions in the critic's feature layer; the "
                            f"{ctx.config['arch']} critic has no .features trunk")
        self._build(ctx.arch, ctx.data_shape, ctx.z_dim, ctx.device)
        self.encoder.to(memory_format=ctx.memory_format)  # the layout of the batches it encodes
        self.loss, self.critic, self.generator = ctx.loss, ctx.critic, ctx.generator

    def parameters(self):
        return self.encoder.parameters()

    def critic_inputs(self, real, z, fake):
        return real, fake

    def generator_loss(self, ctx, z, fake):
        adversarial, _ = self.loss.generator_loss(self.critic, fake)  # G only: fake does not involve E
        real = ctx.real_batch()
        mu, logvar = self._posterior(real)
        z_rec = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = (self.features(self.generator(z_rec)) - self.features(real).detach()).pow(2).mean()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()
        loss = adversarial + self.recon_weight * recon + self.kl_weight * kl
        return loss, {"vae_recon": recon.detach(), "vae_kl": kl.detach()}

    # ---- use after training ----
    def setup(self, run, registry=None) -> None:
        self._build(run_architecture(run, registry), run.data_shape, run.config["z_dim"], run.device)
        self.encoder.to(memory_format=run.memory_format)  # as trained, so it encodes as it did then

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.encoder.eval()
            return self._posterior(images.to(next(self.encoder.parameters()).device))[0]

    def state_dict(self) -> dict:
        return {"encoder": self.encoder.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.encoder.load_state_dict(state["encoder"])


inverter = VAEGANInverter
