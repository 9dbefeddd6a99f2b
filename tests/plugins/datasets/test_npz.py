"""Tests of the npz dataset plugin."""
import numpy as np
import pytest
import torch

from gantools.errors import UserError
from gantools_plugins.datasets import npz


def _file(tmp_path, array, name="images"):
    path = tmp_path / "data.npz"
    np.savez(path, **{name: array})
    return str(path)


def _all(data):
    return data.get_batch(torch.arange(len(data)))


def test_uint8_keeps_own_size_and_channels(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (6, 12, 10, 3), dtype=np.uint8)
    data = npz.dataset().build(_file(tmp_path, array), None, None)
    assert len(data) == 6 and data.shape == (3, 12, 10)
    expected = torch.from_numpy(array).permute(0, 3, 1, 2).float() / 127.5 - 1
    torch.testing.assert_close(_all(data), expected)


@pytest.mark.parametrize("size", [16, 32])
def test_float_resized(tmp_path, size):
    array = np.random.default_rng(1).uniform(-1, 1, (3, 24, 24)).astype(np.float32)
    data = npz.dataset().build(_file(tmp_path, array, "x"), size, None)
    images = _all(data)
    assert images.shape == (3, 1, size, size)
    assert images.min() >= -1 and images.max() <= 1


def test_constant_image_survives_resize(tmp_path):
    array = np.full((2, 10, 10), -0.25, np.float32)
    images = _all(npz.dataset().build(_file(tmp_path, array), 16, None))
    torch.testing.assert_close(images, torch.full((2, 1, 16, 16), -0.25))


def test_channel_conversion(tmp_path):
    gray = np.full((2, 8, 8), 64, np.uint8)
    rgb = _all(npz.dataset().build(_file(tmp_path, gray), None, 3))
    assert rgb.shape == (2, 3, 8, 8) and torch.equal(rgb[:, 0], rgb[:, 2])
    color = np.zeros((2, 8, 8, 3), np.uint8)
    color[..., 0] = 255
    back = _all(npz.dataset().build(_file(tmp_path, color), None, 1))
    torch.testing.assert_close(back, torch.full((2, 1, 8, 8), 0.299 * 2 - 1))


@pytest.mark.parametrize("array, message", [
    (np.full((2, 4, 4), 3.0, np.float32), "must lie in"),
    (np.zeros((2, 4, 4), np.int16), "int16"),
    (np.zeros((2, 4, 4, 5), np.uint8), "shape"),
])
def test_bad_arrays(tmp_path, array, message):
    with pytest.raises(UserError, match=message):
        npz.dataset().build(_file(tmp_path, array), None, None)


def test_bad_paths_and_options(tmp_path):
    with pytest.raises(UserError, match="path"):
        npz.dataset().build(None, None, None)
    with pytest.raises(UserError, match="missing.npz"):
        npz.dataset().build(str(tmp_path / "missing.npz"), None, None)
    with pytest.raises(UserError, match="channels"):
        npz.dataset().build(_file(tmp_path, np.zeros((1, 4, 4), np.uint8)), None, 2)
