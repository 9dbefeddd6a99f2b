"""The `digits` dataset: scikit-learn's 1797 handwritten 8x8 digits, shipped offline."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gantools.errors import UserError
from gantools.imageio import TensorImages

# Settings measured to train well on this data; the run applies them unless the user overrides
# them. "loss:NAME" entries apply with that loss only. Why: with a plain PyTorch DCGAN / WGAN-GP
# on a 2-core CPU, 9 minutes of training with the published recipe at 32 px (lr 1e-4 to 2e-4,
# n_critic 5) plateaued near 0.67 confident digits (the `digits` metric), while 16 px, n_critic 2,
# lr 4e-4 and an exponential moving average of the generator's weights reached 0.75-0.78.
# benchmarks/RESULTS.md (issue 2) records the default run with these settings: 0.824 confident
# digits after 5000 steps, 7.9 minutes.
RECOMMENDED = {"image_size": 16, "steps": 5000, "ema": 0.999, "loss:wgan-gp": {"n_critic": 2, "lr": 4e-4},
               # Autoencoders: the encoder trains with the raw decoder, so inversions must decode with it too.
               **{f"loss:{name}": {"ema": 0.0} for name in ("ae", "dae", "vae")}}

_SPLITS = ("all", "train", "test")
_N_TEST = 297
_SPLIT_SEED = 0


def _split_indices(n: int, split: str) -> np.ndarray:
    """Sorted indices of ``split``; the first 297 of a fixed seeded permutation are the test set."""
    if split == "all":
        return np.arange(n)
    permutation = np.random.default_rng(_SPLIT_SEED).permutation(n)
    chosen = permutation[:_N_TEST] if split == "test" else permutation[_N_TEST:]
    return np.sort(chosen)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (N, 1, 8, 8) float images; anti-aliased when shrinking."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < images.shape[-1])


class Digits:
    """Handwritten digits, ink bright on a dark background, values in [-1, 1].

    Args:
        split: "all" (1797 images), "train" (1500) or "test" (297 held out by a fixed seeded
            permutation, for evaluations such as inversion on unseen data).
    """

    kind = "images"
    features_name = "digits classifier (128-d penultimate layer)"

    def __init__(self, split: str = "all"):
        if split not in _SPLITS:
            raise UserError(f"digits: split must be one of {', '.join(_SPLITS)}, got {split!r}")
        self.split = split
        self.recommended = dict(RECOMMENDED)
        self._classifier = None

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 128) features of digits (B, C, H, W) in [-1, 1] at any size: the penultimate layer of
        the digits CNN the ``digits`` features of fid/kid use (trained once on the train split,
        cached in the metrics' cache directory)."""
        from gantools.metrics import cache_dir
        from gantools_plugins.metrics._features import digits_cnn, digits_input

        if self._classifier is None:
            self._classifier = digits_cnn(cache_dir())[0]
        with torch.no_grad():
            return self._classifier.features(digits_input(images.float().cpu()))

    def build(self, arg: str | None, image_size: int | None,
              channels: int | None) -> TensorImages:
        """Return the digits as (channels, image_size, image_size) images with labels.

        Args:
            arg: must be None; digits takes no argument.
            image_size: side in pixels; None means the recommended 16.
            channels: 1 (default) or 3 (the gray channel replicated).
        """
        if arg:
            raise UserError(f"the digits dataset takes no argument, got 'digits:{arg}'")
        size = RECOMMENDED["image_size"] if image_size is None else image_size
        channels = 1 if channels is None else channels
        if not isinstance(size, int) or size < 1:
            raise UserError(f"digits: image_size must be a positive integer, got {size!r}")
        if channels not in (1, 3):
            raise UserError(f"digits: channels must be 1 or 3, got {channels!r}")
        from sklearn.datasets import load_digits  # lazy: importing scikit-learn takes a second

        data = load_digits()
        index = _split_indices(len(data.images), self.split)
        images = torch.from_numpy(data.images[index].astype(np.float32) / 16 * 2 - 1)
        images = _resize(images[:, None], size).clamp_(-1, 1)
        return TensorImages(images.expand(-1, channels, -1, -1).contiguous(),
                            labels=data.target[index], classes=[str(k) for k in range(10)])


dataset = Digits
