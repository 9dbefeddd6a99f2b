"""lsgan: the least-squares objectives on hand-made scores, label variants, smoothing and flips."""
from __future__ import annotations

import pytest
import torch

from gantools.errors import UserError
from gantools_plugins.losses.lsgan import LSGAN

REAL = torch.tensor([1.0, 0.0, 2.0])  # the critic's scores on a real batch
FAKE = torch.tensor([0.0, 1.0, -1.0])  # and on a generated one


def test_paper_objective_with_a0_b1_c1(critic_loss, generator_loss):
    loss, _ = critic_loss(LSGAN(), REAL, FAKE)
    # 1/2 mean((D(x) - 1)^2) + 1/2 mean(D(G(z))^2) = 1/2 * 2/3 + 1/2 * 2/3
    torch.testing.assert_close(loss, torch.tensor(2 / 3))
    # 1/2 mean((D(G(z)) - 1)^2) = 1/2 * (1 + 0 + 4) / 3
    torch.testing.assert_close(generator_loss(LSGAN(), FAKE), torch.tensor(0.5 * 5 / 3))


def test_pearson_variant_a_minus1_b1_c0(critic_loss, generator_loss):
    loss = LSGAN(fake_label=-1.0, generator_target=0.0)
    d_loss, _ = critic_loss(loss, REAL, FAKE)
    torch.testing.assert_close(d_loss, 0.5 * ((REAL - 1) ** 2).mean() + 0.5 * ((FAKE + 1) ** 2).mean())
    torch.testing.assert_close(generator_loss(loss, FAKE), 0.5 * (FAKE ** 2).mean())


def test_smoothing_and_flips_change_the_targets(critic_loss):
    d_loss, _ = critic_loss(LSGAN(real_label=0.9), REAL, FAKE)
    torch.testing.assert_close(d_loss, 0.5 * ((REAL - 0.9) ** 2).mean() + 0.5 * (FAKE ** 2).mean())
    d_loss, _ = critic_loss(LSGAN(real_label=0.9, flip=1.0), REAL, FAKE)  # every label swapped
    torch.testing.assert_close(d_loss, 0.5 * (REAL ** 2).mean() + 0.5 * ((FAKE - 0.9) ** 2).mean())
    torch.manual_seed(7)
    real_flip, fake_flip = torch.rand(3) < 0.5, torch.rand(3) < 0.5  # drawn real batch first
    torch.manual_seed(7)
    d_loss, _ = critic_loss(LSGAN(flip=0.5), REAL, FAKE)
    real_t, fake_t = torch.where(real_flip, 0.0, 1.0), torch.where(fake_flip, 1.0, 0.0)
    torch.testing.assert_close(d_loss, 0.5 * ((REAL - real_t) ** 2).mean() + 0.5 * ((FAKE - fake_t) ** 2).mean())


@pytest.mark.parametrize("options,message", [({"real_label": 0.0}, "must differ"),
                                             ({"flip": 2.0}, "lsgan flip is a probability")])
def test_bad_options_are_refused(options, message):
    with pytest.raises(UserError, match=message):
        LSGAN(**options)


def test_short_training_run(trained):
    run, _ = trained(arch="mlp", arch_opts={"hidden": 16, "layers": 2}, loss="lsgan",
                     loss_opts={"real_label": 0.9, "flip": 0.05}, dataset="toy:8gaussians", dataset_opts={"n": 256},
                     z_dim=2, batch_size=16, steps=4)
    assert run.config["lr"] == 2e-4 and run.config["n_critic"] == 1
