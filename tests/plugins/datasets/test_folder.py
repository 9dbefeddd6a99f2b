"""Tests of the folder dataset plugin."""
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from gantools.errors import UserError
from gantools_plugins.datasets import folder


@pytest.fixture
def image_dir(tmp_path):
    """Nested png/jpg/webp/bmp images, one corrupt png and one text file."""
    root = tmp_path / "faces"
    (root / "x" / "y").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / "a.png")
    Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)).save(root / "x" / "b.jpg")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        root / "x" / "y" / "c.webp")
    Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8)).save(root / "x" / "d.bmp")
    (root / "x" / "y" / "corrupt.png").write_bytes(b"definitely not an image")
    (root / "x" / "labels.txt").write_text("faces\n")
    return root


def _build(path, size=None, channels=None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = folder.dataset().build(str(path), size, channels)
    return data, caught


def test_rgb_default_size_and_single_warning(image_dir):
    data, caught = _build(image_dir)
    assert len(caught) == 1 and issubclass(caught[0].category, UserWarning)
    message = str(caught[0].message)
    assert "skipped 1 " in message and str(image_dir) in message
    assert len(data) == 4 and data.shape == (3, 64, 64)
    batch = data.get_batch(torch.arange(4))
    assert batch.dtype == torch.float32 and batch.min() >= -1 and batch.max() <= 1
    assert data.data.dtype == torch.uint8


@pytest.mark.parametrize("size", [16, 32])
def test_grayscale_resized(image_dir, size):
    data, _ = _build(image_dir, size, 1)
    assert data[0].shape == (1, size, size)


def test_no_warning_when_all_readable(image_dir):
    (image_dir / "x" / "y" / "corrupt.png").unlink()
    data, caught = _build(image_dir, 8, 3)
    assert caught == [] and len(data) == 4


def test_recommended_and_kind():
    plugin = folder.dataset()
    assert plugin.kind == "images" and plugin.recommended == {"image_size": 64}


@pytest.mark.parametrize("case", ["empty", "only_corrupt", "missing", "not_dir", "no_arg"])
def test_user_errors(tmp_path, case):
    target = tmp_path / "imgs"
    if case in ("empty", "only_corrupt"):
        target.mkdir()
    if case == "only_corrupt":
        (target / "a.jpg").write_bytes(b"broken")
    if case == "not_dir":
        target.write_text("x")
    with pytest.raises(UserError):
        folder.dataset().build(None if case == "no_arg" else str(target), 8, 3)
