"""The digits metric's realism figures: noise and blank images are far from every real digit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gantools.registry import default_registry
from gantools_plugins.metrics import digits as dm


def _digits(split, size=16):
    data = default_registry().create("datasets", "digits", {"split": split}).build(None, size, 1)
    return data.get_batch(torch.arange(len(data)))


def test_nearest_distances_leave_one_out_and_blocks():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    assert dm.nearest_distances(points, points, leave_one_out=True).tolist() == [1.0, 1.0, 2.0]
    assert dm.nearest_distances(points, points).tolist() == [0.0, 0.0, 0.0]
    many = np.random.default_rng(0).random((1100, 3))  # more than one block of 1024
    brute = np.sqrt(((many[:, None] - many[None]) ** 2).sum(-1))
    np.fill_diagonal(brute, np.inf)
    assert np.allclose(dm.nearest_distances(many, many, leave_one_out=True), brute.min(1))


def test_real_reference_scale():
    reference = dm.real_reference()
    assert reference.pixels.shape == (1500, 64) and 0 <= reference.pixels.min() and reference.pixels.max() <= 1
    assert reference.loo_mean == pytest.approx(1.05, abs=0.05)
    assert reference.threshold == pytest.approx(1.49, abs=0.05)


def test_realism_orders_held_out_digits_blank_images_and_noise():
    held_out = dm.digits_quality(_digits("test"))  # 297 digits the reference never saw
    noise = dm.digits_quality(torch.rand(300, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    blank = dm.digits_quality(-torch.ones(20, 1, 16, 16))
    assert blank["confident"] == 1.0 and noise["confident"] > 0.6  # why confidence alone is no test
    assert held_out["nearest_real_distance"] == pytest.approx(1.1, abs=0.15)
    assert blank["nearest_real_distance"] == pytest.approx(2.9, abs=0.2)
    assert noise["nearest_real_distance"] == pytest.approx(3.2, abs=0.3)
    assert held_out["nearest_real_distance"] < blank["nearest_real_distance"] < noise["nearest_real_distance"]
    assert held_out["realism"] > 0.9 and noise["realism"] == 0.0 and blank["realism"] == 0.0
    reference = dm.real_reference()
    assert held_out["real_nearest_distance"] == reference.loo_mean
    assert held_out["realism_threshold"] == reference.threshold
