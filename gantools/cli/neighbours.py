"""`gantools neighbours`: each generated sample beside its nearest training images, in pixel space and
in a feature space (the dataset's own, else the critic's trunk), as a grid PNG and its JSON."""
from __future__ import annotations

from pathlib import Path

import click

from gantools.cli.options import CONTEXT
from gantools.errors import UserError


@click.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path())
@click.option("--n", "n", type=click.IntRange(min=1), default=16, help="generated samples (one row each)")
@click.option("--k", "k", type=click.IntRange(min=1), default=5, help="nearest training images per space")
@click.option("--bank", type=click.IntRange(min=2), default=None,
              help="compare with the first N training images only (default: all of them)")
@click.option("--seed", type=int, default=0, help="seed of the latent draws (and of the reference images)")
@click.option("--device", default="cpu", help="cpu or cuda")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="grid PNG (default RUN/neighbours.png); a .json of the numbers beside it")
def neighbours(run_dir: str, n: int, k: int, bank: int | None, seed: int, device: str, out: str | None) -> None:
    """Show each sample beside its k nearest training images in pixel space, then in a feature
    space (the dataset's, e.g. the digits classifier, else the critic's trunk), and say whether
    samples are closer to training images than those are to each other (memorisation)."""
    from gantools import neighbours as nb
    from gantools.api import load_run

    path = Path(out) if out is not None else Path(run_dir) / "neighbours.png"
    if path.suffix.lower() != ".png":
        raise UserError(f"--out must name a .png file (got {path})")
    run = load_run(run_dir, device=device)
    result = nb.neighbours(run, n=n, k=k, seed=seed, bank_size=bank, device=device)
    record = nb.save_neighbours(result, path)
    click.echo(f"wrote {path} and {path.with_suffix('.json')} ({n} samples x {k} neighbours among "
               f"{record['bank']} training images)")
    for space, figures in record["memorisation"].items():
        name = record["spaces"][space].get("name", "pixel values")
        ratio = "n/a" if figures["ratio"] is None else f"{figures['ratio']:.3f}"
        click.echo(f"{space} [{name}]: mean nearest distance {figures['sample_nearest_mean']:.4g} (samples) vs "
                   f"{figures['train_nearest_mean']:.4g} (training images to each other), ratio {ratio}")
    click.echo("a ratio well below 1 means samples are closer to training images than those are to each "
               "other: a sign of memorisation")
