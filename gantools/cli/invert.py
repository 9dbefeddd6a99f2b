"""`gantools invert`: fit inverters, map images back to latents, and score inverters."""
from __future__ import annotations

from pathlib import Path

import click

from gantools.cli.options import CONTEXT, inverter_options, inverter_opts
from gantools.fileio import atomic_write_json


class _DefaultCommandGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, goes to a default one:
    `gantools invert RUN --images ...` means `gantools invert apply RUN --images ...`."""

    default_command = "apply"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultCommandGroup, context_settings=CONTEXT, invoke_without_command=False)
def invert() -> None:
    """Map images back to latents: `invert fit`, `invert eval`, and
    `invert RUN_DIR --inverter NAME --images PATH --out DIR`."""


@invert.command(context_settings=CONTEXT)
@inverter_options
@click.option("--steps", type=click.IntRange(min=1), default=None, help="training steps (default: the inverter's)")
def fit(run_dir: str, device: str, inverter: str, inverter_opt, steps: int | None) -> None:
    """Fit a post-hoc inverter (e.g. encoder) against RUN_DIR's generator; saved in the run."""
    from gantools import inversion
    from gantools.api import load_run

    run = load_run(run_dir, device=device)

    def log(step: int, costs: dict[str, float]) -> None:
        click.echo(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in costs.items()), err=True)

    path = inversion.fit(run, inverter, inverter_opts(inverter_opt), steps=steps, log=log)
    click.echo(f"wrote {path} (costs: {path.with_suffix('.jsonl')}, plot: {path.with_suffix('.png')})")


@invert.command(context_settings=CONTEXT)
@inverter_options
@click.option("--images", required=True, type=click.Path(), help="image folder or .npz to invert")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="output directory")
def apply(run_dir: str, device: str, inverter: str, inverter_opt, images: str, out: str) -> None:
    """Invert images: latents.npy, reconstructions.npz, a side-by-side grid and per-image errors."""
    import numpy as np
    import torch

    from gantools import inversion, report
    from gantools.api import load_run
    from gantools.data import load_images

    run = load_run(run_dir, device=device)
    x = load_images(run, images)
    inv = inversion.load(run, inverter, inverter_opts(inverter_opt))
    z = inversion.encode(inv, x)
    rec = inversion.decode(run, z)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "latents.npy", z.numpy())
    np.savez_compressed(out_dir / "reconstructions.npz", images=rec.numpy(), inputs=x.numpy())
    mse = (rec - x).pow(2).flatten(1).mean(1)
    rows = [{"index": i, "mse": float(m), "psnr_db": inversion.psnr_db(float(m))} for i, m in enumerate(mse)]
    atomic_write_json(out_dir / "errors.json", rows, indent=1)
    # Each input beside its reconstruction, up to 8 pairs per row, the first 256 images.
    shown = min(len(x), 256)
    pairs = torch.stack([x[:shown], rec[:shown]], dim=1).flatten(0, 1)
    report.save_samples(pairs, out_dir / "side_by_side.png", "images", nrow=2 * min(8, shown))
    click.echo(f"inverted {len(x)} images with {inverter}: mean MSE {float(mse.mean()):.4f}; wrote "
               f"{out_dir}/latents.npy, reconstructions.npz, errors.json, side_by_side.png")


@invert.command(name="eval", context_settings=CONTEXT)
@inverter_options
@click.option("--images", type=click.Path(), default=None,
              help="held-out real images (folder or .npz); default: digits' test split for runs "
                   "trained on digits:split=train, otherwise synthetic samples only")
@click.option("--n", "n", type=click.IntRange(min=2), default=500, help="synthetic samples")
@click.option("--max-images", type=click.IntRange(min=2), default=500, help="real images used at most")
@click.option("--seed", type=int, default=0, help="seed of the synthetic latents and random pairs")
def evaluate(run_dir: str, device: str, inverter: str, inverter_opt, images: str | None, n: int,
             max_images: int, seed: int) -> None:
    """Score an inverter: latent recovery on G(z), reconstruction of real images, speed."""
    from gantools import inversion
    from gantools.api import load_run
    from gantools.data import held_out_digits, load_images

    run = load_run(run_dir, device=device)
    inv = inversion.load(run, inverter, inverter_opts(inverter_opt))
    real, source = None, "none (give --images)"
    if images is not None:
        real, source = load_images(run, images), str(images)
    else:
        real, source = held_out_digits(run) or (None, source)
    if real is not None:
        real = real[:max_images]
    result = inversion.evaluate(run, inv, real, n_synthetic=n, seed=seed)
    result["images"] = source
    result["inverter"] = inverter
    click.echo(inversion.format_table(inverter, result))
    click.echo(f"  real images: {source}")
    path = Path(run.directory) / "inverters" / f"eval_{inverter}.json"
    atomic_write_json(path, result)  # makes inverters/ if missing
    click.echo(f"wrote {path}")
