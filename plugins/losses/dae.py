"""The denoising autoencoder (Vincent et al. 2008): reconstruct x from a corrupted copy of it."""
from __future__ import annotations

import torch

from gantools import stepcontext
from gantools.errors import UserError
from gantools_plugins.losses.ae import Autoencoder


class DenoisingAutoencoder(Autoencoder):
    """``gantools run --loss dae``: minimise the cost of G(E(x~)) against x, x~ a corrupted x.

    Args:
        noise: std of the Gaussian noise added to each pixel (images in [-1, 1]).
        drop: probability of setting each pixel to -1 (black, masking noise); 0 for none.
        recon: "mse" (default) or "bce", as for ``ae``.
    Encoding (inversion) reads clean images.
    """

    name = "dae"

    def __init__(self, noise: float = 0.5, drop: float = 0.0, recon: str = "mse"):
        super().__init__(recon)
        if noise < 0 or not 0.0 <= drop < 1.0:
            raise UserError(f"dae needs noise >= 0 and drop in [0, 1) (got {noise}, {drop})")
        if noise == 0 and drop == 0:
            raise UserError("dae needs some corruption: noise > 0 or drop > 0 (with neither it is --loss ae)")
        self.noise, self.drop = noise, drop

    def corrupt(self, real):
        # Drawn for the global batch (this rank's rows), like every per-sample draw in training.
        shape = real.shape[1:]
        x = real
        if self.noise:
            x = x + self.noise * stepcontext.rows(lambda n: torch.randn((n, *shape), device=real.device), real.shape[0])
        if self.drop:
            keep = stepcontext.rows(lambda n: torch.rand((n, *shape), device=real.device), real.shape[0]) >= self.drop
            x = torch.where(keep, x, torch.full_like(x, -1.0))
        return x.to(real.dtype)


loss = DenoisingAutoencoder
