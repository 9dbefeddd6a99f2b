"""Tests of the digits-quality and toy-modes measures in benchmarks/."""
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from digits_quality import digits_quality, main as quality_main, real_digits_reference  # noqa: E402
from toy_modes import main as modes_main, toy_modes  # noqa: E402

from gantools_plugins.datasets import toy  # noqa: E402


@pytest.fixture(scope="module")
def reference():
    return real_digits_reference(16)


def test_real_digits_pass(reference):
    assert reference["n"] == 1797
    assert reference["confident"] >= 0.8
    assert reference["min_class_fraction"] >= 0.08
    assert abs(sum(reference["class_fractions"]) - 1) < 1e-9
    assert reference["passes"]


def test_noise_fails():
    noise = torch.rand(500, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    result = digits_quality(noise)
    assert not result["passes"]
    assert result["min_class_fraction"] < 0.04


def test_three_channels_and_32px_are_accepted(reference):
    from gantools_plugins.datasets.digits import dataset

    images = dataset().build(None, 32, 3)
    result = digits_quality(images.get_batch(torch.arange(len(images))))
    assert abs(result["confident"] - reference["confident"]) < 0.02


def test_quality_cli(tmp_path, capsys):
    from gantools_plugins.datasets.digits import dataset

    images = dataset(split="test").build(None, 16, 1)
    path = tmp_path / "samples.npz"
    np.savez(path, samples=images.get_batch(torch.arange(len(images))).numpy())
    assert quality_main([str(path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 297 and result["confident"] >= 0.8
    assert quality_main([str(tmp_path / "missing.npz")]) == 2


def test_toy_modes_on_exact_samples():
    data = toy.dataset(n=20000).build("25gaussians", None, None)
    result = toy_modes(data.get_batch(torch.arange(len(data))), "25gaussians")
    assert result["n_modes"] == 25 and result["modes_covered"] == 25
    # Euclidean radius 3 std of an isotropic 2-D gaussian holds 1 - exp(-4.5) = 98.89%.
    assert abs(result["high_quality"] - (1 - math.exp(-4.5))) < 0.003


def test_toy_modes_on_one_mode(tmp_path, capsys):
    points = np.random.default_rng(0).normal([2.0, -2.0], 0.05, (1000, 2))
    assert toy_modes(points, "25gaussians")["modes_covered"] == 1
    path = tmp_path / "points.npz"
    np.savez(path, samples=np.zeros((100, 2)) + [2.0, 0.0])
    assert modes_main([str(path), "--dataset", "8gaussians"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {"n": 100, "n_modes": 8, "modes_covered": 1, "high_quality": 1.0,
                      "mode_counts": [100, 0, 0, 0, 0, 0, 0, 0]}
