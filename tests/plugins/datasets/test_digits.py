"""Tests of the digits dataset plugin."""
import numpy as np
import pytest
import torch

from gantools.errors import UserError
from gantools_plugins.datasets import digits


def _all(data):
    return data.get_batch(torch.arange(len(data)))


def test_defaults_are_recommended_16px_gray():
    factory = digits.dataset
    plugin = factory()
    assert plugin.kind == "images"
    assert plugin.recommended == digits.RECOMMENDED
    assert plugin.recommended["image_size"] == 16
    data = plugin.build(None, None, None)
    assert len(data) == 1797 and data.shape == (1, 16, 16)
    images = _all(data)
    assert images.dtype == torch.float32 and images.shape == (1797, 1, 16, 16)
    assert images.min() >= -1 and images.max() <= 1
    assert images.min() == -1 and images.max() > 0.9


@pytest.mark.parametrize("size", [8, 16, 32])
def test_resize(size):
    data = digits.dataset().build(None, size, 1)
    assert data[0].shape == (1, size, size)


def test_native_size_matches_scaled_sklearn_values():
    from sklearn.datasets import load_digits

    expected = load_digits().images[:5] / 16 * 2 - 1
    got = digits.dataset().build(None, 8, 1).get_batch(torch.arange(5))[:, 0]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)


def test_upscaled_mean_is_preserved():
    # Bilinear x2 then 2x2 pooling keeps the image mean up to border effects.
    small = _all(digits.dataset().build(None, 8, 1))
    large = _all(digits.dataset().build(None, 32, 1))
    assert abs(small.mean().item() - large.mean().item()) < 0.02


def test_three_channels_replicate():
    images = _all(digits.dataset().build(None, 16, 3))
    assert images.shape == (1797, 3, 16, 16)
    assert torch.equal(images[:, 0], images[:, 2])


def test_splits_are_disjoint_and_deterministic():
    train = digits.dataset(split="train").build(None, 8, 1)
    test = digits.dataset(split="test").build(None, 8, 1)
    assert (len(train), len(test)) == (1500, 297)
    every = _all(digits.dataset().build(None, 8, 1)).flatten(1)
    train_rows = {tuple(r) for r in _all(train).flatten(1).tolist()}
    test_rows = {tuple(r) for r in _all(test).flatten(1).tolist()}
    # Duplicate images exist in the data, so compare by count, not by set overlap alone.
    assert len(train_rows | test_rows) == len({tuple(r) for r in every.tolist()})
    assert torch.equal(_all(test), _all(digits.dataset(split="test").build(None, 8, 1)))
    assert sorted(test.labels.tolist() + train.labels.tolist()) == sorted(
        digits.dataset().build(None, 8, 1).labels.tolist())
    assert set(test.labels.tolist()) == set(range(10))


def test_split_indices_partition():
    test = digits._split_indices(1797, "test")
    train = digits._split_indices(1797, "train")
    assert len(np.intersect1d(test, train)) == 0
    assert len(np.union1d(test, train)) == 1797


@pytest.mark.parametrize("options, build_args, message", [
    ({"split": "valid"}, None, "split"),
    ({}, ("x", None, None), "no argument"),
    ({}, (None, 16, 2), "channels"),
    ({}, (None, 0, 1), "image_size"),
])
def test_user_errors(options, build_args, message):
    with pytest.raises(UserError, match=message):
        digits.dataset(**options).build(*(build_args or (None, None, None)))
