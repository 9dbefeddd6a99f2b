"""Run configuration: core defaults < loss defaults < dataset recommendations < file < command line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gantools import settings
from gantools.errors import UserError
from gantools.registry import Registry, coerce_options
from gantools.settings import check_keys, validate
from gantools.specs import SINGULAR

# The settings a loss plugin's `defaults` may set.
LOSS_KEYS = ("n_critic", "optimizer", "lr", "betas")


def split_dataset(spec: str) -> tuple[str, str | None]:
    """'folder:/data/x' -> ('folder', '/data/x'); 'digits' -> ('digits', None)."""
    name, sep, arg = spec.partition(":")
    return name, (arg if sep else None)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Load a JSON or TOML config file of run settings."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".toml":
            data = _toml().loads(text)
        else:
            data = json.loads(text)
    except (ValueError, ImportError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise UserError(f"config file {path} is not valid {kind} (.toml files are read as TOML, any other "
                        f"as JSON): {exc}") from None
    if isinstance(data, dict) and "config" in data and isinstance(data["config"], dict):
        data = data["config"]  # a run directory's config.json can be reused as is
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a table of settings")
    return data


def _toml():
    """tomllib (Python 3.11+), else the tomli package it came from (a dependency on 3.10)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib


def resolve(registry: Registry, cli: dict[str, Any], config_file: str | None = None) -> tuple[dict, dict]:
    """Merge the layers of settings and say where each value came from.

    Args:
        registry: used to read the loss's defaults and the dataset's recommendations.
        cli: settings given explicitly on the command line (or to ``gantools.train``).
        config_file: optional JSON/TOML file of settings.

    Returns:
        (config, sources): plain-data config and, per key, "default", "loss:NAME",
        "dataset:NAME", "file:PATH" or "cli".
    """
    check_keys(cli, "options")
    file_values = read_config_file(config_file) if config_file else {}
    check_keys(file_values, f"config file {config_file}")
    chosen = {**file_values, **cli}
    config = settings.defaults()
    sources = {key: "default" for key in config}

    def layer(values: dict[str, Any], label: str) -> None:
        for key, value in values.items():
            if key.endswith("_opts") and isinstance(value, dict) and isinstance(config[key], dict):
                value = {**config[key], **value}  # plugin options merge key by key
            config[key] = value
            sources[key] = label

    loss_name = chosen.get("loss", config["loss"])
    dataset_name, _ = split_dataset(chosen.get("dataset", config["dataset"]))
    loss = registry.load("losses", loss_name)
    layer({k: v for k, v in getattr(loss, "defaults", {}).items() if k in LOSS_KEYS}, f"loss:{loss_name}")
    dataset = registry.create("datasets", dataset_name, chosen.get("dataset_opts", {}))
    recommended = getattr(dataset, "recommended", {})
    layer({k: v for k, v in recommended.items() if k in settings.BY_NAME}, f"dataset:{dataset_name}")
    arch_name = chosen.get("arch", config["arch"])
    for key, label in ((f"arch:{arch_name}", f"architecture {arch_name}"), (f"loss:{loss_name}", f"loss {loss_name}")):
        for_plugin = recommended.get(key, {})
        check_keys(for_plugin, f"dataset {dataset_name}'s recommendations for {label}")
        layer(for_plugin, f"dataset:{dataset_name}")
    layer(file_values, f"file:{config_file}")
    layer(cli, "cli")
    _coerce_plugin_options(registry, config)
    if config["epochs"] is not None and sources["steps"] == "cli" and sources["epochs"] == "cli":
        raise UserError("give --steps or --epochs, not both")
    return validate(config), sources


def _coerce_plugin_options(registry: Registry, config: dict[str, Any]) -> None:
    """Check and type each plugin's options now, so config.json records what the plugins receive."""
    plugins = [("architectures", "arch_opts", config["arch"]), ("losses", "loss_opts", config["loss"]),
               ("datasets", "dataset_opts", split_dataset(config["dataset"])[0])]
    if config["inverter"]:
        plugins.append(("inverters", "inverter_opts", config["inverter"]))
    elif config["inverter_opts"]:
        raise UserError("inverter options need --inverter NAME")
    for kind, key, name in plugins:
        if not isinstance(config[key], dict):
            raise UserError(f"{key} must be a table of key=value options")
        config[key] = coerce_options(registry.load(kind, name), config[key], f"{SINGULAR[kind]} '{name}'")


def steps_for_epochs(config: dict[str, Any], n_items: int) -> int:
    """Generator steps of ``config["epochs"]`` epochs: in one epoch the critic sees every real item
    once, n_critic batches per step."""
    per_step = config["batch_size"] * config["n_critic"]
    return max(1, -(-config["epochs"] * n_items // per_step))

