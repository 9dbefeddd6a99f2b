"""Hinge GAN loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, spectral normalisation)."""
from __future__ import annotations

import torch.nn.functional as F


class Hinge:
    """The critic minimises E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]; the generator
    minimises -E[D(G(z))]. Logs the mean raw scores ``d_real`` and ``d_fake``.

    Defaults: Adam lr 2e-4, betas (0, 0.9), five critic steps per generator step: Miyato et al.'s
    setting for their hinge-loss ResNet GANs (the unconditional CIFAR-10 configuration of
    github.com/pfnet-research/sngan_projection). No options.
    """

    defaults = {"n_critic": 5, "optimizer": "adam", "lr": 2e-4, "betas": (0.0, 0.9)}
    per_sample = False

    def discriminator_loss(self, critic, real, fake):
        # D minimises E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]
        d_real, d_fake = critic(real), critic(fake)
        loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        return loss, {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}

    def generator_loss(self, critic, fake):
        # G minimises -E[D(G(z))]
        return -critic(fake).mean(), {}


loss = Hinge
