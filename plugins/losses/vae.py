"""The variational autoencoder (Kingma & Welling 2014): an encoder q(z|x), the generator as p(x|z)."""
from __future__ import annotations

import torch

from gantools import stepcontext
from gantools.errors import UserError
from gantools_plugins.losses._autoencoder import DEFAULTS, build_encoder, check_reconstruction, reconstruction


class VAE:
    """``gantools run --loss vae``: minimise the negative ELBO,
    E_q[-log p(x|z)] + beta * KL(q(z|x) || N(0, I)), per sample, averaged over the batch.

    The encoder outputs the mean and log-variance of q(z|x) = N(mu, diag(exp(logvar))); z is
    drawn by the reparametrisation z = mu + exp(logvar / 2) * eps, so the cost differentiates
    through the draw. The generator decodes z. It samples from the prior N(0, I) like a GAN's
    generator, so `gantools sample` and `gantools eval` score it beside the GANs; encoding returns
    mu. Needs --prior normal (the default).

    Args:
        beta: weight of the KL term (1: the ELBO; Higgins et al.'s beta-VAE above 1).
        recon: "bce" (default: binary cross-entropy of the intensities, the classic MNIST
            likelihood) or "mse" (a Gaussian likelihood of variance 1/2 up to a constant).
    """

    autoencoder = True
    prior = "normal"  # the KL term is to N(0, I)
    defaults = dict(DEFAULTS)

    def __init__(self, beta: float = 1.0, recon: str = "bce"):
        if beta < 0:
            raise UserError(f"vae beta must be >= 0 (got {beta})")
        check_reconstruction("vae", recon)
        self.beta, self.recon = beta, recon

    def build_encoder(self, arch, image_shape, z_dim):
        return build_encoder("vae", arch, image_shape, 2 * z_dim)  # mean and log-variance

    def posterior(self, encoder, x):
        """(mu, logvar) of q(z|x); the log-variance clamped to [-10, 10] for stability."""
        out = encoder(x)
        half = out.shape[1] // 2
        return out[:, :half], out[:, half:].clamp(-10.0, 10.0)

    def reconstruction_loss(self, encoder, generator, real):
        mu, logvar = self.posterior(encoder, real)
        eps = stepcontext.rows(lambda n: torch.randn((n, mu.shape[1]), device=mu.device), mu.shape[0]).to(mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        recon = reconstruction(self.recon, generator(z), real).mean()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).float().sum(1).mean()
        loss = recon + self.beta * kl
        return loss, {"recon": recon.detach(), "kl": kl.detach(), "elbo": -loss.detach()}

    def encode(self, encoder, images):
        return self.posterior(encoder, images)[0]


loss = VAE
