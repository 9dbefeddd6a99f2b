"""Image utilities shared by datasets, sampling and inversion: loading, resizing, grids."""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from gantools.errors import UserError

# Lower-case suffixes as Path.suffix gives them; matching lower-cases the file's suffix.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})

# Tolerance for float images slightly outside [-1, 1] (rounding in the user's own scaling).
RANGE_TOLERANCE = 1e-3

# ITU-R 601-2 luma, the weights PIL uses for RGB -> L, so npz and folder data agree.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# Errors PIL raises for unreadable, truncated or hostile files; anything else is a bug.
# (UnidentifiedImageError is an OSError.)
READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)

# Mid-grey separates tiles whether the images are dark or light.
_GRID_PAD_VALUE = 128


class TensorImages(torch.utils.data.Dataset):
    """In-memory dataset of (N, ...) samples with a batched fast path.

    uint8 data (0..255) is stored as is, a quarter of float32's memory, and mapped to
    float32 in [-1, 1] on access; float data is returned as float32 unchanged (images already
    in [-1, 1], or 2-D points in data units).

    Args:
        data: (N, C, H, W) images, or any (N, ...) float array such as (N, 2) points.
        labels: optional (N,) integer class labels, kept as ``labels`` (conditional runs train on
            them; evaluation code reads them).
        classes: optional class names, index = label (``classes``).

    A read-only array (a memory-mapped cache) is used in place: ``get_batch`` reads only the rows
    it is asked for, so a dataset larger than memory trains without being loaded whole.
    """

    def __init__(self, data: np.ndarray | torch.Tensor, labels=None, classes=None):
        if isinstance(data, np.ndarray) and not data.flags.writeable:  # a read-only memory map: shared,
            with warnings.catch_warnings():  # never written (batches are new tensors)
                warnings.simplefilter("ignore", UserWarning)
                data = torch.from_numpy(data)
        data = torch.as_tensor(data)
        if data.dtype != torch.uint8 and not data.is_floating_point():
            raise TypeError(f"TensorImages needs uint8 or float data, got {data.dtype}")
        if data.is_floating_point() and data.dtype != torch.float32:
            data = data.float()
        self.data = data
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
        self.classes = None if classes is None else [str(c) for c in classes]
        self.shape = tuple(data.shape[1:])

    def __len__(self) -> int:
        return self.data.shape[0]

    def get_batch(self, indices) -> torch.Tensor:
        """Return the items at ``indices`` (LongTensor or sequence) as one float32 tensor.

        Args:
            indices: (B,) item indices.
        """
        batch = self.data[torch.as_tensor(indices, dtype=torch.long)]
        if batch.dtype == torch.uint8:
            return batch.float().div_(127.5).sub_(1.0)
        return batch

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.get_batch([index])[0]


def resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    """Scale the short side to ``size`` and crop the centre square.

    LANCZOS when shrinking (anti-aliased), BICUBIC when enlarging. Works for any PIL mode,
    including float ("F") images.

    Args:
        img: the image.
        size: side of the square result in pixels.
    """
    width, height = img.size
    if (width, height) == (size, size):
        return img
    scale = size / min(width, height)
    new_w = max(size, round(width * scale))
    new_h = max(size, round(height * scale))
    resample = Image.LANCZOS if scale < 1 else Image.BICUBIC
    img = img.resize((new_w, new_h), resample)
    left = (new_w - size) // 2
    top = (new_h - size) // 2
    return img.crop((left, top, left + size, top + size))


