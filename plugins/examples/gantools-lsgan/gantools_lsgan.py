"""Least-squares GAN loss (Mao et al. 2017), packaged as an out-of-tree gantools plugin (`lsgan-example`)."""
from __future__ import annotations


class LSGAN:
    """Critic regresses real scores to ``real_target`` and fake ones to ``fake_target``;
    the generator pulls its samples' scores to ``real_target`` (the paper's a=0, b=c=1).

    Args:
        real_target: target score of real samples (b).
        fake_target: target score of generated samples (a).
    """

    defaults = {"n_critic": 1, "optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}
    per_sample = False

    def __init__(self, real_target: float = 1.0, fake_target: float = 0.0):
        self.real_target, self.fake_target = real_target, fake_target

    def discriminator_loss(self, critic, real, fake):
        # D minimises 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]
        d_real, d_fake = critic(real), critic(fake)
        loss = 0.5 * ((d_real - self.real_target) ** 2).mean() + 0.5 * ((d_fake - self.fake_target) ** 2).mean()
        return loss, {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}

    def generator_loss(self, critic, fake):
        # G minimises 1/2 E[(D(G(z)) - c)^2]
        return 0.5 * ((critic(fake) - self.real_target) ** 2).mean(), {}


loss = LSGAN
