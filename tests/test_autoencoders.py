"""Autoencoders trained through `gantools run --loss ae|dae|vae`: objectives, runs, inversion, refusals."""
from __future__ import annotations

import json

import pytest
import torch

import gantools
from gantools import inversion, stepcontext
from gantools.registry import default_registry

REGISTRY = default_registry()
# dcgan at 16 px on digits, narrow: a run of a few dozen steps takes seconds.
SMALL = dict(arch="dcgan", dataset="digits", image_size=16, arch_opts={"width": 8}, z_dim=8, batch_size=32,
             log_every=10, sample_every=1000, checkpoint_every=1000)


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


class _Fixed(torch.nn.Module):
    """An 'encoder' that returns a fixed code for every input."""

    def __init__(self, code):
        super().__init__()
        self.code = code

    def forward(self, x):
        return self.code.expand(x.shape[0], -1)


def test_vae_objective_is_the_negative_elbo():
    vae = REGISTRY.create("losses", "vae", {"recon": "mse", "beta": 2.0})
    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.0, -2.0]])
    real = torch.zeros(3, 1, 2, 2)
    decoder = lambda z: torch.full((z.shape[0], 1, 2, 2), 0.1)  # noqa: E731  (constant reconstruction)
    loss, logs = vae.reconstruction_loss(_Fixed(torch.cat([mu, logvar], 1)), decoder, real)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum()
    assert float(logs["kl"]) == pytest.approx(float(kl), rel=1e-6)
    assert float(logs["recon"]) == pytest.approx(4 * 0.01, rel=1e-5)  # 4 values of (0.1 - 0)^2, summed
    assert float(loss) == pytest.approx(4 * 0.01 + 2.0 * float(kl), rel=1e-5)
    assert float(logs["elbo"]) == pytest.approx(-float(loss))
    torch.testing.assert_close(vae.encode(_Fixed(torch.cat([mu, logvar], 1)), real), mu.expand(3, -1))


def test_vae_draws_through_the_reparametrisation():
    """The decoder sees mu + sigma * eps: its input's spread is sigma, and the cost differentiates to logvar."""
    vae = REGISTRY.create("losses", "vae", {"recon": "mse"})
    seen = []
    code = torch.tensor([[1.0, 0.0, 0.0, 2 * torch.log(torch.tensor(3.0))]], requires_grad=True)  # sigma (1, 3)

    def decoder(z):
        seen.append(z.detach())
        return z.sum(1).view(-1, 1, 1, 1)

    torch.manual_seed(0)
    loss, _ = vae.reconstruction_loss(_Fixed(code), decoder, torch.zeros(20000, 1, 1, 1))
    z = seen[0]
    assert z[:, 0].mean() == pytest.approx(1.0, abs=0.05) and z[:, 1].std() == pytest.approx(3.0, rel=0.03)
    loss.backward()
    assert code.grad[0, 3] != 0  # the log-variance gets a gradient through the draw


def test_bce_reconstruction_reads_intensities():
    ae = REGISTRY.create("losses", "ae", {"recon": "bce"})
    real = torch.tensor([[[[1.0, -1.0]]]])  # intensities 1 and 0
    perfect, _ = ae.reconstruction_loss(torch.nn.Identity(), lambda z: real.clone(), real)
    half, _ = ae.reconstruction_loss(torch.nn.Identity(), lambda z: torch.zeros_like(real), real)
    assert float(perfect) < 1e-4 and float(half) == pytest.approx(2 * torch.log(torch.tensor(2.0)).item(), rel=1e-5)


def test_denoising_corruption_has_the_asked_strength():
    dae = REGISTRY.create("losses", "dae", {"noise": 0.3, "drop": 0.25})
    torch.manual_seed(0)
    clean = torch.zeros(200, 1, 16, 16)
    corrupted = dae.corrupt(clean)
    dropped = corrupted == -1.0
    assert dropped.float().mean() == pytest.approx(0.25, abs=0.01)
    assert corrupted[~dropped].std() == pytest.approx(0.3, rel=0.03)
    # The encoder is trained on corrupted inputs; encoding for inversion reads clean ones.
    assert torch.equal(dae.encode(torch.nn.Identity(), clean), clean)
    with pytest.raises(gantools.UserError, match="needs some corruption"):
        REGISTRY.create("losses", "dae", {"noise": 0.0})