def list_image_files(path: str | os.PathLike) -> list[Path]:
    """Return every file under ``path`` (recursive) with an image extension, sorted.

    Args:
        path: a folder.
    """
    root = Path(path)
    files = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    # Sort by the relative path so the order (and thus a seeded run) is the same on every machine.
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def convert_image(img: Image.Image, mode: str) -> Image.Image:
    """Convert to "RGB" or "L" without the pitfalls of a plain ``convert``."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        # A plain convert clips 16-bit values at 255; rescale instead.
        img = Image.fromarray((np.asarray(img, dtype=np.float32) / 257.0).round().astype(np.uint8))
    elif img.mode == "P" and "transparency" in img.info:
        # Going through RGBA avoids PIL's warning about palette transparency.
        img = img.convert("RGBA")
    return img.convert(mode)


def _read_image(file, size: int, mode: str, draft: bool = False) -> np.ndarray:
    """Return one image (a path or a binary file object) as uint8 (C, size, size).

    With ``draft``, a JPEG at least twice as large as needed is decoded at a reduced scale (the
    decoder's 1/2, 1/4 or 1/8 DCT scaling, never below ``size`` on the short side) before the
    same resize and crop: several times faster on large photos, and within a few grey levels of
    the full decode (tests/test_imageio.py measures it).
    """
    with Image.open(file) as img:
        if draft and img.format == "JPEG":
            img.draft(img.mode, _draft_box(img.size, size))
        img.load()
        img = resize_center_crop(convert_image(img, mode), size)
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _draft_box(image_size: tuple[int, int], size: int) -> tuple[int, int]:
    """The smallest (w, h) a draft may shrink to so the short side stays at least ``size``, with
    the aspect ratio kept (draft keeps both sides at or above the box)."""
    width, height = image_size
    scale = size / min(width, height)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def read_images(files: list, size: int, channels: int, draft: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Decode files (paths) into uint8 (k, channels, size, size), resized and centre-cropped, and
    a (k,) bool mask of the files that could be read (unreadable files leave zeros)."""
    mode = "RGB" if channels == 3 else "L"
    out = np.zeros((len(files), channels, size, size), dtype=np.uint8)
    ok = np.zeros(len(files), dtype=bool)
    for i, file in enumerate(files):
        try:
            out[i] = _read_image(file, size, mode, draft)
            ok[i] = True
        except READ_ERRORS:
            continue
    return out, ok


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise UserError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")


def load_image_folder(path: str | os.PathLike, size: int,
                      channels: int) -> tuple[np.ndarray, int]:
    """Load every image under ``path`` (recursive), resized and centre-cropped.

    Files with an image extension that cannot be decoded are skipped and counted; other files
    are ignored.

    Args:
        path: the folder.
        size: side of the square images in pixels.
        channels: 3 for RGB, 1 for grayscale.

    Returns:
        (uint8 array (N, channels, size, size) in sorted path order, number of files skipped).

    Raises:
        UserError: the folder is missing, not a folder, or holds no readable image.
    """
    _check_channels(channels)
    root = Path(path)
    if not root.exists():
        raise UserError(f"image folder not found: {root}")
    if not root.is_dir():
        raise UserError(f"not a folder: {root}")
    files = list_image_files(root)
    if not files:
        extensions = ", ".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
        raise UserError(f"no images ({extensions}) found in {root}")
    mode = "RGB" if channels == 3 else "L"
    # Preallocate so a big folder needs one copy of the data, not a list plus a stacked copy.
    out = np.empty((len(files), channels, size, size), dtype=np.uint8)
    count = 0
    for file in files:
        try:
            out[count] = _read_image(file, size, mode)
        except READ_ERRORS:
            continue
        count += 1
    if count == 0:
        raise UserError(f"none of the {len(files)} image files in {root} could be read")
    return out[:count], len(files) - count


def _pick_array(archive, path: Path) -> np.ndarray:
    """Return the array named ``images``, else the archive's only array."""
    names = list(archive.files)
    if "images" in names:
        return archive["images"]
    if len(names) == 1:
        return archive[names[0]]
    raise UserError(f"{path} holds arrays {names}; name the image array 'images'")


def _to_nchw(array: np.ndarray, path: Path) -> np.ndarray:
    """Put the channel axis second; see load_npz_images for the accepted layouts."""
    if array.ndim == 3:
        return array[:, None]
    if array.ndim == 4 and array.shape[3] in (1, 3):
        return array.transpose(0, 3, 1, 2)
    if array.ndim == 4 and array.shape[1] in (1, 3):
        return array
    raise UserError(f"{path}: image array has shape {array.shape}; expected (N, H, W) or "
                    f"(N, H, W, C) with C = 1 or 3")


def _to_unit_range(array: np.ndarray, path: Path) -> np.ndarray:
    """Map uint8 0..255 to [-1, 1]; check that float data is already there."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 127.5 - 1.0
    if not np.issubdtype(array.dtype, np.floating):
        raise UserError(f"{path}: image dtype {array.dtype} is not supported; use uint8 "
                        f"(0..255) or float in [-1, 1]")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise UserError(f"{path}: image array contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < -1 - RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise UserError(f"{path}: float images must lie in [-1, 1], found values in "
                        f"[{low:.4g}, {high:.4g}]")
    if low >= 0:
        # [0, 1] data passes the range check but would train on the wrong range.
        warnings.warn(f"{path}: float images lie in [{low:.3g}, {high:.3g}], all non-negative; "
                      f"images are expected in [-1, 1] (rescale [0, 1] data with x * 2 - 1)",
                      UserWarning, stacklevel=3)
    return np.clip(array, -1.0, 1.0)


def load_npz_images(path: str | os.PathLike) -> np.ndarray:
    """Load images from an ``.npz`` file as float32 (N, C, H, W) in [-1, 1].

    The array named ``images`` is used, or the file's only array. Accepted layouts:
    (N, H, W); (N, H, W, C) with C in {1, 3}; and (N, C, H, W) with C in {1, 3} when the last
    axis is not 1 or 3 (a last axis of size 1 or 3 is always read as channels-last).
    Accepted values: uint8 0..255, or float already within [-1, 1] (tolerance 1e-3); float
    data with no negative value is accepted with a warning, as it is most likely [0, 1] data.

    Args:
        path: the ``.npz`` file.

    Raises:
        UserError: missing or unreadable file, ambiguous arrays, bad shape, dtype or range.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"npz file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            array = _pick_array(archive, path)
    except UserError:
        raise
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} as an npz archive: {exc}") from exc
    array = _to_nchw(array, path)
    if array.shape[0] == 0:
        raise UserError(f"{path}: the image array is empty")
    return np.ascontiguousarray(_to_unit_range(array, path))


