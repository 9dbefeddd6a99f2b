"""The `gantools` command line: run, list, info, sample (eval, invert and latent in cli_*.py)."""
from __future__ import annotations

import platform
import sys
import warnings
from pathlib import Path

import click
from click.core import ParameterSource

from gantools.errors import UserError
from gantools.specs import GROUPS

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True}


def parse_pairs(pairs: tuple[str, ...], flag: str) -> dict[str, str]:
    """('width=32', 'norm=layer') -> {'width': '32', 'norm': 'layer'}."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="gantools")
def cli() -> None:
    """gantools: train, sample and study GANs; extend it with plugins."""


def _setting_option(setting):
    """The click option of one row of gantools.settings.SETTINGS (default None: unset flags are not passed)."""
    from gantools import settings as st

    shown = setting.shown or (str(setting.default) if setting.default not in (None, [], {}) else False)
    if setting.kind == st.OPTIONS:  # arch_opts -> --arch-opt K=V, repeatable
        flag = "--" + setting.name[:-len("_opts")].replace("_", "-") + "-opt"
        return click.option(flag, setting.name, multiple=True, metavar="K=V", help=setting.help)
    kinds = {st.INT: int, st.FLOAT: float, st.STR: str, st.PAIR: str, st.NAMES: str}
    if setting.kind == st.BOOL:
        flag, kind = f"{setting.flag}/--no-{setting.flag[2:]}", bool
    else:
        flag = setting.flag
        kind = click.Choice(setting.choices) if setting.kind == st.CHOICE else kinds[setting.kind]
    return click.option(flag, setting.name, type=kind, default=None, help=setting.help, show_default=shown)


def _run_options(func):
    from gantools.settings import SETTINGS

    for setting in reversed(SETTINGS):
        if setting.cli:
            func = _setting_option(setting)(func)
    return func


@cli.command(context_settings=CONTEXT)
@_run_options
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
        ctx.exit(distributed.launch(nproc, _without_nproc(_ARGV or sys.argv[1:])))
    settings = {}
    for key, value in kwargs.items():
        if key.endswith("_opts"):
            if value:
                settings[key] = parse_pairs(value, "--" + key[:-len("_opts")].replace("_", "-") + "-opt")
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


_ARGV: list[str] = []  # the arguments main() was given, for --nproc to pass on


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


@cli.command(name="list", context_settings=CONTEXT)
@click.argument("kind", required=False, type=click.Choice(list(GROUPS)))
@click.option("--check/--no-check", default=True,
              help="import each plugin to report broken ones (--no-check reads metadata only)")
def list_plugins(kind: str | None, check: bool) -> None:
    """List installed plugins with their distribution and status."""
    from gantools.registry import default_registry

    registry = default_registry()
    infos = registry.find(kind)
    if not infos:
        click.echo(f"no {kind or 'plugins'} installed")
        return
    counts: dict[tuple[str, str], int] = {}
    for info in infos:
        counts[(info.kind, info.name)] = counts.get((info.kind, info.name), 0) + 1
    current = None
    for info in infos:
        if info.kind != current:
            current = info.kind
            click.echo(f"{current}:")
        status = "ok" if check else "-"
        if counts[(info.kind, info.name)] > 1:
            status = "CONFLICT: registered by more than one distribution"
        elif check:
            try:
                registry.load(info.kind, info.name)
            except UserError as exc:
                status = f"BROKEN: {exc}"
        dist = f"{info.distribution} {info.version}"
        click.echo(f"  {info.name:<14} {dist:<22} {info.value:<50} {status}")


@cli.command(context_settings=CONTEXT)
def info() -> None:
    """Versions, device and which backend each op uses."""
    import numpy
    import torch

    from gantools import __version__, ops
    from gantools.registry import default_registry

    click.echo(f"gantools {__version__}")
    click.echo(f"python   {platform.python_version()} ({sys.executable})")
    click.echo(f"torch    {torch.__version__} (CUDA build: {torch.version.cuda or 'no'})")
    click.echo(f"numpy    {numpy.__version__}")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        click.echo(f"device   cuda ({names})")
    else:
        click.echo(f"device   cpu ({torch.get_num_threads()} threads; no CUDA device)")
    click.echo("ops:")
    backends = ops.backend()
    if not isinstance(backends, dict):
        backends = {name: backends for name in ("bias_leaky_relu", "gradient_penalty")}
    for name, backend in backends.items():
        click.echo(f"  {name:<18} {backend}")
    click.echo("plugins:")
    registry = default_registry()
    for kind in GROUPS:
        click.echo(f"  {kind:<14} {', '.join(registry.names(kind)) or '-'}")


@cli.command(context_settings=CONTEXT)
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


def _register_subcommands() -> None:
    from gantools.cli_eval import evaluate
    from gantools.cli_invert import invert
    from gantools.cli_latent import latent

    cli.add_command(evaluate)
    cli.add_command(invert)
    cli.add_command(latent)


_register_subcommands()


def _error_label() -> str:
    """'error', or 'error (rank N)' in the processes of a torchrun launch other than rank 0."""
    import os

    rank = os.environ.get("RANK", "0") if "WORLD_SIZE" in os.environ else "0"
    return "error" if rank == "0" else f"error (rank {rank})"


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    warnings.showwarning = _one_line_warning
    _ARGV[:] = sys.argv[1:] if argv is None else list(argv)
    try:
        code = cli.main(args=argv, prog_name="gantools", standalone_mode=False)
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except UserError as exc:
        sys.stderr.write(f"{_error_label()}: {exc}\n")  # one write: ranks sharing a terminal do not interleave
        sys.stderr.flush()
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
