"""`gantools sample`: draw from a trained run into a PNG grid (or scatter plot) and/or an .npz."""
from __future__ import annotations

from pathlib import Path

import click

from gantools.cli.options import CONTEXT
from gantools.errors import UserError


@click.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path())
@click.option("--n", "n", type=click.IntRange(min=1), default=64, help="number of samples")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="PNG to write (grid for images, scatter plot for points)")
@click.option("--npz", type=click.Path(dir_okay=False), default=None,
              help="also save the raw samples as array 'samples' in this .npz")
@click.option("--seed", type=int, default=0, help="seed of the latent draws")
@click.option("--device", default="cpu", help="cpu or cuda")
def sample(run_dir: str, n: int, out: str | None, npz: str | None, seed: int, device: str) -> None:
    """Sample from a trained run."""
    import numpy as np

    from gantools import report
    from gantools.api import load_run

    if out is None and npz is None:
        raise UserError("give --out FILE.png and/or --npz FILE.npz")
    run_obj = load_run(run_dir, device=device)
    samples = run_obj.sample(n, seed=seed)
    if out is not None:
        report.save_samples(samples, Path(out), run_obj.data_kind)
        click.echo(f"wrote {out}")
    if npz is not None:
        Path(npz).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(npz, samples=samples.numpy())
        click.echo(f"wrote {npz} (samples {tuple(samples.shape)})")
