"""Run configuration: core defaults < loss defaults < dataset recommendations < file < command line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gantools.errors import UserError
from gantools.precision import PRECISIONS
from gantools.registry import Registry, coerce_options, convert_value
from gantools.specs import SINGULAR

CORE_DEFAULTS: dict[str, Any] = {
    "arch": "dcgan",
    "loss": "wgan-gp",
    "dataset": "digits",
    "arch_opts": {},
    "loss_opts": {},
    "dataset_opts": {},
    "inverter": None,  # a joint inverter (ali, vaegan) trained with the GAN
    "inverter_opts": {},
    "steps": 5000,
    "batch_size": 64,
    "image_size": None,  # None: the dataset's recommendation, else its own size
    "channels": None,
    "z_dim": 128,
    "prior": "normal",
    "n_critic": 1,
    "optimizer": "adam",
    "lr": 2e-4,
    "betas": (0.5, 0.999),
    "lr_decay": "none",  # "linear": anneal both learning rates to 0 at the last step
    "lr_decay_start": 0.0,  # fraction of the run trained at the full rate before the decay starts
    "ema": 0.0,  # decay of the generator's weight average; 0 disables it
    "channels_last": None,  # NHWC activations and weights for image networks; None: on for images
    "precision": "fp32",  # autocast of the forward passes: fp32 (none), bf16 or fp16 (with loss scaling)
    "seed": 0,
    "device": "auto",
    "sample_every": 500,
    "checkpoint_every": 1000,
    "log_every": 50,
    "time_limit": 0.0,  # minutes of training after which the run stops (checkpointed, resumable); 0: none
    "eval_every": 0,  # score the run with metric plugins every N steps into metrics.jsonl; 0: never
    "eval_metrics": [],  # metric plugin names for eval_every; empty: every installed one that applies
    "eval_n": 1000,  # generated samples per periodic evaluation
}
# The settings a loss plugin's `defaults` may set.
LOSS_KEYS = ("n_critic", "optimizer", "lr", "betas")
OPTIMIZERS = ("adam", "rmsprop")
PRIORS = ("normal", "uniform")
LR_DECAYS = ("none", "linear")


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
            import tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (ValueError, ImportError) as exc:
        raise UserError(f"config file {path} is not valid {path.suffix.lstrip('.') or 'json'}: {exc}") from None
    if isinstance(data, dict) and "config" in data and isinstance(data["config"], dict):
        data = data["config"]  # a run directory's config.json can be reused as is
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a table of settings")
    return data


def _check_keys(values: dict[str, Any], where: str) -> None:
    unknown = sorted(set(values) - set(CORE_DEFAULTS))
    if unknown:
        raise UserError(f"{where}: unknown setting(s) {', '.join(unknown)}; "
                        f"known: {', '.join(CORE_DEFAULTS)}")


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
    _check_keys(cli, "options")
    file_values = read_config_file(config_file) if config_file else {}
    _check_keys(file_values, f"config file {config_file}")
    chosen = {**file_values, **cli}
    config = dict(CORE_DEFAULTS)
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
    layer({k: v for k, v in recommended.items() if k in CORE_DEFAULTS}, f"dataset:{dataset_name}")
    arch_name = chosen.get("arch", config["arch"])
    for key, label in ((f"arch:{arch_name}", f"architecture {arch_name}"), (f"loss:{loss_name}", f"loss {loss_name}")):
        for_plugin = recommended.get(key, {})
        _check_keys(for_plugin, f"dataset {dataset_name}'s recommendations for {label}")
        layer(for_plugin, f"dataset:{dataset_name}")
    layer(file_values, f"file:{config_file}")
    layer(cli, "cli")
    # Plugin options are checked and typed now, so config.json records what the plugins receive.
    plugins = [("architectures", "arch_opts", config["arch"]), ("losses", "loss_opts", loss_name),
               ("datasets", "dataset_opts", dataset_name)]
    if config["inverter"]:
        plugins.append(("inverters", "inverter_opts", config["inverter"]))
    elif config["inverter_opts"]:
        raise UserError("inverter options need --inverter NAME")
    for kind, key, name in plugins:
        if not isinstance(config[key], dict):
            raise UserError(f"{key} must be a table of key=value options")
        config[key] = coerce_options(registry.load(kind, name), config[key], f"{SINGULAR[kind]} '{name}'")
    return validate(config), sources


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Convert and range-check the core settings; return plain data (JSON- and checkpoint-safe)."""
    out = dict(config)
    for key in ("steps", "batch_size", "z_dim", "n_critic", "seed", "sample_every",
                "checkpoint_every", "log_every", "eval_every", "eval_n"):
        out[key] = convert_value(out[key], 0, key)
    for key in ("lr", "ema", "time_limit"):
        out[key] = convert_value(out[key], 0.0, key)
    for key in ("image_size", "channels"):
        if out[key] is not None:
            out[key] = convert_value(out[key], 0, key)
    out["betas"] = tuple(float(b) for b in convert_value(out["betas"], (0.0, 0.0), "betas"))
    for key in ("arch_opts", "loss_opts", "dataset_opts", "inverter_opts"):
        if not isinstance(out[key], dict):
            raise UserError(f"{key} must be a table of key=value options")
    positive = ("steps", "batch_size", "z_dim", "n_critic", "sample_every", "checkpoint_every", "log_every")
    for key in positive:
        if out[key] < 1:
            raise UserError(f"{key} must be at least 1 (got {out[key]})")
    if out["time_limit"] < 0:
        raise UserError(f"time_limit must be >= 0 minutes (got {out['time_limit']})")
    if out["eval_every"] < 0 or out["eval_n"] < 2:
        raise UserError(f"eval_every must be >= 0 and eval_n >= 2 (got {out['eval_every']}, {out['eval_n']})")
    metrics = out["eval_metrics"]
    if isinstance(metrics, str):
        metrics = [m for m in metrics.split(",") if m]
    if not isinstance(metrics, (list, tuple)) or not all(isinstance(m, str) for m in metrics):
        raise UserError(f"eval_metrics must be a list of metric names (got {metrics!r})")
    out["eval_metrics"] = list(metrics)
    if out["lr"] <= 0:
        raise UserError(f"lr must be positive (got {out['lr']})")
    if not 0.0 <= out["ema"] < 1.0:
        raise UserError(f"ema must be in [0, 1) (got {out['ema']})")
    if len(out["betas"]) != 2 or not all(0.0 <= b < 1.0 for b in out["betas"]):
        raise UserError(f"betas must be two numbers in [0, 1) (got {out['betas']})")
    if out["image_size"] is not None and out["image_size"] < 4:
        raise UserError(f"image_size must be at least 4 (got {out['image_size']})")
    if out["channels"] is not None and out["channels"] not in (1, 3):
        raise UserError(f"channels must be 1 or 3 (got {out['channels']})")
    if out["optimizer"] not in OPTIMIZERS:
        raise UserError(f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {out['optimizer']!r})")
    if out["precision"] not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)} (got {out['precision']!r})")
    if out["lr_decay"] not in LR_DECAYS:
        raise UserError(f"lr_decay must be one of {', '.join(LR_DECAYS)} (got {out['lr_decay']!r})")
    if out["channels_last"] is not None and not isinstance(out["channels_last"], bool):
        raise UserError(f"channels_last must be true or false (got {out['channels_last']!r})")
    if not 0.0 <= out["lr_decay_start"] < 1.0:
        raise UserError(f"lr_decay_start must be in [0, 1) (got {out['lr_decay_start']})")
    if out["prior"] not in PRIORS:
        raise UserError(f"prior must be one of {', '.join(PRIORS)} (got {out['prior']!r})")
    if out["device"] not in ("auto", "cpu", "cuda") and not str(out["device"]).startswith("cuda:"):
        raise UserError(f"device must be auto, cpu or cuda (got {out['device']!r})")
    out["betas"] = list(out["betas"])  # JSON round-trips lists, not tuples
    return out
