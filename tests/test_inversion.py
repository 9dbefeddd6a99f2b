"""gantools.inversion (fit, load and score any inverter) and `gantools invert`; plugins: tests/plugins/inverters/."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import gantools
from gantools import inversion
from gantools.cli import main
from gantools.errors import UserError

# A tiny DCGAN on 16 px digits (train split, so the test split is held out); its quality does not
# matter here (the plugins' tests in tests/plugins/inverters train a better one).
RUN = dict(arch="dcgan", loss="wgan-gp", dataset="digits", dataset_opts={"split": "train"},
           arch_opts={"width": 8}, z_dim=8, batch_size=32, steps=4, n_critic=1, log_every=2,
           sample_every=4, checkpoint_every=4, ema=0.0)


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
    """The encoder fitted for a few steps (saved into the run): an inverter to score and apply."""
    inversion.fit(run, "encoder", {"width_scale": 0.0625, "lr": 1e-3, "log_every": 5}, steps=10)
    return inversion.load(run, "encoder")


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