def test_dae_corruption_is_drawn_for_the_global_batch():
    dae = REGISTRY.create("losses", "dae", {"noise": 0.5})
    torch.manual_seed(3)
    whole = dae.corrupt(torch.zeros(8, 4))
    torch.manual_seed(3)
    with stepcontext.step(rank=1, world=2):
        half = dae.corrupt(torch.zeros(4, 4))
    torch.testing.assert_close(half, whole[4:])


@pytest.mark.parametrize("loss", ["ae", "dae", "vae"])
def test_autoencoder_run_learns_saves_and_inverts(tmp_path, loss):
    run = gantools.train(out=tmp_path / "run", loss=loss, steps=150, progress=False, **SMALL)
    rows = [r for r in _rows(tmp_path / "run") if "g_loss" in r]
    assert "d_loss" not in rows[0] and rows[-1]["recon"] < 0.8 * rows[0]["recon"]  # it learns to reconstruct
    assert run.critic is None and run.encoder is not None and run.config["ema"] == 0.0  # digits' ae recipe
    loaded = gantools.load_run(tmp_path / "run")
    images = run.sample(8, seed=0)
    inverter = inversion.load(loaded, "autoencoder")
    z = inverter.encode(images)
    assert z.shape == (8, 8)
    torch.testing.assert_close(inversion.encode(inversion.load(run, "autoencoder"), images), z, rtol=0, atol=0)
    real = gantools.data.run_images(loaded, 256)
    result = inversion.evaluate(loaded, inverter, images=real, n_synthetic=32)["real"]
    # Better than the best constant reconstruction (the mean image), and like the image, not a random one.
    assert result["mse"] < float((real - real.mean(0)).pow(2).mean())
    assert result["cosine"] > result["cosine_random_pairs"] + 0.2


def test_autoencoder_resumes_exactly(tmp_path):
    gantools.train(out=tmp_path / "whole", loss="vae", steps=6, progress=False, **SMALL)
    gantools.train(out=tmp_path / "part", loss="vae", steps=3, progress=False, **SMALL)
    gantools.train(out=tmp_path / "part", resume=True, steps=6, progress=False)
    whole = torch.load(tmp_path / "whole" / "checkpoints" / "latest.pt", weights_only=True)
    part = torch.load(tmp_path / "part" / "checkpoints" / "latest.pt", weights_only=True)
    for key in ("generator", "encoder"):
        for name, tensor in whole[key].items():
            torch.testing.assert_close(part[key][name], tensor, rtol=0, atol=0)


def test_bad_autoencoder_input_is_one_line(tmp_path, cli_error, monkeypatch):
    base = ["run", "--steps", "1", "--no-progress", "--out", str(tmp_path / "r")]
    assert "assumes the normal prior" in cli_error([*base, "--loss", "vae", "--prior", "uniform"])
    assert "not conditional" in cli_error([*base, "--loss", "ae", "--conditional"])
    assert "which has none" in cli_error([*base, "--loss", "dae", "--augment", "diffaugment"])
    assert "trains its own encoder" in cli_error([*base, "--loss", "ae", "--inverter", "ali"])
    from gantools_plugins.architectures.mlp import MLP

    monkeypatch.delattr(MLP, "encoder_trunk")  # an architecture without an encoder
    assert "has none; use dcgan" in cli_error([*base, "--loss", "ae", "--arch", "mlp"])
    gantools.train(out=tmp_path / "gan", steps=1, progress=False, **SMALL)
    assert "encodes with the encoder of an autoencoder run" in cli_error(
        ["invert", "eval", str(tmp_path / "gan"), "--inverter", "autoencoder"])
