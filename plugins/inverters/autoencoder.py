"""The encoder an autoencoder run trained (--loss ae|dae|vae), as an inverter."""
from __future__ import annotations

import torch

from gantools.errors import UserError


class AutoencoderInverter:
    """``gantools invert eval RUN --inverter autoencoder`` on a run trained with ``--loss ae``,
    ``dae`` or ``vae``: encodes with the run's own encoder (the VAE's posterior mean), so the
    autoencoders are scored by the same evaluator as the GAN inverters. Nothing to fit: the
    encoder was trained with the run and is in its checkpoint."""

    needs_fit = False

    def setup(self, run, registry=None) -> None:
        if run.encoder is None:
            raise UserError(f"inverter 'autoencoder' encodes with the encoder of an autoencoder run (gantools run "
                            f"--loss ae|dae|vae); {run.config['loss']} runs have none: use encoder, gradient or hybrid")
        from gantools.registry import default_registry

        self.loss = (registry or default_registry()).create("losses", run.config["loss"], run.config["loss_opts"])
        self.encoder, self.device = run.encoder, run.device

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.encoder.eval()
            return self.loss.encode(self.encoder, images.to(self.device))


inverter = AutoencoderInverter
