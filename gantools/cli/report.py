"""`gantools report`: a run as one self-contained HTML page (RUN/report.html by default)."""
from __future__ import annotations

import click

from gantools.cli.options import CONTEXT


@click.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="HTML file (default: RUN/report.html)")
def report(run_dir: str, out: str | None) -> None:
    """One HTML page of a run, images inlined (no network, no script): the config and where each
    value came from, the training curves, the latest and fixed-latent grids, a timelapse, the
    evaluations (eval.json and --eval-every rows) and any inversion results in the run."""
    from gantools import htmlreport

    path = htmlreport.write(run_dir, out)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
