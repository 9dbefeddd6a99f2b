"""The original GAN objective (Goodfellow et al. 2014), minimax or non-saturating generator loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gantools.errors import UserError

GENERATOR_LOSSES = ("non-saturating", "minimax")


class GAN:
    """Binary cross-entropy GAN loss on critic logits.

    Args:
        generator_loss: "non-saturating" (maximise log D(G(z)), the paper's practical choice)
            or "minimax" (minimise log(1 - D(G(z))), the game as written).
    """

    defaults = {"n_critic": 1, "optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}
    per_sample = False

    def __init__(self, generator_loss: str = "non-saturating"):
        if generator_loss not in GENERATOR_LOSSES:
            raise UserError(f"gan generator_loss must be one of {', '.join(GENERATOR_LOSSES)} "
                            f"(got {generator_loss!r})")
        self.minimax = generator_loss == "minimax"

    def discriminator_loss(self, critic, real, fake):
        # D maximises log D(x) + log(1 - D(G(z))): softplus(-l) = -log sigmoid(l).
        real_logits, fake_logits = critic(real), critic(fake)
        loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        logs = {"d_real": torch.sigmoid(real_logits).mean().detach(),
                "d_fake": torch.sigmoid(fake_logits).mean().detach()}
        return loss, logs

    def generator_loss(self, critic, fake):
        logits = critic(fake)
        if self.minimax:  # G minimises log(1 - D(G(z))) = -softplus(l)
            return -F.softplus(logits).mean(), {}
        return F.softplus(-logits).mean(), {}  # G maximises log D(G(z))


loss = GAN