def resize_float_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize float (N, C, H, W) images in [-1, 1] with ``resize_center_crop`` per channel.

    PIL's float ("F") mode keeps full precision, so npz data is resized exactly like image
    folders; the result is clipped to [-1, 1] because LANCZOS and BICUBIC can overshoot.

    Args:
        images: float (N, C, H, W) images.
        size: side of the square result in pixels.
    """
    n, c = images.shape[:2]
    out = np.empty((n, c, size, size), dtype=np.float32)
    for i in range(n):
        for j in range(c):
            img = Image.fromarray(np.ascontiguousarray(images[i, j], dtype=np.float32))
            out[i, j] = np.asarray(resize_center_crop(img, size))
    return np.clip(out, -1.0, 1.0, out=out)


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Convert float (N, C, H, W) images between grayscale and RGB.

    1 -> 3 replicates the channel; 3 -> 1 takes the ITU-R 601-2 luma (as PIL does).

    Args:
        images: float (N, C, H, W) images with C in {1, 3}.
        channels: the channel count wanted, 1 or 3.
    """
    _check_channels(channels)
    have = images.shape[1]
    if have == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=1)
    return np.tensordot(images, _LUMA, axes=([1], [0]))[:, None].astype(np.float32)


def _grid_array(images: np.ndarray, nrow: int, padding: int) -> np.ndarray:
    """Tile uint8 (N, H, W, C) images into one (rows*H', nrow*W', C) array."""
    n, h, w, c = images.shape
    rows = math.ceil(n / nrow)
    cell_h, cell_w = h + padding, w + padding
    grid = np.full((rows * cell_h + padding, nrow * cell_w + padding, c), _GRID_PAD_VALUE,
                   dtype=np.uint8)
    for k in range(n):
        top = padding + (k // nrow) * cell_h
        left = padding + (k % nrow) * cell_w
        grid[top:top + h, left:left + w] = images[k]
    return grid


def grid_image(images: torch.Tensor, nrow: int | None = None, padding: int = 2, upscale: int = 1) -> Image.Image:
    """Images as one PIL grid (L for one channel, else RGB).

    Args:
        images: (N, C, H, W) with C in {1, 3}, values in [-1, 1] (clamped).
        nrow: images per row; default ceil(sqrt(N)), a near-square grid.
        padding: mid-grey pixels between and around the images.
        upscale: integer nearest-neighbour magnification of the whole grid, for tiny images.
    """
    images = torch.as_tensor(images).detach().to("cpu", torch.float32)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(f"a grid needs (N, 1 or 3, H, W) images, got {tuple(images.shape)}")
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    grid = _grid_array(pixels.permute(0, 2, 3, 1).numpy(), nrow, padding)
    img = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    if upscale > 1:
        img = img.resize((img.width * upscale, img.height * upscale), Image.NEAREST)
    return img


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None,
              padding: int = 2, upscale: int = 1) -> None:
    """Write images as one PNG grid (grayscale or RGB; see grid_image), creating parent folders."""
    img = grid_image(images, nrow, padding, upscale)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
