"""The original GAN objective (Goodfellow et al. 2014), minimax or non-saturating generator loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gantools.errors import UserError
from gantools_plugins.losses._labels import Target, check_flip, targets

GENERATOR_LOSSES = ("non-saturating", "minimax")


def bce(logits: torch.Tensor, target: Target) -> torch.Tensor:
    """Mean binary cross-entropy of D = sigmoid(logits) against ``target`` (a float or (N,)):
    t * -log D + (1 - t) * -log(1 - D), with -log sigmoid(l) = softplus(-l)."""
    if isinstance(target, float) and target in (0.0, 1.0):  # the plain GAN: one term
        return F.softplus(-logits if target == 1.0 else logits).mean()
    return (target * F.softplus(-logits) + (1 - target) * F.softplus(logits)).mean()


class GAN:
    """Binary cross-entropy GAN loss on critic logits (D(x) = sigmoid of the critic's score).

    Defaults: the DCGAN recipe (Radford et al. 2016): Adam lr 2e-4, betas (0.5, 0.999), one
    critic step per generator step.

    Logs of the critic objective: ``d_real``/``d_fake``, the mean logits of the real and the
    generated batch (raw critic scores, as every loss logs them), and ``d_real_prob``/
    ``d_fake_prob``, the mean probabilities D(x) and D(G(z)) (the sigmoid of each logit, then
    the mean): D(x) near 1 and D(G(z)) near 0 mean the critic is winning; both near 0.5 is the
    equilibrium.

    Args:
        generator_loss: "non-saturating" (maximise log D(G(z)), the paper's practical choice)
            or "minimax" (minimise log(1 - D(G(z))), the game as written).
        real_label: the critic's target for real images; 0.9 is one-sided label smoothing
            (Salimans et al. 2016: generated images keep the target 0).
        flip: probability of flipping each sample's label in the critic objective (a real image
            gets the target 0, a generated one ``real_label``); the generator's target stays 1.
    """

    defaults = {"n_critic": 1, "optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}
    per_sample = False
    conditioning = "concat"  # --conditional: the classic cGAN (Mirza & Osindero 2014) concatenates the label

    def __init__(self, generator_loss: str = "non-saturating", real_label: float = 1.0, flip: float = 0.0):
        if generator_loss not in GENERATOR_LOSSES:
            raise UserError(f"gan generator_loss must be one of {', '.join(GENERATOR_LOSSES)} "
                            f"(got {generator_loss!r})")
        if not 0.0 < real_label <= 1.0:
            raise UserError(f"gan real_label must be in (0, 1] (got {real_label})")
        check_flip("gan", flip)
        self.minimax = generator_loss == "minimax"
        self.real_label, self.flip = float(real_label), float(flip)

    def discriminator_loss(self, critic, real, fake):
        # D maximises log D(x) + log(1 - D(G(z))) (targets 1 and 0, unless smoothed or flipped).
        real_logits, fake_logits = critic(real), critic(fake)
        real_target = targets(real_logits, self.real_label, 0.0, self.flip)
        fake_target = targets(fake_logits, 0.0, self.real_label, self.flip)
        loss = bce(real_logits, real_target) + bce(fake_logits, fake_target)
        logs = {"d_real": real_logits.mean().detach(), "d_fake": fake_logits.mean().detach(),
                "d_real_prob": torch.sigmoid(real_logits).mean().detach(),
                "d_fake_prob": torch.sigmoid(fake_logits).mean().detach()}
        return loss, logs

    def generator_loss(self, critic, fake):
        logits = critic(fake)
        if self.minimax:  # G minimises log(1 - D(G(z))) = -softplus(l)
            return -F.softplus(logits).mean(), {}
        return F.softplus(-logits).mean(), {}  # G maximises log D(G(z))


loss = GAN
