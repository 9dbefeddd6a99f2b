"""Latent tools: interpolation maths, walk, norms, dynamics, and `gantools latent`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import gantools
from gantools import inversion, latent
from gantools.cli import main

RUN = dict(arch="dcgan", loss="wgan-gp", dataset="digits", arch_opts={"width": 8}, z_dim=6, batch_size=32,
           steps=2, n_critic=1, ema=0.0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lat") / "run"
    gantools.train(out=out, **RUN)
    return gantools.load_run(out)


def test_lerp_and_slerp_end_points_and_norms():
    z0, z1 = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 2.0])
    for method in ("lerp", "slerp"):
        path = latent.interpolate(z0, z1, 5, method)
        torch.testing.assert_close(path[0], z0)
        torch.testing.assert_close(path[-1], z1)
    mid = latent.interpolate(z0, z1, 3, "slerp")[1]
    # Half-way along the quarter circle, with the norm half-way between 3 and 2.
    torch.testing.assert_close(mid, 2.5 * torch.tensor([0.5 ** 0.5, 0.5 ** 0.5]))
    torch.testing.assert_close(latent.interpolate(z0, z1, 3, "lerp")[1], torch.tensor([1.5, 1.0]))
    renormed = latent.interpolate(z0, z1, 4, "lerp", norm=7.0)
    torch.testing.assert_close(renormed.norm(dim=1), torch.full((4,), 7.0))


def test_slerp_of_parallel_latents_is_lerp():
    z0 = torch.tensor([1.0, 1.0])
    torch.testing.assert_close(latent.slerp(z0, 2 * z0, torch.tensor([0.5])), torch.tensor([[1.5, 1.5]]))


class _Exact:
    """An 'inverter' that knows the latents of the images it was built with (for exact checks)."""

    def __init__(self, table):
        self.table = table

    def encode(self, images):
        return self.table(images)


def test_dynamics_of_a_fixed_point_and_a_contraction(run):
    z0 = torch.randn(4, 6)
    fixed = latent.dynamics(run, _Exact(lambda x: z0), z0, iters=3)
    torch.testing.assert_close(fixed["step_l1"], torch.zeros(3))
    torch.testing.assert_close(fixed["cosine_distance_to_z0"], torch.zeros(3), atol=1e-6, rtol=0)
    # A fake inverter that halves the code each round trip: L1 steps halve, the direction stays.
    state = {"z": z0}

    def halve(images):
        state["z"] = state["z"] / 2
        return state["z"]

    shrink = latent.dynamics(run, _Exact(halve), z0, iters=3)
    l1 = z0.abs().sum(1).mean()
    torch.testing.assert_close(shrink["step_l1"], torch.stack([l1 / 2, l1 / 4, l1 / 8]))
    torch.testing.assert_close(shrink["cosine_distance_to_z0"], torch.zeros(3), atol=1e-6, rtol=0)


def test_walk_direction_and_random_of_equal_norm(run):
    z, z_prime = torch.randn(6), torch.randn(6)
    calls = iter([z[None], z_prime[None]])
    result = latent.walk(run, _Exact(lambda x: next(calls)), torch.zeros(1, 16, 16), torch.tensor([0.0, 1.0, 2.0]))
    d = z_prime - z
    torch.testing.assert_close(result["along"], torch.stack([z_prime, z_prime + d, z_prime + 2 * d]))
    r = result["random"][1] - z_prime
    torch.testing.assert_close(r.norm(), d.norm())
    torch.testing.assert_close(result["random"][0], z_prime)


def test_norms_compare_encodings_with_the_prior(run):
    images = torch.zeros(50, 1, 16, 16)
    result = latent.norms(run, _Exact(lambda x: torch.full((len(x), 6), 2.0)), images)
    torch.testing.assert_close(result["encoded"], torch.full((50,), 2.0 * 6 ** 0.5))
    assert result["prior"].shape == (50,) and 1.0 < float(result["prior"].median()) < 4.0


def _cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_cli_latent_commands(run, tmp_path, capsys):
    base = [str(run.directory), "--inverter", "gradient", "--inverter-opt", "steps=3", "--n", "8"]
    code, out, err = _cli(["latent", "interpolate", *base, "--steps", "5", "--renorm",
                           "--out", str(tmp_path / "i.png")], capsys)
    assert code == 0, err
    saved = np.load(tmp_path / "i.npz")
    assert saved["latents"].shape == (5, 6) and saved["images"].shape == (5, 1, 16, 16)
    np.testing.assert_allclose(np.linalg.norm(saved["latents"], axis=1), np.linalg.norm(saved["latents"][0]),
                               rtol=1e-5)
    np.save(tmp_path / "z.npy", np.eye(6, dtype=np.float32))
    code, out, err = _cli(["latent", "interpolate", *base, "--latents", str(tmp_path / "z.npy"), "--pair", "2", "4",
                           "--method", "lerp", "--steps", "3", "--out", str(tmp_path / "z.png")], capsys)
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "z.npz")["latents"][1], [0, 0, 0.5, 0, 0.5, 0], atol=1e-6)
    code, out, err = _cli(["latent", "walk", *base, "--multiples", "0,1,2", "--out", str(tmp_path / "w.png")], capsys)
    assert code == 0 and "|D| = |R|" in out, err
    code, out, err = _cli(["latent", "norms", *base, "--out", str(tmp_path / "n.png")], capsys)
    assert code == 0, err
    assert set(json.loads((tmp_path / "n.json").read_text())) == {"encoded", "prior"}
    code, out, err = _cli(["latent", "dynamics", *base, "--iters", "2", "--out", str(tmp_path / "dyn")], capsys)
    assert code == 0, err
    rows = json.loads((tmp_path / "dyn" / "dynamics.json").read_text())
    assert [r["iteration"] for r in rows] == [1, 2]
    assert (tmp_path / "dyn" / "dynamics.png").stat().st_size > 0
    assert np.load(tmp_path / "dyn" / "latents.npy").shape == (8, 6)


@pytest.mark.parametrize("extra,message", [
    (["interpolate", "--pair", "0", "99", "--out", "x.png"], "--pair 0 99: there are 8 images"),
    (["walk", "--multiples", "a,b", "--out", "x.png"], "--multiples must be comma-separated numbers"),
    (["interpolate", "--method", "cubic", "--out", "x.png"], "'cubic' is not one of"),
])
def test_cli_latent_user_errors(run, capsys, extra, message):
    args = ["latent", extra[0], str(run.directory), "--inverter", "gradient", "--n", "8", *extra[1:]]
    code, out, err = _cli(args, capsys)
    assert code != 0 and message in err and "Traceback" not in err
