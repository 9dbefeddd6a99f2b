"""Latent tools: interpolation maths, walk, norms, dynamics, the latent studies (norms of sets on
models, crossgrid, cosines, arithmetic, dynamics classified) and `gantools latent`."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import gantools
from gantools import inversion, latent, studyplots
from gantools.cli import main
from gantools.errors import UserError
from gantools.models import sample_prior

RUN = dict(arch="dcgan", loss="wgan-gp", dataset="digits", arch_opts={"width": 8}, z_dim=6, batch_size=32,
           steps=2, n_critic=1, ema=0.0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lat") / "run"
    gantools.train(out=out, **RUN)
    return gantools.load_run(out)


@pytest.fixture(scope="module")
def run2(tmp_path_factory):
    """A second tiny digits run, of the same image shape and another z_dim."""
    out = tmp_path_factory.mktemp("lat2") / "other"
    gantools.train(out=out, **{**RUN, "z_dim": 4, "seed": 1})
    return gantools.load_run(out)


GRADIENT = ["--inverter", "gradient", "--inverter-opt", "steps=3"]


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
    assert json.loads((tmp_path / "w.json").read_text())["start"] == {"from": "image", "index": 0, "seed": 0}
    # One run, as before: now a box for its own data beside N(0, I) (the JSON holds box statistics).
    code, out, err = _cli(["latent", "norms", *base, "--out", str(tmp_path / "n.png")], capsys)
    assert code == 0, err
    boxes = json.loads((tmp_path / "n.json").read_text())["boxes"]
    assert [b["label"] for b in boxes] == ["digits_on_run", "N(0,I) d=6"] and boxes[0]["n"] == 8
    # dynamics with the old flags (--n 8 images; the default --trajectories is 8): now per trajectory.
    code, out, err = _cli(["latent", "dynamics", *base, "--iters", "2", "--out", str(tmp_path / "dyn")], capsys)
    assert code == 0, err
    record = json.loads((tmp_path / "dyn" / "dynamics.json").read_text())
    assert len(record["trajectories"]) == 8 and all(len(t["step_l1"]) == 2 for t in record["trajectories"])
    assert record["snapshots"] == [0, 1, 2]
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


# ---- dynamics: iteration and classification on made-up maps ---------------------------------
C = torch.tensor([1.0, 2.0, -1.0])
ROTATE = torch.tensor([[math.cos(1.0), -math.sin(1.0), 0.0], [math.sin(1.0), math.cos(1.0), 0.0], [0.0, 0.0, 1.0]])


def _mixed_map(kinds: torch.Tensor):
    """Per trajectory: 'half' z -> 0.5 z + c (fixed point 2c), 'flip' z -> c - z (a 2-cycle away from
    c/2, c/2 itself fixed), 'roll' (a 3-cycle of the coordinates), 'rotate' (by 1 radian: never
    repeats) or 'double' z -> 2z (explodes)."""
    maps = {0: lambda z: 0.5 * z + C, 1: lambda z: C - z, 2: lambda z: z.roll(1, dims=1),
            3: lambda z: z @ ROTATE.T, 4: lambda z: 2 * z}

    def step(z):
        out = torch.empty_like(z)
        for kind, f in maps.items():
            out[kinds == kind] = f(z[kinds == kind])
        return out
    return step


def test_iterate_and_classify_a_mix_of_known_maps():
    kinds = torch.tensor([0, 0, 0, 1, 1, 1, 2, 3, 4])
    z0 = torch.randn(9, 3, generator=torch.Generator().manual_seed(0)) + 3.0
    z0[5] = C / 2  # the flip's fixed point
    z0[6] = torch.tensor([1.0, 2.0, 3.0])
    result = latent.iterate(_mixed_map(kinds), z0, 300, snapshots=[0, 1, 300], tail=9)
    classes = latent.classify(result["tail"], tol=1e-4, max_period=8)
    assert [c["class"] for c in classes] == ["fixed point"] * 3 + ["cycle", "cycle", "fixed point", "cycle",
                                                                  "no convergence", "diverged"]
    assert [c["period"] for c in classes[3:7]] == [2, 2, None, 3]
    assert latent.class_counts(classes) == {"fixed point": 4, "cycle": 3, "no convergence": 1, "diverged": 1,
                                            "periods": {"2": 2, "3": 1}}
    torch.testing.assert_close(result["z"][:3], (2 * C).expand(3, 3))
    torch.testing.assert_close(result["snapshots"][0], z0)
    torch.testing.assert_close(result["snapshots"][1], _mixed_map(kinds)(z0))
    assert result["step_l1"].shape == (9, 300) and result["tail"].shape == (9, 9, 3)
    # The 2-cycle's steps stay |z0 - (c - z0)|_1; its cosine distance to z0 alternates 1 - cos(z1, z0) and 0.
    torch.testing.assert_close(result["step_l1"][3], (2 * z0[3] - C).abs().sum().expand(300))
    assert float(result["cosine_distance_to_z0"][3, 1]) == pytest.approx(0.0, abs=1e-6)


def test_iterate_records_every_trajectory_and_keeps_only_a_tail():
    z0 = torch.tensor([[2.0, -4.0], [1.0, 1.0]])
    result = latent.iterate(lambda z: 0.5 * z, z0, 5, snapshots=[2], tail=3)
    halves = torch.tensor([0.5 ** k for k in range(1, 6)])
    torch.testing.assert_close(result["step_l1"], torch.stack([6 * halves, 2 * halves]))
    torch.testing.assert_close(result["cosine_distance_to_z0"], torch.zeros(2, 5), atol=1e-6, rtol=0)
    assert sorted(result["snapshots"]) == [2]
    torch.testing.assert_close(result["snapshots"][2], z0 / 4)
    torch.testing.assert_close(result["tail"], torch.stack([z0 / 8, z0 / 16, z0 / 32]))
    with pytest.raises(UserError, match="outside 0..5"):
        latent.iterate(lambda z: z, z0, 5, snapshots=[0, 6])
    with pytest.raises(UserError, match="iters must be at least 1"):
        latent.iterate(lambda z: z, z0, 0)


def test_classify_uses_a_tolerance_relative_to_the_norm():
    far = torch.tensor([[100.0, 0.0]])
    tail = torch.stack([far, far + torch.tensor([0.05, 0.0])])  # a step of 5e-4 |z|
    assert latent.classify(tail, tol=1e-3)[0]["class"] == "fixed point"
    assert latent.classify(tail, tol=1e-4)[0]["class"] == "no convergence"
    huge = torch.stack([far, far * 1e7])
    assert latent.classify(huge)[0]["class"] == "diverged"
    with pytest.raises(UserError, match="max_period >= 1"):
        latent.classify(tail, max_period=0)


def test_dynamics_study_classifies_the_round_trip(run):
    z0 = torch.randn(3, 6)
    result = latent.dynamics_study(run, _Exact(lambda x: z0), z0.clone(), 4)
    assert latent.class_counts(result["classes"])["fixed point"] == 3
    assert sorted(result["snapshots"]) == [0, 1, 4]


# ---- walks, norms, crossgrid, cosines, arithmetic -------------------------------------------
def test_walk_from_random_starts_from_the_prior_draw_of_the_seed(run):
    z_prime = torch.randn(1, 6)
    result = latent.walk_from_prior(run, _Exact(lambda x: z_prime), torch.tensor([0.0, 1.0]), seed=5)
    draw = sample_prior(1, 6, run.config["prior"], torch.device("cpu"), torch.Generator().manual_seed(5))[0]
    torch.testing.assert_close(result["z"], draw)
    torch.testing.assert_close(result["along"][1], z_prime[0] + (z_prime[0] - draw))
    torch.testing.assert_close((result["random"][1] - z_prime[0]).norm(), (z_prime[0] - draw).norm())


def test_summary_is_torch_median_and_quartiles():
    values = torch.tensor([4.0, 1.0, 3.0, 2.0])
    stats = latent.summary(values)
    assert stats["median"] == float(torch.median(values)) == 2.0  # the lower middle value
    assert (stats["q1"], stats["q3"], stats["min"], stats["max"], stats["n"]) == (1.75, 3.25, 1.0, 4.0, 4)
    assert stats["mean"] == 2.5 and stats["std"] == pytest.approx(float(values.std()))


def test_norm_study_boxes_per_pair_and_per_z_dim(run, run2, image_npz):
    sets = [latent.training_set(run), latent.image_set(image_npz)]
    boxes = latent.norm_study([(run, _Exact(lambda x: x.flatten(1)[:, :6])),
                               (run2, _Exact(lambda x: x.flatten(1)[:, :4]))], sets, n=10)
    assert [b["label"] for b in boxes] == ["digits_on_run", "images_on_run", "digits_on_other", "images_on_other",
                                           "N(0,I) d=4", "N(0,I) d=6"]
    digits = latent.training_set(run).load(run, 10)
    expected = digits.flatten(1)[:, :4].norm(dim=1)
    assert boxes[2]["median"] == float(torch.median(expected)) and boxes[2]["sqrt_z_dim"] == 2.0
    assert all(b["n"] == 10 for b in boxes)


def test_labelled_grid_geometry(tmp_path):
    tiles = torch.zeros(3, 4, 1, 16, 16)
    layout = studyplots.labelled_grid(tiles, tmp_path / "g.png", row_labels=["a", "bb", "ccc"],
                                      col_labels=["1", "2", "3", "4"])
    size = Image.open(tmp_path / "g.png").size
    assert size == (layout["width"], layout["height"])
    assert layout["height"] - layout["top_px"] == 3 * (16 + 2) * 4 + 2 * 4 and layout["left_px"] > 0
    assert studyplots.labelled_grid(tiles, tmp_path / "h.png")["width"] == 4 * 72 + 8


def test_apply_vector_at_strength_zero_is_the_plain_reconstruction(run):
    images = latent.training_set(run).load(run, 3)
    inverter = inversion.load(run, "gradient", {"steps": 3})
    tiles = latent.apply_vector(run, inverter, images, torch.ones(6), [-1.0, 0.0, 2.0])
    assert tiles.shape == (3, 4, 1, 16, 16)
    torch.testing.assert_close(tiles[:, 0], images)
    torch.testing.assert_close(tiles[:, 2], inversion.decode(run, inversion.encode(inverter, images)))
    z = inversion.encode(inverter, images)
    torch.testing.assert_close(tiles[:, 3], inversion.decode(run, z + 2 * torch.ones(6)))


def test_arithmetic_vector_and_counts(run):
    codes = _Exact(lambda x: x.flatten(1)[:, :6])
    result = latent.arithmetic(run, codes, "1", "0", strengths=[0.0, 1.0], n=2, count=5)
    labelled = latent.labelled_set(run)
    ones, zeros = labelled.images("1", 5), labelled.images("0", 5, skip=2)
    torch.testing.assert_close(result["vector"], ones.flatten(1)[:, :6].mean(0) - zeros.flatten(1)[:, :6].mean(0))
    assert result["record"]["counts"] == {"attribute": 5, "minus": 5, "targets": 2}
    torch.testing.assert_close(result["tiles"][:, 0], labelled.images("0", 2))
    with pytest.raises(UserError, match=r"no class 'cat' in digits; available classes: 0 \(178\), 1 \(182\)"):
        latent.arithmetic(run, codes, "cat", "0")


def test_reconstruction_cosines_agree_with_inversion_evaluate(run):
    images = latent.training_set(run).load(run, 12)
    inverter = inversion.load(run, "gradient", {"steps": 3})
    result = latent.reconstruction_cosines(run, inverter, images, seed=3)
    scored = inversion.evaluate(run, inverter, images, n_synthetic=2, seed=3)["real"]
    assert float(result["reconstruction"].mean()) == pytest.approx(scored["cosine"], abs=1e-6)
    assert float(result["random_pairs"].mean()) == pytest.approx(scored["cosine_random_pairs"], abs=1e-6)


# ---- the new commands -----------------------------------------------------------------------
def test_cli_norms_of_two_runs_and_two_sets(run, run2, image_npz, tmp_path, capsys):
    out = tmp_path / "norms.png"
    code, _, err = _cli(["latent", "norms", str(run.directory), str(run2.directory), *GRADIENT, "--images",
                         str(image_npz), "--images", str(image_npz), "--n", "6", "--out", str(out)], capsys)
    assert code == 0, err
    record = json.loads(out.with_suffix(".json").read_text())
    labels = [b["label"] for b in record["boxes"]]
    assert labels == ["images_on_run", "images#2_on_run", "images_on_other", "images#2_on_other",
                      "N(0,I) d=4", "N(0,I) d=6"]
    assert record["sqrt_z_dim"] == {"4": 2.0, "6": math.sqrt(6)}
    images = latent.image_set(image_npz).load(run2, 6)
    norms = inversion.encode(inversion.load(run2, "gradient", {"steps": 3}), images).norm(dim=1)
    box = record["boxes"][2]
    assert box["median"] == pytest.approx(float(torch.median(norms)), abs=1e-6) and box["n"] == 6
    assert {"mean", "std", "q1", "q3", "min", "max"} <= set(box) and out.stat().st_size > 0


def test_cli_crossgrid_rows_and_json(run, run2, image_npz, image_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANTOOLS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "cross.png"
    code, _, err = _cli(["latent", "crossgrid", str(run.directory), str(run2.directory), *GRADIENT, "--images",
                         str(image_npz), "--images", str(image_folder), "--n", "3", "--out", str(out)], capsys)
    assert code == 0, err
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["rows"] == ["images", "images_on_run", "images_on_other",
                              "images#2", "images#2_on_run", "images#2_on_other"]
    width, height = Image.open(out).size
    assert height == 2 * (1 + 2) * (16 + 2) * 4 + 2 * 4  # sets x (1 + runs) rows of 64 px tiles
    assert width - record["layout"]["left_px"] == 3 * (16 + 2) * 4 + 2 * 4  # n tiles per row
    assert [p["label"] for p in record["pairs"]] == [r for r in record["rows"] if "_on_" in r]
    assert all(p["mse"] >= 0 and -1 <= p["cosine"] <= 1 for p in record["pairs"])


def test_cli_walk_from_random_writes_the_prior_start(run, tmp_path, capsys):
    out = tmp_path / "walk.png"
    code, _, err = _cli(["latent", "walk", str(run.directory), *GRADIENT, "--from", "random", "--seed", "7",
                         "--multiples", "0,1", "--out", str(out)], capsys)
    assert code == 0, err
    record = json.loads(out.with_suffix(".json").read_text())
    draw = sample_prior(1, 6, run.config["prior"], torch.device("cpu"), torch.Generator().manual_seed(7))[0]
    np.testing.assert_allclose(record["z"], draw.numpy(), rtol=1e-6)
    assert record["start"] == {"from": "random", "seed": 7} and record["multiples"] == [0.0, 1.0]
    assert record["direction_norm"] > 0


def test_cli_dynamics_from_random(run, tmp_path, capsys):
    out = tmp_path / "dyn"
    code, text, err = _cli(["latent", "dynamics", str(run.directory), "--inverter", "gradient", "--inverter-opt",
                            "steps=1", "--from", "random", "--trajectories", "3", "--iters", "6", "--snapshots",
                            "0,2,6", "--no-progress", "--out", str(out)], capsys)
    assert code == 0, err
    record = json.loads((out / "dynamics.json").read_text())
    assert record["snapshots"] == [0, 2, 6] and record["iters"] == 6 and record["from"] == "random"
    assert len(record["trajectories"]) == 3 and all(len(t["cosine_distance_to_z0"]) == 6
                                                    for t in record["trajectories"])
    assert sum(record["counts"][k] for k in latent.CLASSES) == 3
    start = sample_prior(3, 6, run.config["prior"], torch.device("cpu"), torch.Generator().manual_seed(0))
    np.testing.assert_allclose(np.load(out / "snapshots.npz")["k_0"], start.numpy())
    assert Image.open(out / "snapshots.png").size == (record["snapshot_layout"]["width"],
                                                      record["snapshot_layout"]["height"])
    assert (out / "dynamics.png").stat().st_size > 0 and "iterations from 3 codes" in text


def test_cli_cosines(run, tmp_path, capsys):
    out = tmp_path / "cos.png"
    code, _, err = _cli(["latent", "cosines", str(run.directory), *GRADIENT, "--n", "10", "--bins", "20",
                         "--out", str(out)], capsys)
    assert code == 0, err
    record = json.loads(out.with_suffix(".json").read_text())
    assert len(record["histogram"]["bins"]) == 21 and record["histogram"]["bins"][0] == -1.0
    assert sum(record["histogram"]["reconstruction"]) == 10 == sum(record["histogram"]["random_pairs"])
    assert {"mean", "median", "q1", "q3"} <= set(record["reconstruction"]) and record["random_pairs"]["n"] == 10


def test_cli_arithmetic_on_the_runs_classes_and_on_a_class_folder(run, image_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANTOOLS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "arith.png"
    code, _, err = _cli(["latent", "arithmetic", str(run.directory), *GRADIENT, "--attribute", "1", "--minus", "0",
                         "--strengths", "0,1", "--n", "2", "--count", "4", "--out", str(out)], capsys)
    assert code == 0, err
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["counts"] == {"attribute": 4, "minus": 4, "targets": 2} and record["strengths"] == [0.0, 1.0]
    assert record["vector_norm"] > 0 and record["columns"] == ["x", "s=0", "s=1"]
    assert Image.open(out).size == (record["layout"]["width"], record["layout"]["height"])
    code, _, err = _cli(["latent", "arithmetic", str(run.directory), *GRADIENT, "--images", str(image_folder),
                         "--attribute", "part1", "--minus", "part0", "--to", "part1", "--n", "2", "--out",
                         str(out)], capsys)
    assert code == 0, err
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["counts"] == {"attribute": 20, "minus": 20, "targets": 2} and record["source"] == "images"


@pytest.mark.parametrize("args,message", [
    (["norms", "{run}", "--images", "missing/", "--out", "n.png"], "no images at missing"),
    (["crossgrid", "{run}", "{run3}", "--images", "{npz}", "--out", "c.png"],
     "the runs must share one image shape (C, H, W): run (1, 16, 16), rgb (3, 16, 16)"),
    (["walk", "{run}", "--from", "random", "--multiples", "x", "--out", "w.png"], "--multiples must be comma"),
    (["dynamics", "{run}", "--iters", "10", "--snapshots", "0,50", "--out", "d"], "snapshot iteration(s) 50 outside"),
    (["dynamics", "{run}", "--iters", "0", "--out", "d"], "iters must be at least 1"),
    (["cosines", "{run}", "--images", "missing.npz", "--out", "c.png"], "no images at missing.npz"),
    (["arithmetic", "{run}", "--attribute", "cat", "--minus", "0", "--out", "a.png"],
     "no class 'cat' in digits; available classes: 0 (178), 1 (182)"),
    (["arithmetic", "{run}", "--attribute", "1", "--minus", "0", "--images", "{npz}", "--out", "a.png"],
     "'1' is neither an image folder / .npz nor a class"),
])
def test_cli_latent_study_user_errors(run, rgb_run, image_npz, cli_error, args, message):
    names = {"run": str(run.directory), "run3": str(rgb_run.directory), "npz": str(image_npz)}
    args = [a.format(**names) for a in args]
    err = cli_error(["latent", args[0], *args[1:], "--inverter", "gradient", "--inverter-opt", "steps=1"])
    assert message in err


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    """A run of another image shape (3 channels)."""
    out = tmp_path_factory.mktemp("lat3") / "rgb"
    gantools.train(out=out, **{**RUN, "channels": 3})
    return gantools.load_run(out)
