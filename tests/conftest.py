"""Shared fixtures: small, fast settings and throwaway data so runs take seconds."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

# A run small enough for a unit test: MLP on a little 8-gaussians sample.
TINY = dict(arch="mlp", loss="wgan-gp", dataset="toy:8gaussians", dataset_opts={"n": 512},
            arch_opts={"hidden": 32, "layers": 2}, z_dim=4, batch_size=32, steps=6, log_every=2, lr_decay="none",
            sample_every=3, checkpoint_every=3)


@pytest.fixture
def tiny_settings() -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}


@pytest.fixture
def image_folder(tmp_path):
    """A folder of 40 random 20x20 RGB PNGs in two sub-folders."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for i in range(40):
        sub = root / f"part{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(sub / f"{i:03d}.png")
    return root


@pytest.fixture
def image_npz(tmp_path):
    """An npz of 40 uint8 16x16 grayscale images named `images`."""
    path = tmp_path / "images.npz"
    rng = np.random.default_rng(1)
    np.savez(path, images=rng.integers(0, 256, (40, 16, 16), dtype=np.uint8))
    return path


@pytest.fixture
def cli_error(capsys):
    """Run the CLI entry point on ``args`` expecting a user error: returns stderr after checking
    that it is one line starting with "error: " and that the exit code is non-zero."""
    from gantools.cli import main

    def call(args: list[str]) -> str:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        err = capsys.readouterr().err
        assert exit_info.value.code != 0 and err.startswith("error: ") and err.count("\n") == 1, err
        return err

    return call
