"""The `folder` dataset: every image under a folder (recursive), resized and centre-cropped."""
from __future__ import annotations

import warnings

from gantools.errors import UserError
from gantools.imageio import TensorImages, load_image_folder

RECOMMENDED = {"image_size": 64}


class Folder:
    """Images from ``folder:PATH`` (jpg, jpeg, png, webp, bmp; any case, any depth).

    Images are scaled so the short side fits, centre-cropped to a square and kept as uint8
    in memory. Unreadable files are skipped with one warning that counts them.
    """

    kind = "images"

    def __init__(self):
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
        images, skipped = load_image_folder(arg, size, 3 if channels is None else channels)
        if skipped:
            warnings.warn(f"folder dataset: skipped {skipped} unreadable image file(s) in {arg}",
                          UserWarning, stacklevel=2)
        return TensorImages(images)


dataset = Folder
