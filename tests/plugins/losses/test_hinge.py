"""hinge: the critic's margins and the generator's mean score on hand-made scores."""
from __future__ import annotations

import torch

from gantools_plugins.losses.hinge import Hinge

REAL = torch.tensor([2.0, 0.5, -1.0])  # the critic's scores on a real batch
FAKE = torch.tensor([-2.0, 0.0, 0.5])  # and on a generated one


def test_critic_loss_is_the_two_hinges(critic_loss):
    loss, _ = critic_loss(Hinge(), REAL, FAKE)
    # mean(max(0, 1 - [2, 0.5, -1])) + mean(max(0, 1 + [-2, 0, 0.5])) = 2.5/3 + 2.5/3
    torch.testing.assert_close(loss, torch.tensor(5 / 3))


def test_scores_beyond_the_margin_get_no_gradient(critic_loss):
    real, fake = REAL.clone().requires_grad_(), FAKE.clone().requires_grad_()
    critic_loss(Hinge(), real, fake)[0].backward()
    torch.testing.assert_close(real.grad, torch.tensor([0.0, -1.0, -1.0]) / 3)
    torch.testing.assert_close(fake.grad, torch.tensor([0.0, 1.0, 1.0]) / 3)


def test_generator_loss_is_minus_the_mean_score(generator_loss):
    torch.testing.assert_close(generator_loss(Hinge(), FAKE), -FAKE.mean())


def test_defaults_are_miyato_et_al():
    assert Hinge.defaults == {"n_critic": 5, "optimizer": "adam", "lr": 2e-4, "betas": (0.0, 0.9)}


def test_short_training_run(trained):
    run, _ = trained(arch="dcgan", arch_opts={"width": 8}, loss="hinge", dataset="digits", image_size=16, z_dim=8,
                     batch_size=8, steps=3, n_critic=2)
    assert tuple(run.config["betas"]) == (0.0, 0.9) and run.config["lr"] == 2e-4
