"""The Python API, mirroring the CLI: train(...) -> Run, load_run(dir) -> Run."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from gantools import checkpoint as ckpt
from gantools import config as cfg
from gantools import distributed
from gantools import settings as run_settings
from gantools.errors import UserError
from gantools.models import build_models, resolve_device
from gantools.registry import Registry, default_registry
from gantools.run import Run
from gantools.trainer import Trainer


def default_out(config: dict[str, Any]) -> Path:
    name = cfg.split_dataset(config["dataset"])[0]
    return Path("runs") / f"{config['arch']}-{config['loss']}-{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(*, out: str | Path | None = None, resume: bool = False, config: str | None = None,
          progress: bool = False, registry: Registry | None = None, **settings: Any) -> Run:
    """Train a GAN; the settings are those of ``gantools run`` (the rows of gantools.settings.SETTINGS).

    Args:
        out: run directory (default runs/ARCH-LOSS-DATASET-TIMESTAMP).
        resume: continue the run in ``out`` from checkpoints/latest.pt; only ``steps``,
            ``device`` and the logging cadences may change.
        config: a JSON/TOML file of settings (below explicit ``settings``).
        progress: show a progress bar.
        registry: plugin registry (default: the installed plugins).
        **settings: arch, loss, dataset, steps, batch_size, lr, ...

    Returns:
        The Run, with its generator and critic on the training device.
    """
    registry = registry or default_registry()
    if resume:
        if out is None:
            raise UserError("resume needs the run directory (--out DIR)")
        state = ckpt.load(Path(out) / "checkpoints" / "latest.pt")
        resolved, sources = _resumed_config(state, settings, config)
    else:
        resolved, sources = cfg.resolve(registry, settings, config)
        state = None
    # Under torchrun (WORLD_SIZE > 1) every rank runs this; rank 0 alone writes the run directory.
    with distributed.session(resolved["device"]) as parallel:
        if out is None:
            out = parallel.broadcast_object(str(default_out(resolved)))  # rank 0's clock names it
        if state is None and (Path(out) / "checkpoints" / "latest.pt").exists():
            raise UserError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        trainer = Trainer(registry, resolved, sources, out, progress=progress, parallel=parallel)
        if state is not None:
            trainer.load_state_dict(state)
        if progress and parallel.is_main:
            workers = f" in {parallel.world} processes" if parallel.world > 1 else ""
            print(f"gantools: {resolved['arch']} / {resolved['loss']} on {resolved['dataset']} "
                  f"{'x'.join(map(str, trainer.data_shape))}, {resolved['steps']} steps{workers} -> {out}",
                  file=sys.stderr)
        status = trainer.train()
    return trainer.as_run(status)


def _resumed_config(state: dict, settings: dict[str, Any], config_file: str | None) -> tuple[dict, dict]:
    """The saved config, with only the settings that may change on resume applied."""
    if config_file:
        raise UserError("--resume continues the saved config; drop --config")
    # Settings added since the checkpoint was written take their defaults.
    saved, sources = {**run_settings.defaults(), **state["config"]}, dict(state.get("sources", {}))
    allowed = run_settings.resumable()
    for key, value in settings.items():
        if key not in allowed and value != saved.get(key):
            raise UserError(f"--resume continues the saved run, which has {key}={saved.get(key)!r}; "
                            f"only {', '.join(allowed)} may change")
        saved[key], sources[key] = value, "cli"
    if "steps" in settings and "epochs" not in settings:
        saved["epochs"] = None  # --steps on resume replaces an epoch count
    return run_settings.validate(saved), sources


def load_run(directory: str | Path, device: str = "cpu", checkpoint: str = "latest.pt",
             registry: Registry | None = None) -> Run:
    """Load a run directory's checkpoint; the networks are rebuilt from plugin names, never unpickled.

    Args:
        directory: the run directory written by ``gantools run``.
        device: where to put the networks.
        checkpoint: file name under checkpoints/.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"no run directory at {directory}")
    state = ckpt.load(directory / "checkpoints" / checkpoint)
    config = state["config"]
    dev = resolve_device(device)
    shape = tuple(state["data"]["shape"])
    classes = state["data"].get("classes")
    models = build_models(registry or default_registry(), config, shape, dev, len(classes or ()))
    try:
        weights = state["generator_ema"] if state.get("generator_ema") is not None else state["generator"]
        models.generator.load_state_dict(weights)
        for net, key in ((models.critic, "critic"), (models.encoder, "encoder")):
            if net is not None:
                net.load_state_dict(state[key])
                net.eval()
    except RuntimeError as exc:
        raise UserError(f"checkpoint in {directory} does not match the plugins' networks "
                        f"(was a plugin changed?): {str(exc).splitlines()[0]}") from None
    models.generator.eval()
    return Run(config=config, generator=models.generator, critic=models.critic, data_kind=state["data"]["kind"],
               data_shape=shape, directory=directory, step=int(state["step"]), device=dev,
               memory_format=models.memory_format, classes=classes, encoder=models.encoder)


