"""Resolving a run's settings: layers, sources, config files, plugin options."""
from __future__ import annotations

import json

import pytest

from gantools import config as cfg
from gantools.errors import UserError
from gantools.registry import default_registry


def resolve(cli, config_file=None):
    return cfg.resolve(default_registry(), cli, config_file)


def test_layers_and_their_sources(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"lr": 0.003, "seed": 7, "loss_opts": {"weight": 2.0}}))
    config, sources = resolve({"loss": "wgan-gp", "dataset": "digits", "seed": 9}, str(path))
    assert (config["n_critic"], sources["n_critic"]) == (2, "dataset:digits")  # digits' WGAN-GP recipe
    assert (config["optimizer"], sources["optimizer"]) == ("adam", "loss:wgan-gp")
    assert (config["lr"], sources["lr"]) == (0.003, f"file:{path}")
    assert (config["seed"], sources["seed"]) == (9, "cli")
    assert (config["z_dim"], sources["z_dim"]) == (128, "default")
    assert config["loss_opts"]["weight"] == 2.0 and isinstance(config["loss_opts"]["weight"], float)


def test_a_run_directory_config_json_is_a_config_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"config": {"z_dim": 5}, "sources": {}}))
    assert resolve({}, str(path))[0]["z_dim"] == 5


def test_toml_files(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('steps = 10\n[arch_opts]\nwidth = "16"\n')
    config, _ = resolve({"arch": "dcgan"}, str(path))
    assert config["steps"] == 10 and config["arch_opts"]["width"] == 16  # typed by the plugin's schema


@pytest.mark.parametrize("text,suffix,message", [
    ("{not json", ".json", "is not valid JSON"), ("steps = ", ".toml", "is not valid TOML"),
    ("{not json", ".npz", "is not valid JSON .*any other as JSON"),
    ("[1, 2]", ".json", "must hold a table"), ('{"learning_rate": 1}', ".json", "unknown setting"),
])
def test_bad_config_files(tmp_path, text, suffix, message):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        resolve({}, str(path))
    with pytest.raises(UserError, match="cannot read config file"):
        resolve({}, str(tmp_path / "missing.json"))


def test_plugin_options_are_checked_against_the_plugin():
    with pytest.raises(UserError, match="architecture 'dcgan' has no option 'depth'"):
        resolve({"arch": "dcgan", "arch_opts": {"depth": "3"}})
    with pytest.raises(UserError, match="inverter options need --inverter"):
        resolve({"inverter_opts": {"z_width": "4"}})
    with pytest.raises(UserError, match="unknown loss 'nope'"):
        resolve({"loss": "nope"})


def test_split_dataset():
    assert cfg.split_dataset("folder:/a:b") == ("folder", "/a:b")
    assert cfg.split_dataset("digits") == ("digits", None)
