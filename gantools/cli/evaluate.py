"""`gantools eval`: score a run with metric plugins; prints a table and writes RUN_DIR/eval.json."""
from __future__ import annotations

from pathlib import Path

import click

from gantools.cli.options import CONTEXT, parse_pairs
from gantools.errors import UserError


def metric_opts(pairs: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """('fid.features=digits', 'kid.subsets=5') -> {'fid': {'features': 'digits'}, 'kid': {...}}."""
    out: dict[str, dict[str, str]] = {}
    for key, value in parse_pairs(pairs, "--metric-opt").items():
        name, dot, option = key.partition(".")
        if not dot or not name or not option:
            raise UserError(f"--metric-opt expects METRIC.KEY=VALUE, got {key}={value}")
        out.setdefault(name, {})[option] = value
    return out


@click.command("eval", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path())
@click.option("--metric", "metrics", multiple=True,
              help="metric plugin (repeatable; default: every installed metric that applies)")
@click.option("--metric-opt", multiple=True, metavar="METRIC.K=V", help="metric option, e.g. fid.features=digits")
@click.option("--n", "n", type=click.IntRange(min=2), default=2000, help="generated samples scored")
@click.option("--seed", type=int, default=0, help="seed of the latent draw and of the real subset")
@click.option("--checkpoint", default="latest.pt", help="checkpoint file under RUN_DIR/checkpoints")
@click.option("--device", default="cpu", help="cpu or cuda")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="JSON to write (default RUN_DIR/eval.json)")
def evaluate(run_dir: str, metrics: tuple[str, ...], metric_opt: tuple[str, ...], n: int, seed: int,
             checkpoint: str, device: str, out: str | None) -> None:
    """Score a trained run's samples with metric plugins (gantools list metrics)."""
    from gantools import metrics as metrics_mod
    from gantools.api import load_run

    options = metric_opts(metric_opt)
    run = load_run(run_dir, device=device, checkpoint=checkpoint)
    result = metrics_mod.evaluate(run, list(metrics) or None, n=n, seed=seed, options=options)
    if not result["metrics"]:
        raise UserError(f"no installed metric applies to this run ({'; '.join(result['skipped'].values())})")
    result["checkpoint"] = checkpoint
    path = metrics_mod.write(result, Path(out) if out else Path(run_dir) / "eval.json")
    click.echo(metrics_mod.format_table(result))
    click.echo(f"wrote {path}")
