"""gan: the objective on hand-made logits, D(x)/D(G(z)) logs, label smoothing and flipping."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gantools import stepcontext
from gantools.errors import UserError
from gantools_plugins.losses._labels import targets
from gantools_plugins.losses.gan import GAN

REAL = torch.tensor([2.0, -1.0, 0.5, 3.0])  # the critic's logits on a real batch
FAKE = torch.tensor([-2.0, 1.0, 0.0, -0.5])  # and on a generated one


def bce(logits, t):
    """-[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))] per sample, written out, in float64."""
    s = torch.sigmoid(logits.double())
    return -(t * torch.log(s) + (1 - t) * torch.log(1 - s))


def test_plain_critic_loss_and_logs(critic_loss):
    loss, logs = critic_loss(GAN(), REAL, FAKE)  # d_real, d_fake: the mean logits
    torch.testing.assert_close(loss.double(), bce(REAL, 1.0).mean() + bce(FAKE, 0.0).mean())
    # Exactly the softplus form the loss has always computed.
    assert torch.equal(loss, F.softplus(-REAL).mean() + F.softplus(FAKE).mean())
    torch.testing.assert_close(logs["d_real_prob"], torch.sigmoid(REAL).mean())  # D(x)
    torch.testing.assert_close(logs["d_fake_prob"], torch.sigmoid(FAKE).mean())  # D(G(z))


@pytest.mark.parametrize("kind,want", [("non-saturating", lambda f: -torch.log(torch.sigmoid(f)).mean()),
                                       ("minimax", lambda f: torch.log(1 - torch.sigmoid(f)).mean())])
def test_generator_losses_ignore_the_critic_tricks(kind, want, generator_loss):
    torch.testing.assert_close(generator_loss(GAN(generator_loss=kind, real_label=0.9, flip=0.5), FAKE), want(FAKE))


def test_one_sided_label_smoothing_changes_the_real_target_only(critic_loss):
    loss, _ = critic_loss(GAN(real_label=0.9), REAL, FAKE)
    torch.testing.assert_close(loss.double(), bce(REAL, 0.9).mean() + bce(FAKE, 0.0).mean())


def test_flip_with_p_1_flips_every_label(critic_loss):
    loss, _ = critic_loss(GAN(real_label=0.9, flip=1.0), REAL, FAKE)
    torch.testing.assert_close(loss.double(), bce(REAL, 0.0).mean() + bce(FAKE, 0.9).mean())


def test_flipped_samples_are_the_seeded_draws_real_batch_first(critic_loss):
    torch.manual_seed(5)
    real_flip, fake_flip = torch.rand(4) < 0.5, torch.rand(4) < 0.5
    assert real_flip.any() and not real_flip.all()  # the seed gives a mixed set
    torch.manual_seed(5)
    loss, _ = critic_loss(GAN(real_label=0.9, flip=0.5), REAL, FAKE)
    real_t = torch.where(real_flip, 0.0, 0.9).double()
    fake_t = torch.where(fake_flip, 0.9, 0.0).double()
    torch.testing.assert_close(loss.double(), bce(REAL, real_t).mean() + bce(FAKE, fake_t).mean())


def test_no_flip_draws_nothing(critic_loss):
    torch.manual_seed(0)
    critic_loss(GAN(real_label=0.9), REAL, FAKE)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))


def _per_rank(seed, compute):
    """compute() on ranks 0 and 1 of a 2-process step, each starting from the same seed."""
    out = []
    for rank in range(2):
        torch.manual_seed(seed)  # every rank has the same RNG state, as under torchrun with one seed
        with stepcontext.step(rank=rank, world=2):
            out.append(compute(rank))
    return out


def test_two_ranks_flip_what_one_process_flips(critic_loss):
    scores = torch.zeros(8)
    torch.manual_seed(3)
    whole = targets(scores, 0.9, 0.0, 0.5)
    assert torch.equal(torch.cat(_per_rank(3, lambda rank: targets(scores[:4], 0.9, 0.0, 0.5))), whole)
    # And the loss: the ranks' losses average to the one-process loss.
    real, fake = torch.randn(8), torch.randn(8)
    torch.manual_seed(3)
    one, _ = critic_loss(GAN(real_label=0.9, flip=0.3), real, fake)
    ranked = _per_rank(3, lambda rank: critic_loss(GAN(real_label=0.9, flip=0.3), real[4 * rank:4 * rank + 4],
                                                   fake[4 * rank:4 * rank + 4])[0])
    torch.testing.assert_close((ranked[0] + ranked[1]) / 2, one)


@pytest.mark.parametrize("options,message", [({"real_label": 0.0}, "real_label must be in"),
                                             ({"real_label": 1.2}, "real_label must be in"),
                                             ({"flip": 1.5}, "gan flip is a probability"),
                                             ({"flip": -0.1}, "gan flip is a probability"),
                                             ({"generator_loss": "hinge"}, "generator_loss must be one of")])
def test_bad_options_are_refused(options, message):
    with pytest.raises(UserError, match=message):
        GAN(**options)


def test_short_training_run_with_smoothing_flips_and_dropout(trained):
    _, rows = trained(arch="dcgan", arch_opts={"width": 8, "dropout": 0.3}, loss="gan",
                      loss_opts={"real_label": 0.9, "flip": 0.05}, dataset="digits", image_size=16, z_dim=8,
                      batch_size=8, steps=4)
    assert all(0 < r["d_real_prob"] < 1 and 0 < r["d_fake_prob"] < 1 for r in rows)
