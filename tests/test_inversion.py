"""Inverters (encoder, gradient, hybrid), the evaluator and `gantools invert`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import gantools
from gantools import inversion
from gantools.cli import main
from gantools.errors import UserError
from gantools.models import sample_prior

# A small DCGAN on 16 px digits (train split, so the test split is held out).
RUN = dict(arch="dcgan", loss="wgan-gp", dataset="digits", dataset_opts={"split": "train"},
           arch_opts={"width": 8}, z_dim=8, batch_size=32, steps=40, n_critic=1, log_every=20,
           sample_every=40, checkpoint_every=40, ema=0.0)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("inv") / "run"
    gantools.train(out=out, **RUN)
    return out


@pytest.fixture(scope="module")
def run(run_dir):
    return gantools.load_run(run_dir)


@pytest.fixture(scope="module")
def fitted(run):
    """The encoder fitted briefly (saved into the run)."""
    inversion.fit(run, "encoder", {"width_scale": 0.0625, "lr": 1e-3, "log_every": 25}, steps=150)
    return inversion.load(run, "encoder")


def _synthetic(run, n=24, seed=1):
    z = sample_prior(n, run.config["z_dim"], run.config["prior"], torch.device("cpu"),
                     torch.Generator().manual_seed(seed))
    return z, inversion.decode(run, z)


def _mse(run, inv, x):
    return float((inversion.decode(run, inversion.encode(inv, x)) - x).pow(2).mean())


def test_encoder_fit_logs_costs_and_recovers_latents(run, fitted):
    history = [json.loads(line) for line in open(run.directory / "inverters" / "encoder.jsonl")]
    assert [row["step"] for row in history] == [25, 50, 75, 100, 125, 150]
    assert set(history[0]) == {"step", "z_cost", "x_cost", "total"}
    assert history[-1]["total"] < 0.8 * history[0]["total"]
    assert (run.directory / "inverters" / "encoder.png").stat().st_size > 0
    result = inversion.evaluate(run, fitted, None, n_synthetic=200)
    s = result["synthetic"]
    # Better than guessing: well under the distance between random prior pairs.
    assert s["latent_l1"] < 0.7 * s["latent_l1_random_pairs"]
    assert result["seconds_per_image"] > 0


def test_fitted_encoder_reloads_identically(run, fitted):
    _, x = _synthetic(run)
    again = inversion.load(run, "encoder")
    torch.testing.assert_close(inversion.encode(again, x), inversion.encode(fitted, x))


def test_gradient_inversion_reconstructs_generated_images(run):
    z, x = _synthetic(run)
    inv = inversion.create(run, "gradient", {"steps": 150, "restarts": 2})
    random_mse = float((inversion.decode(run, torch.randn_like(z)) - x).pow(2).mean())
    assert _mse(run, inv, x) < 0.3 * random_mse


def test_gradient_keeps_the_best_restart(run):
    from gantools_plugins.inverters.gradient import best_of_restarts

    z = torch.arange(12.0).view(6, 2)  # 3 restarts x 2 images
    error = torch.tensor([5.0, 1.0, 0.5, 3.0, 2.0, 0.1])
    torch.testing.assert_close(best_of_restarts(z, error, 2), torch.tensor([[4.0, 5.0], [10.0, 11.0]]))


def test_gradient_prior_handling(run):
    _, x = _synthetic(run, n=4)
    z = inversion.encode(inversion.create(run, "gradient", {"steps": 20, "prior_mode": "sphere"}), x)
    torch.testing.assert_close(z.norm(dim=1), torch.full((4,), run.config["z_dim"] ** 0.5))
    # A strong log-prior penalty pulls the codes towards 0.
    weak = inversion.encode(inversion.create(run, "gradient", {"steps": 60, "prior_weight": 0.0}), x)
    strong = inversion.encode(inversion.create(run, "gradient", {"steps": 60, "prior_weight": 50.0}), x)
    assert strong.norm(dim=1).mean() < 0.5 * weak.norm(dim=1).mean()


def test_uniform_prior_latents_are_clipped(tmp_path):
    out = tmp_path / "u"
    gantools.train(out=out, **{**RUN, "prior": "uniform", "steps": 2})
    u = gantools.load_run(out)
    _, x = _synthetic(u, n=4)
    z = inversion.encode(inversion.create(u, "gradient", {"steps": 30, "lr": 0.5}), x)
    assert z.abs().max() <= 1.0


def test_hybrid_refines_the_encoder(run, fitted):
    _, x = _synthetic(run, seed=3)
    plain = {"steps": 80, "prior_mode": "none"}
    refined = inversion.load(run, "hybrid", {**plain, "domain_weight": 0.0})
    assert _mse(run, refined, x) < 0.8 * _mse(run, fitted, x)

    # The in-domain term keeps z a code the encoder reproduces from G(z).
    def domain_gap(inv):
        z = inversion.encode(inv, x)
        return float((z - inversion.encode(fitted, inversion.decode(run, z))).pow(2).mean())

    held = inversion.load(run, "hybrid", {**plain, "domain_weight": 100.0})
    assert domain_gap(held) < domain_gap(refined)


def test_evaluate_real_images_and_baselines(run, fitted):
    real = torch.rand(30, *run.data_shape) * 2 - 1
    result = inversion.evaluate(run, fitted, real, n_synthetic=50)
    r = result["real"]
    assert r["n"] == 30
    assert r["psnr_db"] == pytest.approx(10 * np.log10(4 / r["mse"]))
    assert -1 <= r["cosine"] <= 1 and -1 <= r["cosine_random_pairs"] <= 1


def test_cosine_of_identical_images_is_one():
    x = torch.randn(5, 1, 4, 4)
    mean = x.mean(0, keepdim=True)
    torch.testing.assert_close(inversion._mean_subtracted_cosine(x, x, mean), torch.ones(5))


def test_errors_are_user_errors(run, tmp_path):
    with pytest.raises(UserError, match="needs no fitting"):
        inversion.fit(run, "gradient")
    with pytest.raises(UserError, match="unknown inverter 'nosuch'"):
        inversion.create(run, "nosuch")
    fresh = tmp_path / "fresh"
    gantools.train(out=fresh, **{**RUN, "steps": 1})
    with pytest.raises(UserError, match="not fitted .*gantools invert fit"):
        inversion.load(gantools.load_run(fresh), "hybrid")
    points = tmp_path / "points"
    gantools.train(out=points, arch="mlp", loss="wgan-gp", dataset="toy:8gaussians", dataset_opts={"n": 64},
                   z_dim=2, batch_size=32, steps=1)
    with pytest.raises(UserError, match="needs a run trained on images"):
        inversion.create(gantools.load_run(points), "gradient")


def _cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_cli_invert_npz_of_other_size_keeps_order(run_dir, fitted, tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 24, 24), dtype=np.uint8)
    images[3] = 0  # one black image: its reconstruction input must stay at index 3
    np.savez(tmp_path / "in.npz", images=images)
    code, out, err = _cli(["invert", str(run_dir), "--inverter", "encoder", "--images", str(tmp_path / "in.npz"),
                           "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    z = np.load(tmp_path / "out" / "latents.npy")
    rec = np.load(tmp_path / "out" / "reconstructions.npz")
    assert z.shape == (6, 8)
    assert rec["images"].shape == rec["inputs"].shape == (6, 1, 16, 16)
    assert rec["images"].min() >= -1 and rec["images"].max() <= 1
    np.testing.assert_allclose(rec["inputs"][3], -1.0)
    errors = json.loads((tmp_path / "out" / "errors.json").read_text())
    assert [row["index"] for row in errors] == list(range(6))
    assert (tmp_path / "out" / "side_by_side.png").stat().st_size > 0
    assert "inverted 6 images with encoder" in out


def test_cli_invert_fit_and_eval(run_dir, tmp_path, capsys):
    code, out, err = _cli(["invert", "fit", str(run_dir), "--inverter", "encoder", "--steps", "3",
                           "--inverter-opt", "width_scale=0.0625", "--inverter-opt", "log_every=1"], capsys)
    assert code == 0, err
    assert "step 3: z_cost" in err and "encoder.pt" in out
    code, out, err = _cli(["invert", "eval", str(run_dir), "--inverter", "gradient", "--n", "8",
                           "--max-images", "6", "--inverter-opt", "steps=5"], capsys)
    assert code == 0, err
    assert "mean sum|z - z'|" in out and "digits:split=test (held out)" in out
    saved = json.loads((run_dir / "inverters" / "eval_gradient.json").read_text())
    assert saved["real"]["n"] == 6 and saved["synthetic"]["n"] == 8


@pytest.mark.parametrize("args,message", [
    (["invert", "{run}", "--inverter", "encoder", "--images", "/no/such", "--out", "x"], "no images at /no/such"),
    (["invert", "fit", "{run}", "--inverter", "gradient"], "needs no fitting"),
    (["invert", "fit", "{run}", "--inverter", "encoder", "--inverter-opt", "depth=2"], "has no option 'depth'"),
    (["invert", "eval", "/no/run", "--inverter", "gradient"], "no run directory at /no/run"),
])
def test_cli_invert_user_errors(run_dir, capsys, args, message):
    code, out, err = _cli([a.replace("{run}", str(run_dir)) for a in args], capsys)
    assert code != 0
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
