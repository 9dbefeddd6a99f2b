"""`gantools run`: train a GAN (the options come from the settings table in gantools/settings.py)."""
from __future__ import annotations

import click
from click.core import ParameterSource

from gantools.cli.options import CONTEXT, options_flag, parse_pairs, run_options

_ARGS = "gantools.run.args"  # ctx.meta key of the arguments `run` was given


class _RunCommand(click.Command):
    """A command that keeps the arguments it parses in ctx.meta, so that --nproc relaunches
    `run` with exactly them, however it was called (main, cli.main, CliRunner)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_ARGS] = list(args)
        return super().parse_args(ctx, args)


def _without_nproc(args: list[str]) -> list[str]:
    """``args`` without --nproc N / --nproc=N (the launched processes are the N)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


@click.command(cls=_RunCommand, context_settings=CONTEXT)
@run_options
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="JSON or TOML file of settings (command-line flags win)")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="run directory", show_default="runs/ARCH-LOSS-DATASET-TIME")
@click.option("--resume", is_flag=True, help="continue the run in --out from its latest checkpoint")
@click.option("--progress/--no-progress", default=True, help="show a progress bar")
@click.option("--nproc", type=click.IntRange(min=1), default=1,
              help="train data-parallel in N processes on this machine (started through torchrun; "
                   "one per GPU on CUDA); --batch-size is the global batch")
@click.pass_context
def run(ctx: click.Context, config_file, out, resume, progress, nproc, **kwargs) -> None:
    """Train a GAN: gantools run --arch dcgan --loss wgan-gp.

    Settings come from, lowest first: gantools' defaults, the loss's published recipe, the
    dataset's recommendations, --config, and these flags; config.json in the run directory
    records where each value came from.

    Data-parallel: torchrun --nproc_per_node N -m gantools run ... (or --nproc N).
    """
    from gantools import distributed
    from gantools.api import train

    if nproc > 1:
        ctx.exit(distributed.launch(nproc, [ctx.command.name, *_without_nproc(ctx.meta[_ARGS])]))
    settings = {}
    for key, value in kwargs.items():
        if key.endswith("_opts"):
            if value:
                settings[key] = parse_pairs(value, options_flag(key))
        elif ctx.get_parameter_source(key) != ParameterSource.DEFAULT:
            settings[key] = value
    result = train(out=out, resume=resume, config=config_file, progress=progress, **settings)
    directory = result.directory
    if not distributed.is_main_process():
        return
    if result.status in ("interrupted", "time limit"):
        what = "interrupted" if result.status == "interrupted" else "stopped at the time limit"
        click.echo(f"{what} at step {result.step}; checkpoint saved. Continue with: "
                   f"gantools run --resume --out {directory}", err=True)
    else:
        click.echo(f"finished {result.step} steps; samples: {directory / 'samples' / 'latest.png'}, "
                   f"checkpoint: {directory / 'checkpoints' / 'latest.pt'}", err=True)
