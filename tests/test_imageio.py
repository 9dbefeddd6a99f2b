"""Tests of gantools.imageio: resizing, folder and npz loading, grids, TensorImages."""
import numpy as np
import pytest
import torch
from PIL import Image

from gantools.errors import UserError
from gantools.imageio import (IMAGE_EXTENSIONS, TensorImages, convert_channels,
                              load_image_folder, load_npz_images, resize_center_crop,
                              resize_float_images, save_grid)


def _halves(width, height):
    """RGB image: red left half, blue right half."""
    array = np.zeros((height, width, 3), np.uint8)
    array[:, : width // 2, 0] = 255
    array[:, width // 2:, 2] = 255
    return Image.fromarray(array)


def _write_images(root):
    """A nested folder with one image per format, upper-case suffix, junk and a corrupt file."""
    (root / "a" / "b").mkdir(parents=True)
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(root / "one.png")
    Image.fromarray(np.full((50, 50, 3), 100, np.uint8)).save(root / "a" / "two.jpg")
    Image.fromarray(np.full((30, 30), 50, np.uint8)).save(root / "a" / "b" / "three.webp",
                                                          lossless=True)
    Image.fromarray(np.full((20, 40, 3), 10, np.uint8)).save(root / "a" / "b" / "four.BMP")
    (root / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    (root / "notes.txt").write_text("not an image")


def test_image_extensions_cover_the_formats():
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp"} == set(IMAGE_EXTENSIONS)


@pytest.mark.parametrize("size", [16, 32])
def test_resize_center_crop_makes_squares(size):
    out = resize_center_crop(_halves(120, 60), size)
    assert out.size == (size, size)


def test_resize_center_crop_keeps_the_centre():
    # A 100x50 landscape: after scaling to height 16 the crop keeps the middle half width,
    # so both halves remain, split in the middle.
    out = np.asarray(resize_center_crop(_halves(100, 50), 16)).astype(int)
    assert out[:, :7, 0].min() > 200 and out[:, :7, 2].max() < 40
    assert out[:, 9:, 2].min() > 200 and out[:, 9:, 0].max() < 40


def test_resize_center_crop_upscales_and_keeps_exact_size():
    small = _halves(8, 8)
    assert resize_center_crop(small, 32).size == (32, 32)
    assert resize_center_crop(small, 8) is small


def test_load_image_folder_rgb_counts_skipped(tmp_path):
    _write_images(tmp_path)
    images, skipped = load_image_folder(tmp_path, 16, 3)
    assert skipped == 1
    assert images.dtype == np.uint8 and images.shape == (4, 3, 16, 16)
    # Sorted relative paths: a/b/four.BMP, a/b/three.webp, a/two.jpg, one.png.
    np.testing.assert_allclose(images.reshape(4, -1).mean(axis=1), [10, 50, 100, 200], atol=2)


def test_load_image_folder_grayscale(tmp_path):
    _write_images(tmp_path)
    images, _ = load_image_folder(tmp_path, 8, 1)
    assert images.shape == (4, 1, 8, 8)


def test_load_image_folder_is_deterministic(tmp_path):
    _write_images(tmp_path)
    first, _ = load_image_folder(tmp_path, 8, 3)
    second, _ = load_image_folder(tmp_path, 8, 3)
    np.testing.assert_array_equal(first, second)


def test_load_image_folder_converts_16bit_and_palette(tmp_path):
    Image.fromarray(np.full((10, 10), 65535, np.uint16)).save(tmp_path / "deep.png")
    palette = Image.new("P", (10, 10), 1)
    palette.putpalette([0, 0, 0, 255, 255, 255])
    palette.info["transparency"] = 0
    palette.save(tmp_path / "pal.png", transparency=0)
    images, skipped = load_image_folder(tmp_path, 4, 1)
    assert skipped == 0
    assert images.min() == 255


@pytest.mark.parametrize("make", ["missing", "file", "empty", "junk", "corrupt"])
def test_load_image_folder_user_errors(tmp_path, make):
    target = tmp_path / "data"
    if make == "file":
        target.write_text("x")
    elif make != "missing":
        target.mkdir()
    if make == "junk":
        (target / "readme.txt").write_text("x")
    if make == "corrupt":
        (target / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(UserError, match="data"):
        load_image_folder(target, 8, 3)


def test_load_image_folder_rejects_bad_channels(tmp_path):
    with pytest.raises(UserError, match="channels"):
        load_image_folder(tmp_path, 8, 2)


def _save(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def test_load_npz_uint8_hwc(tmp_path):
    array = np.zeros((5, 6, 7, 3), np.uint8)
    array[..., 0] = 255
    images = load_npz_images(_save(tmp_path, images=array, labels=np.arange(5)))
    assert images.dtype == np.float32 and images.shape == (5, 3, 6, 7)
    assert images[:, 0].min() == 1.0 and images[:, 1].max() == -1.0


def test_load_npz_single_unnamed_array_nhw(tmp_path):
    images = load_npz_images(_save(tmp_path, x=np.full((4, 9, 9), -0.5, np.float64)))
    assert images.shape == (4, 1, 9, 9)
    np.testing.assert_allclose(images, -0.5)


def test_load_npz_channels_first(tmp_path):
    images = load_npz_images(_save(tmp_path, images=np.full((2, 3, 8, 8), -1, np.float32)))
    assert images.shape == (2, 3, 8, 8)


def test_load_npz_clips_within_tolerance(tmp_path):
    array = np.array([[[-1.0005, 1.0005]]], np.float32)
    images = load_npz_images(_save(tmp_path, images=array))
    assert images.min() == -1.0 and images.max() == 1.0


def test_load_npz_warns_on_nonnegative_float(tmp_path):
    with pytest.warns(UserWarning, match=r"\[-1, 1\]"):
        load_npz_images(_save(tmp_path, images=np.full((2, 4, 4), 0.3, np.float32)))


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.full((2, 4, 4), 2.0, np.float32)}, "must lie in"),
    ({"images": np.full((2, 4, 4), np.nan, np.float32)}, "NaN"),
    ({"images": np.zeros((2, 4, 4), np.int64)}, "int64"),
    ({"images": np.zeros((2, 4, 4, 2), np.uint8)}, "shape"),
    ({"images": np.zeros((2, 4), np.uint8)}, "shape"),
    ({"images": np.zeros((0, 4, 4), np.uint8)}, "empty"),
    ({"a": np.zeros((2, 4, 4)), "b": np.zeros((2, 4, 4))}, "images"),
])
def test_load_npz_user_errors(tmp_path, arrays, message):
    with pytest.raises(UserError, match=message):
        load_npz_images(_save(tmp_path, **arrays))


def test_load_npz_missing_and_corrupt(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_npz_images(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="bad.npz"):
        load_npz_images(tmp_path / "bad.npz")


def test_resize_float_images_shape_and_range():
    images = np.random.default_rng(0).uniform(-1, 1, (3, 2, 12, 20)).astype(np.float32)
    out = resize_float_images(images, 8)
    assert out.shape == (3, 2, 8, 8) and out.dtype == np.float32
    assert out.min() >= -1 and out.max() <= 1


def test_convert_channels_luma_and_replication():
    rgb = np.zeros((1, 3, 2, 2), np.float32)
    rgb[:, 1] = 1.0
    np.testing.assert_allclose(convert_channels(rgb, 1), 0.587, rtol=1e-6)
    assert convert_channels(rgb[:, :1], 3).shape == (1, 3, 2, 2)


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_save_grid_layout(tmp_path, channels, mode):
    images = torch.linspace(-1, 1, 5).view(5, 1, 1, 1).expand(5, channels, 4, 6)
    path = tmp_path / "deep" / "dir" / "grid.png"
    save_grid(images * 1.5, path, padding=2, upscale=3)
    with Image.open(path) as img:
        assert img.mode == mode
        # 5 images -> 3 per row, 2 rows; each cell 6+2 wide and 4+2 high, plus 2 of border.
        assert img.size == ((3 * 8 + 2) * 3, (2 * 6 + 2) * 3)
        array = np.asarray(img)
    assert array[2 * 3, 2 * 3].min() == 0 and array.max() == 255


def test_save_grid_nrow(tmp_path):
    save_grid(torch.zeros(4, 1, 2, 2), tmp_path / "g.png", nrow=4, padding=0)
    with Image.open(tmp_path / "g.png") as img:
        assert img.size == (8, 2)


def test_tensor_images_uint8_maps_to_unit_range():
    data = np.array([0, 255, 128], np.uint8).reshape(3, 1, 1, 1)
    dataset = TensorImages(data)
    assert len(dataset) == 3 and dataset.shape == (1, 1, 1)
    batch = dataset.get_batch(torch.tensor([1, 0]))
    assert batch.dtype == torch.float32
    assert batch.flatten().tolist() == [1.0, -1.0]
    assert dataset[2].shape == (1, 1, 1)
    assert dataset.data.dtype == torch.uint8


def test_tensor_images_float_and_labels():
    dataset = TensorImages(np.ones((4, 2), np.float64), labels=[0, 1, 2, 3])
    assert dataset.get_batch(torch.arange(4)).dtype == torch.float32
    assert dataset.shape == (2,) and dataset.labels.tolist() == [0, 1, 2, 3]


def test_jpeg_draft_mode_decodes_smaller_and_stays_close(tmp_path):
    from gantools.imageio import _draft_box, read_images

    assert _draft_box((178, 218), 64) == (64, 79) and _draft_box((640, 480), 64) == (86, 64)
    y, x = np.mgrid[0:480, 0:640]
    smooth = np.stack([np.sin(x / 40), np.cos(y / 30), np.sin((x + y) / 50)], -1)
    rng = np.random.default_rng(0)
    Image.fromarray(np.clip(127 + 100 * smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)).save(
        tmp_path / "big.jpg", quality=90)
    with Image.open(tmp_path / "big.jpg") as img:
        img.draft(img.mode, _draft_box(img.size, 64))
        assert img.size == (160, 120)  # decoded at 1/4 scale, short side still >= 64
    full, ok_full = read_images([tmp_path / "big.jpg"], 64, 3, draft=False)
    fast, ok_fast = read_images([tmp_path / "big.jpg"], 64, 3, draft=True)
    assert ok_full.all() and ok_fast.all() and full.shape == fast.shape == (1, 3, 64, 64)
    diff = np.abs(full.astype(int) - fast.astype(int))
    assert diff.mean() < 2.0 and not np.array_equal(full, fast)
