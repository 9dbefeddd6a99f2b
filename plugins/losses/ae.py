"""The plain autoencoder: x -> E(x) = z -> G(z), trained to reconstruct x (no critic)."""
from __future__ import annotations

from gantools_plugins.losses._autoencoder import DEFAULTS, build_encoder, check_reconstruction, reconstruction


class Autoencoder:
    """``gantools run --loss ae``: minimise the reconstruction cost of G(E(x)) against x.

    The run's generator is the decoder; the encoder is the architecture's encoder trunk with a
    linear map to z_dim values. The code is not shaped to any prior, so samples of G from the
    prior mean little: use the VAE (``--loss vae``) to sample.

    Args:
        recon: "mse" (squared error per pixel, summed; default) or "bce" (binary cross-entropy of
            the intensities, for images such as digits).
    """

    autoencoder = True
    defaults = dict(DEFAULTS)
    name = "ae"

    def __init__(self, recon: str = "mse"):
        check_reconstruction(self.name, recon)
        self.recon = recon

    def build_encoder(self, arch, image_shape, z_dim):
        return build_encoder(self.name, arch, image_shape, z_dim)

    def corrupt(self, real):
        """What the encoder sees of a real batch (the denoising autoencoder corrupts it)."""
        return real

    def reconstruction_loss(self, encoder, generator, real):
        cost = reconstruction(self.recon, generator(encoder(self.corrupt(real))), real).mean()
        return cost, {"recon": cost.detach()}

    def encode(self, encoder, images):
        return encoder(images)


loss = Autoencoder
