"""The Python API mirrors the CLI: train(...) -> Run, load_run(dir) -> Run."""
from __future__ import annotations

import pytest
import torch

import gantools
from gantools.errors import UserError


def test_train_then_load_run_samples_the_same(tmp_path, tiny_settings):
    run = gantools.train(out=tmp_path / "run", **tiny_settings)
    loaded = gantools.load_run(tmp_path / "run")
    assert loaded.config["arch"] == "mlp" and loaded.step == 6 and loaded.data_kind == "points"
    a, b = run.sample(10, seed=3), loaded.sample(10, seed=3)
    assert a.shape == (10, 2) and torch.allclose(a, b)
    assert loaded.critic(a).shape == (10,)
    assert not torch.equal(loaded.sample(10, seed=4), a)


def test_image_run_samples_are_images_in_range(tmp_path):
    run = gantools.train(out=tmp_path / "run", arch="dcgan", loss="gan", dataset="digits", image_size=16,
                         arch_opts={"width": 8}, z_dim=8, steps=2, batch_size=16)
    images = gantools.load_run(tmp_path / "run").sample(5)
    assert images.shape == (5, 1, 16, 16) and images.min() >= -1 and images.max() <= 1
    assert run.config["lr"] == 2e-4 and run.config["betas"] == [0.5, 0.999]  # the DCGAN recipe


def test_registry_is_reachable_from_the_package():
    assert "wgan-gp" in gantools.registry.default_registry().names("losses")
    assert {i.name for i in gantools.registry.find("architectures")} >= {"dcgan", "mlp"}


def test_load_run_errors(tmp_path):
    with pytest.raises(UserError, match="no run directory"):
        gantools.load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no checkpoint"):
        gantools.load_run(tmp_path / "empty")


def test_config_file_layers_below_explicit_settings(tmp_path, tiny_settings):
    config = tmp_path / "run.toml"
    config.write_text('lr = 0.0005\nn_critic = 3\n[loss_opts]\nweight = 5.0\n')
    settings = {**tiny_settings, "steps": 1}
    run = gantools.train(out=tmp_path / "run", config=str(config), **{**settings, "n_critic": 2})
    assert run.config["lr"] == 0.0005 and run.config["n_critic"] == 2 and run.config["loss_opts"]["weight"] == 5.0
    with pytest.raises(UserError, match="unknown setting"):
        config.write_text("learning_rate = 1\n")
        gantools.train(out=tmp_path / "run2", config=str(config), **settings)
