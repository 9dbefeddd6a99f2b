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
@click.option("--class", "label", default=None,
              help="conditional runs: draw every sample of this class (index or name); default: a grid "
                   "with one row per class (--n samples spread over them)")
@click.option("--device", default="cpu", help="cpu or cuda")
def sample(run_dir: str, n: int, out: str | None, npz: str | None, seed: int, label: str | None,
           device: str) -> None:
    """Sample from a trained run."""
    import math

    import numpy as np
    import torch

    from gantools import report
    from gantools.api import load_run
    from gantools.conditional import class_rows
    from gantools.data import run_images
    from gantools.models import sample_prior

    if out is None and npz is None:
        raise UserError("give --out FILE.png and/or --npz FILE.npz")
    run_obj = load_run(run_dir, device=device)
    nrow, labels = None, None
    if label is not None or not run_obj.conditional:
        samples = run_obj.sample(n, seed=seed, label=label)
        if label is not None:
            labels = torch.full((n,), run_obj.class_index(label))
    else:  # one row per class
        nrow = math.ceil(n / len(run_obj.classes))
        labels = class_rows(len(run_obj.classes), nrow)
        z = sample_prior(len(labels), run_obj.config["z_dim"], run_obj.config["prior"], torch.device("cpu"),
                         torch.Generator().manual_seed(seed))
        samples = run_obj.generate(z, labels=labels)
    if out is not None:
        points = run_obj.data_kind == "points"  # 2-D data: over the real data and the critic's level sets
        real = run_images(run_obj, 2000) if points else None
        report.save_samples(samples, Path(out), run_obj.data_kind, real, nrow=nrow,
                            critic=run_obj.critic if points else None)
        rows = f" ({len(run_obj.classes)} rows, one per class: {', '.join(run_obj.classes)})" if nrow else ""
        click.echo(f"wrote {out}{rows}")
    if npz is not None:
        Path(npz).parent.mkdir(parents=True, exist_ok=True)
        arrays = {"samples": samples.numpy()}
        if labels is not None:
            arrays["labels"] = labels.numpy()
        np.savez_compressed(npz, **arrays)
        click.echo(f"wrote {npz} (samples {tuple(samples.shape)}{', labels' if labels is not None else ''})")
