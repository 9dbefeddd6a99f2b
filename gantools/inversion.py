"""Inversion: fit inverters against a run's frozen generator, apply them, and score them.

An inverter maps images back to latents (see gantools.specs.Inverter). Post-hoc inverters are
fitted after training and saved as RUN_DIR/inverters/NAME.pt (written atomically, loaded with
weights_only=True); inverters that need no fitting (gradient descent on z) are built fresh.
One evaluator scores every inverter the same way.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from gantools import checkpoint as ckpt
from gantools.errors import UserError
from gantools.models import sample_prior
from gantools.registry import Registry, default_registry
from gantools.report import line_plots
from gantools.run import Run


def inverter_path(run: Run, name: str) -> Path:
    """Where a run keeps the fitted state of inverter ``name``."""
    if run.directory is None:
        raise UserError("this run has no directory to keep inverters in")
    return Path(run.directory) / "inverters" / f"{name}.pt"


def _check_images(run: Run) -> None:
    if run.data_kind != "images":
        raise UserError(f"inversion needs a run trained on images; {run.config['dataset']} holds points")
    if run.conditional:
        raise UserError("inverters need an unconditional run: a conditional generator also takes a class, "
                        "which an inverter does not recover")


def create(run: Run, name: str, options: dict[str, Any] | None = None,
           registry: Registry | None = None) -> Any:
    """Create inverter ``name`` with its options and set it up for ``run`` (not fitted)."""
    _check_images(run)
    registry = registry or default_registry()
    inverter = registry.create("inverters", name, options or {})
    inverter.setup(run, registry=registry)
    return inverter


def fit(run: Run, name: str, options: dict[str, Any] | None = None, steps: int | None = None,
        log: Callable[[int, dict[str, float]], None] | None = None,
        registry: Registry | None = None) -> Path:
    """Fit a post-hoc inverter against the run's frozen generator and save it in the run.

    Returns:
        The path of the saved inverter (RUN_DIR/inverters/NAME.pt); its history of costs is
        also written to RUN_DIR/inverters/NAME.jsonl and plotted to NAME.png.
    """
    registry = registry or default_registry()
    inverter = create(run, name, options, registry)
    if getattr(inverter, "joint", False):
        raise UserError(f"inverter '{name}' is trained with the GAN (gantools run --inverter {name}); "
                        f"it cannot be fitted afterwards")
    if not getattr(inverter, "needs_fit", True):
        raise UserError(f"inverter '{name}' needs no fitting; use it directly with gantools invert")
    if steps is not None and steps < 1:
        raise UserError(f"steps must be at least 1 (got {steps})")
    history: list[dict[str, float]] = []

    def record(step: int, costs: dict[str, float]) -> None:
        history.append({"step": step, **{k: float(v) for k, v in costs.items()}})
        if log is not None:
            log(step, costs)

    inverter.fit(run, steps, record)
    path = ckpt.save_inverter_state(inverter_path(run, name), name, options or {}, inverter.state_dict(), history)
    with open(path.with_suffix(".jsonl"), "w") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in history)
    _plot_history(history, path.with_suffix(".png"), f"{name} inverter on {run.directory}")
    return path


def load(run: Run, name: str, options: dict[str, Any] | None = None,
         registry: Registry | None = None) -> Any:
    """The inverter ready to encode: its fitted state from the run, or a fresh one if it needs none.

    Options given here override those it was fitted with where they matter at encode time
    (e.g. the refinement steps of a hybrid inverter).
    """
    registry = registry or default_registry()
    probe = registry.load("inverters", name)
    if not getattr(probe, "needs_fit", True) and not getattr(probe, "joint", False):
        return create(run, name, options, registry)
    path = inverter_path(run, name)
    if not path.is_file():
        how = (f"train the GAN with --inverter {name}" if getattr(probe, "joint", False)
               else f"run: gantools invert fit {run.directory} --inverter {name}")
        raise UserError(f"inverter '{name}' is not fitted for {run.directory} ({how})")
    saved = ckpt.load_inverter_state(path)
    inverter = create(run, name, {**saved["options"], **(options or {})}, registry)
    try:
        inverter.load_state_dict(saved["state"])
    except (RuntimeError, KeyError) as exc:
        raise UserError(f"{path} does not match inverter '{name}' with these options: "
                        f"{str(exc).splitlines()[0]}") from None
    return inverter


@torch.no_grad()
def encode(inverter: Any, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Latents (N, z_dim) on the CPU for images (N, C, H, W) in [-1, 1], in batches."""
    parts = []
    for chunk in images.split(batch_size):
        with torch.enable_grad():  # optimisation-based inverters differentiate the generator
            parts.append(inverter.encode(chunk).detach().float().cpu())
    return torch.cat(parts) if parts else torch.empty(0)


