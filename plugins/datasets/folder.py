"""The `folder` dataset: every image under a folder (recursive), resized and centre-cropped."""
from __future__ import annotations

import warnings

from gantools.datacache import MappedImages, load_folder
from gantools.errors import UserError
from gantools.imageio import TensorImages

RECOMMENDED = {"image_size": 64}


class Folder:
    """Images from ``folder:PATH`` (jpg, jpeg, png, webp, bmp; any case, any depth).

    Images are scaled so the short side fits and centre-cropped to a square. The folder is
    decoded once, in parallel, into a uint8 cache that later starts open memory-mapped
    (gantools.datacache); unreadable files are skipped with one warning that counts them.
    Labels come from a dataset.json beside the images (``gantools prepare`` writes one).

    Args:
        cache: "auto" (under the gantools cache directory, $GANTOOLS_CACHE or ~/.cache/gantools),
            "off" (decode into memory at every start) or a directory to keep the cache in.
        workers: decoding processes; 0 means one per core.
    """

    kind = "images"

    def __init__(self, cache: str = "auto", workers: int = 0):
        if workers < 0:
            raise UserError(f"folder: workers must be >= 0 (0: one per core), got {workers}")
        self.cache, self.workers = cache, workers
        self.recommended = dict(RECOMMENDED)

    def build(self, arg: str | None, image_size: int | None,
              channels: int | None) -> TensorImages:
        """Load the folder.

        Args:
            arg: the folder path.
            image_size: side in pixels; None means 64.
            channels: 3 (RGB, the default) or 1 (grayscale).
        """
        if not arg:
            raise UserError("the folder dataset needs a path: --dataset folder:PATH")
        size = RECOMMENDED["image_size"] if image_size is None else image_size
        if not isinstance(size, int) or size < 1:
            raise UserError(f"folder: image_size must be a positive integer, got {size!r}")
        channels = 3 if channels is None else channels
        if channels not in (1, 3):
            raise UserError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        found = load_folder(arg, size, channels, cache=self.cache, workers=self.workers or None)
        if found.skipped:
            warnings.warn(f"folder dataset: skipped {found.skipped} unreadable image file(s) in {arg}",
                          UserWarning, stacklevel=2)
        if found.cache is not None:
            return MappedImages(found.images, labels=found.labels, classes=found.classes)
        return TensorImages(found.images, labels=found.labels, classes=found.classes)


dataset = Folder
