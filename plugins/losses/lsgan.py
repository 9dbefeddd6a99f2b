"""Least-squares GAN (Mao et al. 2017): the critic regresses its scores to class labels."""
from __future__ import annotations

import torch

from gantools.errors import UserError
from gantools_plugins.losses._labels import Target, check_flip, targets


def squared(scores: torch.Tensor, target: Target) -> torch.Tensor:
    """1/2 E[(D - target)^2] over the batch."""
    return 0.5 * ((scores - target) ** 2).mean()


class LSGAN:
    """The critic minimises 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] and the generator
    1/2 E[(D(G(z)) - c)^2], on raw (linear) critic scores.

    The default is the paper's 0-1 coding, a = 0, b = 1, c = 1, the variant its experiments use;
    a = -1, b = 1, c = 0 (``--loss-opt fake_label=-1 --loss-opt generator_target=0``) meets the
    paper's conditions b - c = 1, b - a = 2 under which the game minimises the Pearson chi^2
    divergence. The scores are not probabilities, so only their means are logged (``d_real``,
    ``d_fake``).

    Defaults: Adam lr 2e-4, beta1 0.5 (beta2 0.999, TensorFlow's default), one critic step per
    generator step: the authors' code for the paper's 28 px handwritten Chinese characters
    (train_chn.py in github.com/xudonmao/LSGAN); their LSUN scenes used lr 1e-3 (``--lr 1e-3``).

    Args:
        real_label: b, the critic's target for real images (0.9: one-sided label smoothing).
        fake_label: a, the critic's target for generated images.
        generator_target: c, the score the generator pulls its samples towards.
        flip: probability of swapping each sample's target in the critic objective (a real
            image gets ``fake_label``, a generated one ``real_label``).
    """

    defaults = {"n_critic": 1, "optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}
    per_sample = False

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0, generator_target: float = 1.0,
                 flip: float = 0.0):
        if real_label == fake_label:
            raise UserError(f"lsgan real_label and fake_label must differ (both {real_label})")
        check_flip("lsgan", flip)
        self.real_label, self.fake_label = float(real_label), float(fake_label)
        self.generator_target, self.flip = float(generator_target), float(flip)

    def discriminator_loss(self, critic, real, fake):
        # D minimises 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]
        d_real, d_fake = critic(real), critic(fake)
        real_target = targets(d_real, self.real_label, self.fake_label, self.flip)
        fake_target = targets(d_fake, self.fake_label, self.real_label, self.flip)
        loss = squared(d_real, real_target) + squared(d_fake, fake_target)
        return loss, {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}

    def generator_loss(self, critic, fake):
        # G minimises 1/2 E[(D(G(z)) - c)^2]
        return squared(critic(fake), self.generator_target), {}


loss = LSGAN
