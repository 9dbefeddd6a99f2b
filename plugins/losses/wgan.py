"""Wasserstein GAN with weight clipping (Arjovsky et al. 2017)."""
from __future__ import annotations

import torch

from gantools.errors import UserError


def critic_scores(critic, real, fake, *, joint: bool = False):
    """Critic loss E[D(G(z))] - E[D(x)] and its logs, shared by the Wasserstein losses.

    Args:
        joint: score real and fake in one critic call (one larger batch runs faster than two).
            Only for per-sample critics: batch norm would mix the two batches' statistics.
    """
    if joint and real.shape[0] > 0:
        scores = critic(torch.cat([real, fake.to(real.dtype)]))
        d_real, d_fake = scores[: real.shape[0]].mean(), scores[real.shape[0]:].mean()
    else:
        d_real, d_fake = critic(real).mean(), critic(fake).mean()
    wasserstein = d_real - d_fake  # the critic's estimate of the Wasserstein-1 distance
    logs = {"d_real": d_real.detach(), "d_fake": d_fake.detach(), "wasserstein": wasserstein.detach()}
    return -wasserstein, logs


class WGAN:
    """Critic maximises E[D(x)] - E[D(G(z))]; its weights are clipped to [-clip, clip].

    Args:
        clip: weight clipping bound c (0.01 in the paper).
    """

    defaults = {"n_critic": 5, "optimizer": "rmsprop", "lr": 5e-5, "betas": (0.0, 0.9)}
    per_sample = False

    def __init__(self, clip: float = 0.01):
        if clip <= 0:
            raise UserError(f"wgan clip must be positive (got {clip})")
        self.clip = clip

    def discriminator_loss(self, critic, real, fake):
        return critic_scores(critic, real, fake)

    def generator_loss(self, critic, fake):
        return -critic(fake).mean(), {}

    @torch.no_grad()
    def after_discriminator_step(self, critic) -> None:
        """Keep the critic K-Lipschitz by clipping every parameter."""
        for p in critic.parameters():
            p.clamp_(-self.clip, self.clip)


loss = WGAN
