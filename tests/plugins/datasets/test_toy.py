"""Tests of the toy 2-D dataset plugin."""
import math

import numpy as np
import pytest
import torch

from gantools.errors import UserError
from gantools_plugins.datasets import toy


def _points(name, n=20000, seed=0):
    data = toy.dataset(n=n, seed=seed).build(name, None, None)
    return data.get_batch(torch.arange(len(data))).numpy()


def test_kind_shape_and_ignored_image_args():
    plugin = toy.dataset(n=100)
    assert plugin.kind == "points" and plugin.recommended == toy.RECOMMENDED
    data = plugin.build("8gaussians", 64, 3)
    assert len(data) == 100 and data.shape == (2,) and data[0].shape == (2,)
    assert data[0].dtype == torch.float32


def test_25gaussians_grid_means_and_std():
    points = _points("25gaussians")
    modes = toy.dataset().modes("25gaussians")
    assert modes.shape == (25, 2)
    assert sorted(set(modes[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    nearest = np.linalg.norm(points[:, None] - modes[None], axis=2).argmin(axis=1)
    for k in range(25):
        cluster = points[nearest == k]
        assert len(cluster) > 600
        np.testing.assert_allclose(cluster.mean(axis=0), modes[k], atol=0.01)
        np.testing.assert_allclose(cluster.std(axis=0), 0.05, rtol=0.1)
    assert toy.dataset().std("25gaussians") == 0.05


def test_8gaussians_ring_of_radius_2():
    points = _points("8gaussians", n=8000)
    radius = np.linalg.norm(points, axis=1)
    assert abs(radius.mean() - 2.0) < 0.005 and radius.std() < 0.03
    modes = toy.dataset().modes("8gaussians")
    np.testing.assert_allclose(np.linalg.norm(modes, axis=1), 2.0)
    np.testing.assert_allclose(modes[2], [0.0, 2.0], atol=1e-12)
    assert toy.dataset().std("8gaussians") == 0.02


def test_swissroll_shape_and_extent():
    points = _points("swissroll", n=5000)
    assert points.shape == (5000, 2)
    # make_swiss_roll's radius t lies in [1.5 pi, 4.5 pi]; /7.5 gives at most about 1.9.
    assert np.abs(points).max() < 4.5 * math.pi / 7.5 + 0.2
    assert np.abs(points).max() > 1.5


def test_seed_determinism():
    np.testing.assert_array_equal(_points("25gaussians", 500, 3), _points("25gaussians", 500, 3))
    assert not np.array_equal(_points("25gaussians", 500, 3), _points("25gaussians", 500, 4))


@pytest.mark.parametrize("arg", [None, "9gaussians"])
def test_unknown_variant_lists_choices(arg):
    with pytest.raises(UserError, match="8gaussians.*25gaussians.*swissroll"):
        toy.dataset().build(arg, None, None)


def test_bad_options_and_modes():
    with pytest.raises(UserError, match="n must"):
        toy.dataset(n=0)
    with pytest.raises(UserError, match="no modes"):
        toy.dataset().modes("swissroll")
