"""The gradient inverter: per-image Adam on z with restarts and the prior respected."""
from __future__ import annotations

import torch

import gantools
from gantools import inversion
from gantools_plugins.inverters.gradient import best_of_restarts


def test_gradient_inversion_reconstructs_generated_images(run, synthetic, mse):
    z, x = synthetic()
    inv = inversion.create(run, "gradient", {"steps": 150, "restarts": 2})
    random_mse = float((inversion.decode(run, torch.randn_like(z)) - x).pow(2).mean())
    assert mse(inv, x) < 0.3 * random_mse


def test_gradient_keeps_the_best_restart():
    z = torch.arange(12.0).view(6, 2)  # 3 restarts x 2 images
    error = torch.tensor([5.0, 1.0, 0.5, 3.0, 2.0, 0.1])
    torch.testing.assert_close(best_of_restarts(z, error, 2), torch.tensor([[4.0, 5.0], [10.0, 11.0]]))


def test_gradient_prior_handling(run, synthetic):
    _, x = synthetic(n=4)
    z = inversion.encode(inversion.create(run, "gradient", {"steps": 20, "prior_mode": "sphere"}), x)
    torch.testing.assert_close(z.norm(dim=1), torch.full((4,), run.config["z_dim"] ** 0.5))
    # A strong log-prior penalty pulls the codes towards 0.
    weak = inversion.encode(inversion.create(run, "gradient", {"steps": 60, "prior_weight": 0.0}), x)
    strong = inversion.encode(inversion.create(run, "gradient", {"steps": 60, "prior_weight": 50.0}), x)
    assert strong.norm(dim=1).mean() < 0.5 * weak.norm(dim=1).mean()


def test_uniform_prior_latents_are_clipped(tmp_path, run_settings):
    out = tmp_path / "u"
    gantools.train(out=out, **{**run_settings, "prior": "uniform", "steps": 2})
    u = gantools.load_run(out)
    x = inversion.decode(u, torch.rand(4, u.config["z_dim"]) * 2 - 1)  # generations of uniform latents
    z = inversion.encode(inversion.create(u, "gradient", {"steps": 30, "lr": 0.5}), x)
    assert z.abs().max() <= 1.0
