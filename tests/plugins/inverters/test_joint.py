"""Joint inverters (ali, vaegan) train with the GAN through the trainer's hooks."""
from __future__ import annotations

import json

import pytest
import torch

import gantools
from gantools import checkpoint as ckpt
from gantools import inversion
from gantools.cli import main
from gantools.errors import UserError

BASE = dict(arch="dcgan", dataset="digits", arch_opts={"width": 8}, z_dim=8, batch_size=16, steps=6,
            n_critic=1, ema=0.0, log_every=1, checkpoint_every=3, sample_every=6)


@pytest.mark.parametrize("loss", ["gan", "wgan-gp"])
def test_ali_trains_end_to_end_and_encodes(tmp_path, loss):
    out = tmp_path / loss
    run = gantools.train(out=out, loss=loss, inverter="ali", **BASE)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(torch.isfinite(torch.tensor(r["d_loss"])) for r in rows)
    inv = inversion.load(gantools.load_run(out), "ali")
    z = inversion.encode(inv, torch.rand(5, 1, 16, 16) * 2 - 1)
    assert z.shape == (5, 8) and torch.isfinite(z).all()
    assert run.config["inverter"] == "ali"


def test_ali_updates_the_encoder_with_the_generator(tmp_path):
    from gantools.config import resolve
    from gantools.registry import default_registry
    from gantools.trainer import Trainer

    config, sources = resolve(default_registry(), {**BASE, "loss": "gan", "inverter": "ali"})
    trainer = Trainer(default_registry(), config, sources, tmp_path / "t", progress=False)
    encoder = [p.detach().clone() for p in trainer.joint.encoder.parameters()]
    joint_d = [p.detach().clone() for p in trainer.joint.discriminator.parameters()]
    critic = [p.detach().clone() for p in trainer.models.critic.parameters()]
    trainer.critic_step()
    # The joint discriminator trains in the critic step; the encoder does not.
    assert any(not torch.equal(a, b) for a, b in zip(joint_d, trainer.joint.discriminator.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(encoder, trainer.joint.encoder.parameters()))
    trainer.generator_step()
    assert any(not torch.equal(a, b) for a, b in zip(encoder, trainer.joint.encoder.parameters()))
    # The architecture's own critic is not used.
    assert all(torch.equal(a, b) for a, b in zip(critic, trainer.models.critic.parameters()))



@pytest.mark.parametrize("stochastic", [True, False])
def test_ali_encoder_samples_in_training_and_encodes_its_mean(tmp_path, stochastic):
    from gantools.config import resolve
    from gantools.registry import default_registry
    from gantools.trainer import Trainer

    config, sources = resolve(default_registry(), {**BASE, "loss": "gan", "inverter": "ali",
                                                   "inverter_opts": {"stochastic": stochastic}})
    trainer = Trainer(default_registry(), config, sources, tmp_path / "t", progress=False)
    ali, x = trainer.joint, trainer.real_batch()
    a, b = ali._sample(x), ali._sample(x)
    assert a.shape == b.shape == (x.shape[0], 8)
    if stochastic:
        # q(z|x) starts near N(mu, 1): two draws differ by about sqrt(2) per dimension.
        assert 1.0 < (a - b).std().item() < 2.0
        ali.encoder.eval()
        mu = ali.encoder(x)[:, :8]
    else:
        torch.testing.assert_close(a, b)
        mu = a
    z = ali.encode(x)
    torch.testing.assert_close(z, mu)
    torch.testing.assert_close(ali.encode(x), z)  # encoding is deterministic


def test_ali_refuses_bad_options(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--arch", "dcgan", "--dataset", "digits", "--inverter", "ali", "--inverter-opt",
              "dropout=1.0", "--steps", "1", "--out", str(tmp_path / "z")])
    assert info.value.code != 0
    err = capsys.readouterr().err
    assert "dropout in [0, 1)" in err and "Traceback" not in err

def test_vaegan_trains_and_gives_the_encoder_no_gan_gradient(tmp_path):
    out = tmp_path / "vaegan"
    gantools.train(out=out, loss="gan", inverter="vaegan", **BASE)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("vae_recon" in r and "vae_kl" in r for r in rows)
    inv = inversion.load(gantools.load_run(out), "vaegan")
    assert inversion.encode(inv, torch.zeros(3, 1, 16, 16)).shape == (3, 8)

    from gantools.config import resolve
    from gantools.registry import default_registry
    from gantools.trainer import Trainer

    config, sources = resolve(default_registry(), {**BASE, "loss": "gan", "inverter": "vaegan",
                                                   "inverter_opts": {"recon_weight": 0.0, "kl_weight": 0.0}})
    trainer = Trainer(default_registry(), config, sources, tmp_path / "t", progress=False)
    z = trainer.prior(4)
    loss, _ = trainer.joint.generator_loss(trainer, z, trainer.models.generator(z))
    loss.backward()
    # With the VAE terms off, the adversarial term alone leaves the encoder without gradient.
    assert all(p.grad is None or not p.grad.any() for p in trainer.joint.encoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in trainer.models.generator.parameters())


def test_joint_inverter_resumes_exactly(tmp_path):
    settings = {**BASE, "loss": "gan", "inverter": "ali", "steps": 6}
    straight = gantools.train(out=tmp_path / "a", **settings)
    gantools.train(out=tmp_path / "b", **{**settings, "steps": 3})
    resumed = gantools.train(out=tmp_path / "b", resume=True, steps=6)
    a = ckpt.load(tmp_path / "a" / "checkpoints" / "latest.pt")["inverter"]["encoder"]
    b = ckpt.load(tmp_path / "b" / "checkpoints" / "latest.pt")["inverter"]["encoder"]
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert straight.step == resumed.step == 6


def test_post_hoc_inverters_are_refused_at_training_time(tmp_path, capsys):
    with pytest.raises(UserError, match="fitted after training .*joint one"):
        gantools.train(out=tmp_path / "x", loss="gan", inverter="encoder", **BASE)
    with pytest.raises(UserError, match="inverter options need --inverter"):
        gantools.train(out=tmp_path / "y", loss="gan", inverter_opts={"width_scale": 1}, **BASE)
    with pytest.raises(SystemExit) as info:
        main(["run", "--arch", "mlp", "--dataset", "toy:8gaussians", "--inverter", "ali", "--steps", "1",
              "--out", str(tmp_path / "z")])
    assert info.value.code != 0
    assert "needs image data" in capsys.readouterr().err
