"""A small DCGAN on 16 px digits and its briefly fitted encoder, shared by the inverter plugins' tests."""
from __future__ import annotations

import pytest
import torch

import gantools
from gantools import inversion
from gantools.models import sample_prior

# Trained on the train split, so the test split is held out.
RUN = dict(arch="dcgan", loss="wgan-gp", dataset="digits", dataset_opts={"split": "train"},
           arch_opts={"width": 8}, z_dim=8, batch_size=32, steps=40, n_critic=1, log_every=20,
           sample_every=40, checkpoint_every=40, ema=0.0)


@pytest.fixture(scope="session")
def run_settings():
    """The settings of ``run`` (a copy: tests derive other runs from it)."""
    return dict(RUN)


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("inverters") / "run"
    gantools.train(out=out, **RUN)
    return gantools.load_run(out)


@pytest.fixture(scope="session")
def fitted(run):
    """The encoder fitted briefly (saved into the run, where hybrid finds it)."""
    inversion.fit(run, "encoder", {"width_scale": 0.0625, "lr": 1e-3, "log_every": 25}, steps=150)
    return inversion.load(run, "encoder")


@pytest.fixture(scope="session")
def synthetic(run):
    """synthetic(n, seed) -> (z, G(z)): prior draws of the run and their generations."""
    def draw(n: int = 24, seed: int = 1):
        z = sample_prior(n, run.config["z_dim"], run.config["prior"], torch.device("cpu"),
                         torch.Generator().manual_seed(seed))
        return z, inversion.decode(run, z)
    return draw


@pytest.fixture(scope="session")
def mse(run):
    """mse(inverter, x): mean squared error between images x and the generations of their encodings."""
    return lambda inverter, x: float((inversion.decode(run, inversion.encode(inverter, x)) - x).pow(2).mean())