def decode(run: Run, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """G(z) on the CPU, in batches, with the generator in eval mode."""
    return run.generate(z, batch_size)


def psnr_db(mse: float) -> float:
    """PSNR in dB of a mean squared error between images in [-1, 1] (peak-to-peak 2)."""
    return float(10 * math.log10(4.0 / max(mse, 1e-12)))


# ---- evaluation -----------------------------------------------------------------------------
def _mean_subtracted_cosine(a: torch.Tensor, b: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    a = (a - mean).flatten(1)
    b = (b - mean).flatten(1)
    return torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-8)


def _random_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs (i, j), i != j, for the random-pair baselines."""
    gen = torch.Generator().manual_seed(seed)
    i = torch.arange(n)
    shift = torch.randint(1, max(n, 2), (n,), generator=gen)
    return i, (i + shift) % n


def evaluate(run: Run, inverter: Any, images: torch.Tensor | None, n_synthetic: int = 500,
             seed: int = 0) -> dict[str, Any]:
    """Score an inverter: latent recovery on synthetic G(z) and reconstruction of real images.

    Returns a dict with, for synthetic samples, the mean sum of |z - E(G(z))| per vector against
    the same measure between random pairs of prior samples; for the real images (when given),
    MSE, PSNR (peak-to-peak 2 for [-1, 1] images) and the cosine similarity between x and
    G(E(x)) after subtracting the images' mean, against random pairs of real images; and the
    encoding time per image.
    """
    gen = torch.Generator().manual_seed(seed)
    z = sample_prior(n_synthetic, run.config["z_dim"], run.config["prior"], torch.device("cpu"), gen)
    x = decode(run, z)
    start = time.perf_counter()
    z_rec = encode(inverter, x)
    synthetic_seconds = time.perf_counter() - start
    i, j = _random_pairs(n_synthetic, seed)
    result: dict[str, Any] = {
        "synthetic": {
            "n": n_synthetic,
            "latent_l1": float((z - z_rec).abs().sum(1).mean()),
            "latent_l1_random_pairs": float((z[i] - z[j]).abs().sum(1).mean()),
            "image_mse": float((x - decode(run, z_rec)).pow(2).mean()),
        },
        "seconds_per_image": synthetic_seconds / max(n_synthetic, 1),
    }
    if images is not None and len(images) > 0:
        start = time.perf_counter()
        z_real = encode(inverter, images)
        real_seconds = time.perf_counter() - start
        rec = decode(run, z_real)
        mse_per = (images - rec).pow(2).flatten(1).mean(1)
        mean = images.mean(0, keepdim=True)
        cos = _mean_subtracted_cosine(images, rec, mean)
        i, j = _random_pairs(len(images), seed)
        mse = float(mse_per.mean())
        result["real"] = {
            "n": len(images),
            "mse": mse,
            "psnr_db": psnr_db(mse),
            "cosine": float(cos.mean()),
            "cosine_random_pairs": float(_mean_subtracted_cosine(images[i], images[j], mean).mean()),
        }
        total = n_synthetic + len(images)
        result["seconds_per_image"] = (synthetic_seconds + real_seconds) / total
    return result


def format_table(name: str, result: dict[str, Any]) -> str:
    """A plain-text table of an evaluation, one measure per line."""
    s = result["synthetic"]
    lines = [f"inverter {name}",
             f"  synthetic G(z), n={s['n']}: mean sum|z - z'| {s['latent_l1']:.3f} "
             f"(random pairs {s['latent_l1_random_pairs']:.3f}); image MSE {s['image_mse']:.4f}"]
    if "real" in result:
        r = result["real"]
        lines.append(f"  real images, n={r['n']}: MSE {r['mse']:.4f}, PSNR {r['psnr_db']:.2f} dB, "
                     f"mean-subtracted cosine {r['cosine']:.3f} (random pairs {r['cosine_random_pairs']:.3f})")
    lines.append(f"  seconds per image: {result['seconds_per_image']:.4f}")
    return "\n".join(lines)


def _plot_history(history: list[dict[str, float]], path: Path, title: str) -> None:
    if history:
        keys = [k for k in history[0] if k != "step"]
        line_plots({k: [row.get(k, float("nan")) for row in history] for k in keys}, path, "step",
                   x=[row["step"] for row in history], title=title, shared=True)
