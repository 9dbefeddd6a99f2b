"""Nearest training neighbours: exact k-NN in chunks, the feature spaces (the digits classifier, the
critic's trunk), the memorisation ratio, and `gantools neighbours` (grid PNG + JSON, user errors)."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image

import gantools
from gantools import neighbours as nb, studyplots
from gantools.cli import main
from gantools.data import run_images
from gantools.errors import UserError
from gantools.registry import default_registry

RUN = dict(arch="dcgan", loss="wgan-gp", dataset="digits", arch_opts={"width": 8}, z_dim=6, batch_size=32,
           steps=2, n_critic=1, ema=0.0)


def _trained(factory, name: str, **changes):
    """The directory of a tiny run: RUN with ``changes``."""
    out = factory.mktemp("nb") / name
    gantools.train(out=out, **{**RUN, **changes})
    return out


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """40 random 16x16 grey images: a dataset (npz) without features of its own."""
    path = tmp_path_factory.mktemp("nbdata") / "images.npz"
    np.savez(path, images=np.random.default_rng(1).integers(0, 256, (40, 16, 16), dtype=np.uint8))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return gantools.load_run(_trained(tmp_path_factory, "digits"))


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory, npz):
    return gantools.load_run(_trained(tmp_path_factory, "npz", dataset=f"npz:{npz}", batch_size=16))


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory, npz):
    """An autoencoder (no critic) on data without features."""
    return _trained(tmp_path_factory, "ae", loss="ae", dataset=f"npz:{npz}", batch_size=16)


def _brute(queries, bank, k):
    d = torch.cdist(queries.double(), bank.double(), compute_mode="donot_use_mm_for_euclid_dist")
    dist, idx = d.sort(dim=1, stable=True)
    return dist[:, :k], idx[:, :k]


# ---- nearest ------------------------------------------------------------------------------------
def test_nearest_is_brute_force_and_finds_a_planted_duplicate():
    gen = torch.Generator().manual_seed(0)
    queries, bank = torch.randn(7, 10, generator=gen), torch.randn(50, 10, generator=gen)
    bank[23] = queries[2]
    dist, idx = nb.nearest(queries, bank, 4)
    want_d, want_i = _brute(queries, bank, 4)
    assert torch.equal(idx, want_i)
    torch.testing.assert_close(dist, want_d, rtol=1e-12, atol=1e-12)
    assert idx[2, 0] == 23 and dist[2, 0] == 0.0  # exactly 0: recomputed as ||q - b||
    assert bool((dist[:, 1:] >= dist[:, :-1]).all())


def test_chunking_gives_the_same_answer_as_one_chunk():
    gen = torch.Generator().manual_seed(1)
    queries, bank = torch.randn(9, 2, 3, 3, generator=gen), torch.randn(37, 2, 3, 3, generator=gen)
    whole = nb.nearest(queries, bank, 5, chunk=4096)
    for chunk in (1, 3, 5, 8):
        parts = nb.nearest(queries, bank, 5, chunk=chunk)
        assert torch.equal(parts[0], whole[0]) and torch.equal(parts[1], whole[1]), chunk


def test_ties_by_index_self_match_and_nearest_other():
    gen = torch.Generator().manual_seed(2)
    bank = torch.randn(10, 4, generator=gen)
    bank[7] = bank[3]
    dist, idx = nb.nearest(bank[3:4], bank, 3)
    assert idx[0, :2].tolist() == [3, 7] and dist[0, :2].tolist() == [0.0, 0.0]
    for chunk in (1, 2, 3, 5, 4096):  # the duplicates in one chunk or in two
        assert nb.nearest(bank[[7, 3]], bank, 1, chunk=chunk)[1][:, 0].tolist() == [3, 3], chunk
    self_d, self_i = nb.nearest(bank, bank, 1)
    assert self_i[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 3, 8, 9] and bool((self_d == 0).all())
    rows = torch.tensor([0, 3, 7])
    other = nb.nearest_other(bank, rows)
    assert other[1] == 0 and other[2] == 0  # the duplicate of each other, not themselves
    torch.testing.assert_close(other[0], _brute(bank[:1], bank[1:], 1)[0][0, 0])


def test_nearest_refuses_bad_k():
    bank = torch.zeros(3, 2)
    for k in (0, 4):
        with pytest.raises(UserError, match="k must be between 1 and the bank's 3 rows"):
            nb.nearest(torch.zeros(1, 2), bank, k)


def test_memorisation_figures():
    figures = nb.memorisation(torch.tensor([1.0, 3.0]), torch.tensor([4.0, 4.0, 4.0]))
    assert figures["sample_nearest_mean"] == 2.0 and figures["train_nearest_mean"] == 4.0
    assert figures["ratio"] == 0.5 and figures["reference_images"] == 3
    assert nb.memorisation(torch.tensor([1.0]), torch.tensor([0.0]))["ratio"] is None


# ---- feature spaces and the study ---------------------------------------------------------------
def test_digits_feature_space_is_the_classifier(run):
    plugin = default_registry().create("datasets", "digits", {})
    name, extract = nb.feature_space(run)
    assert name == plugin.features_name
    images = run_images(run, 5)
    features = extract(images)
    assert features.shape == (5, 128)
    torch.testing.assert_close(features, plugin.features(images))


def test_critic_trunk_fallback_without_dataset_features(npz_run):
    name, extract = nb.feature_space(npz_run)
    assert name.startswith("critic trunk (dcgan")
    images = run_images(npz_run, 3)
    with torch.no_grad():
        want = npz_run.critic.trunk()(images).flatten(1)
    torch.testing.assert_close(extract(images), want)


class _Copier(torch.nn.Module):
    """A 'generator' that returns training images, whatever the latents."""

    def __init__(self, images):
        super().__init__()
        self.images = images

    def forward(self, z):
        return self.images[:len(z)]


def test_a_generator_of_training_images_has_ratio_zero(run):
    fake = copy.copy(run)
    fake.generator = _Copier(run_images(run, 4))
    result = nb.neighbours(fake, n=4, k=2, reference=50)
    pixel, feature = result["spaces"]["pixel"], result["spaces"]["feature"]
    assert pixel["indices"][:, 0].tolist() == [0, 1, 2, 3] and bool((pixel["distances"][:, 0] == 0).all())
    assert pixel["memorisation"]["ratio"] == 0.0 and pixel["memorisation"]["train_nearest_mean"] > 0
    assert feature["memorisation"]["ratio"] < 1e-4


def test_neighbours_refusals(run):
    with pytest.raises(UserError, match="n must be at least 1"):
        nb.neighbours(run, n=0)
    with pytest.raises(UserError, match="k=3 needs at least 3 training images; there are 2"):
        nb.neighbours(run, n=1, k=3, bank_size=2)


# ---- the command -------------------------------------------------------------------------------
def test_cli_writes_the_grid_and_its_numbers(run, tmp_path, capsys):
    out = tmp_path / "nb.png"
    with pytest.raises(SystemExit) as exit_info:
        main(["neighbours", str(run.directory), "--n", "3", "--k", "2", "--bank", "300", "--out", str(out)])
    assert exit_info.value.code == 0
    assert "ratio" in capsys.readouterr().out
    record = json.loads(out.with_suffix(".json").read_text())
    layout = studyplots.grid_layout(3, 1 + 2 * 2, 16, (), nb.column_labels(2), upscale=64 // 16)
    assert Image.open(out).size == (layout["width"], layout["height"]) and record["layout"] == layout
    assert record["n"] == 3 and record["k"] == 2 and record["bank"] == 300
    samples, bank = run.sample(3, seed=0), run_images(run, 300)
    plugin = default_registry().create("datasets", "digits", {})
    spaces = record["spaces"]
    assert spaces["feature"]["name"] == plugin.features_name
    for space, (queries, rows) in {"pixel": (samples, bank),
                                   "feature": (plugin.features(samples), plugin.features(bank))}.items():
        idx, dist = torch.tensor(spaces[space]["indices"]), torch.tensor(spaces[space]["distances"], dtype=torch.float64)
        again = (queries.flatten(1)[:, None].double() - rows.flatten(1)[idx].double()).norm(dim=2)
        torch.testing.assert_close(dist, again, rtol=1e-5, atol=1e-6)
        assert torch.equal(idx, _brute(queries.flatten(1), rows.flatten(1), 2)[1])
        assert record["memorisation"][space]["ratio"] > 0


def test_cli_default_out_is_in_the_run(npz_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["neighbours", str(npz_run.directory), "--n", "2", "--k", "1"])
    assert exit_info.value.code == 0
    record = json.loads((npz_run.directory / "neighbours.json").read_text())
    assert (npz_run.directory / "neighbours.png").is_file() and record["bank"] == 40
    assert record["spaces"]["feature"]["name"].startswith("critic trunk")


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "Invalid value for '--n'"),
    (["--bank", "1"], "Invalid value for '--bank'"),
    (["--out", "x.jpg"], "--out must name a .png file"),
])
def test_cli_flag_errors(run, cli_error, args, message):
    assert message in cli_error(["neighbours", str(run.directory), *args])


def test_cli_run_errors(ae_run, tmp_path, cli_error):
    assert "no run directory at" in cli_error(["neighbours", str(tmp_path / "missing")])
    assert "has no critic" in cli_error(["neighbours", str(ae_run), "--n", "2"])
