"""The `npz` dataset: images from a NumPy ``.npz`` array file."""
from __future__ import annotations

from gantools.errors import UserError
from gantools.imageio import TensorImages, convert_channels, load_npz_images, resize_float_images

RECOMMENDED: dict = {}


class Npz:
    """Images from ``npz:PATH``: an (N, H, W) or (N, H, W, C) array, uint8 0..255 or float in
    [-1, 1], named ``images`` or the file's only array (see gantools.imageio.load_npz_images).
    """

    kind = "images"

    def __init__(self):
        self.recommended = dict(RECOMMENDED)

    def build(self, arg: str | None, image_size: int | None,
              channels: int | None) -> TensorImages:
        """Load the file.

        Args:
            arg: the ``.npz`` path.
            image_size: side in pixels (resize + centre crop as for folders); None keeps the
                file's own size.
            channels: 1 or 3 (grayscale <-> RGB by luma or replication); None keeps the file's.
        """
        if not arg:
            raise UserError("the npz dataset needs a path: --dataset npz:PATH")
        images = load_npz_images(arg)
        if channels is not None:
            images = convert_channels(images, channels)
        if image_size is not None:
            if not isinstance(image_size, int) or image_size < 1:
                raise UserError(f"npz: image_size must be a positive integer, got {image_size!r}")
            if images.shape[2:] != (image_size, image_size):
                images = resize_float_images(images, image_size)
        return TensorImages(images)


dataset = Npz
