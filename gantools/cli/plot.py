"""`gantools plot`: a run's training curves, one figure per group, from its metrics.jsonl."""
from __future__ import annotations

from pathlib import Path

import click

from gantools.cli.options import CONTEXT
from gantools.errors import UserError


@click.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="directory for the figures and plots.json (default: RUN/plots)")
def plot(run_dir: str, out: str | None) -> None:
    """Plot a run's losses, critic scores, D(x)/D(G(z)), schedules, images/s, gradient norms and
    periodic evaluations against the step (also while the run is going)."""
    from gantools import diagnostics

    metrics = Path(run_dir) / "metrics.jsonl"
    if not metrics.is_file():
        raise UserError(f"no metrics.jsonl in {run_dir}: not a run directory, or nothing logged yet")
    out_dir = Path(out) if out is not None else Path(run_dir) / "plots"
    written = diagnostics.plot_run(metrics, out_dir)
    if not written:
        raise UserError(f"{metrics} has no logged rows yet")
    click.echo(f"wrote {len(written)} figures to {out_dir}: " + ", ".join(sorted(p.name for p in written.values())))
