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


# Options of `run` that map one-to-one onto config settings, with the help shown for each.
RUN_SETTINGS = {
    "steps": ("--steps", int, "generator iterations (each has n_critic critic steps)"),
    "batch_size": ("--batch-size", int, "images per batch"),
    "image_size": ("--image-size", int, "resolution (default: the dataset's recommendation)"),
    "channels": ("--channels", click.IntRange(1, 3), "1 grayscale or 3 RGB (default: the data's)"),
    "z_dim": ("--z-dim", int, "latent dimension"),
    "prior": ("--prior", click.Choice(["normal", "uniform"]), "latent prior"),
    "n_critic": ("--n-critic", int, "critic steps per generator step"),
    "optimizer": ("--optimizer", click.Choice(["adam", "rmsprop"]), "optimiser"),
    "lr": ("--lr", float, "learning rate"),
    "betas": ("--betas", str, "Adam betas as b1,b2"),
    "lr_decay": ("--lr-decay", click.Choice(["none", "linear"]), "learning-rate schedule over the run"),
    "lr_decay_start": ("--lr-decay-start", float, "fraction of the run at the full rate before the decay"),
    "ema": ("--ema", float, "decay of the generator's weight average used for sampling; 0 = off"),
    "channels_last": ("--channels-last/--no-channels-last", bool,
                      "channels-last (NHWC) memory format for image networks and batches "
                      "(default: on for images; faster convolutions on CPU)"),
    "precision": ("--precision", click.Choice(["fp32", "bf16", "fp16"]),
                  "autocast the forward passes to bf16 or fp16 (fp16 with loss scaling); fp32: none"),
    "seed": ("--seed", int, "random seed"),
    "device": ("--device", str, "auto, cpu or cuda[:N]"),
    "sample_every": ("--sample-every", int, "write a sample grid every N steps"),
    "checkpoint_every": ("--checkpoint-every", int, "keep a numbered checkpoint every N steps"),
    "log_every": ("--log-every", int, "append a metrics.jsonl row every N steps"),
    "time_limit": ("--time-limit", float, "stop after this many minutes of training (checkpointed; "
                   "--resume continues); 0: no limit"),
    "eval_every": ("--eval-every", int, "score the run with metric plugins every N steps into metrics.jsonl "
                   "(0: never; see gantools eval)"),
    "eval_metrics": ("--eval-metrics", str, "comma-separated metric plugins for --eval-every "
                     "(default: every installed one that applies)"),
    "eval_n": ("--eval-n", int, "generated samples per periodic evaluation"),
}


def _run_options(func):
    from gantools.config import CORE_DEFAULTS, LOSS_KEYS
    for key, (flag, kind, help_text) in reversed(RUN_SETTINGS.items()):
        default = CORE_DEFAULTS[key]
        shown = "the loss's recipe" if key in LOSS_KEYS else (str(default) if default not in (None, []) else False)
        func = click.option(flag, key, type=kind, default=None, help=help_text, show_default=shown)(func)
    return func


@cli.command(context_settings=CONTEXT)
@click.option("--arch", default="dcgan", help="architecture plugin (gantools list architectures)")
@click.option("--loss", default="wgan-gp", help="loss plugin (gantools list losses)")
@click.option("--dataset", default="digits", help="dataset plugin, NAME or NAME:ARG (folder:PATH, npz:PATH, toy:25gaussians)")
@_run_options
@click.option("--arch-opt", multiple=True, metavar="K=V", help="architecture option (repeatable)")
@click.option("--loss-opt", multiple=True, metavar="K=V", help="loss option (repeatable)")
@click.option("--dataset-opt", multiple=True, metavar="K=V", help="dataset option (repeatable)")
@click.option("--inverter", "inverter", default=None,
              help="joint inverter trained with the GAN (ali, vaegan); post-hoc ones: gantools invert fit")
@click.option("--inverter-opt", multiple=True, metavar="K=V", help="inverter option (repeatable)")
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
def run(ctx: click.Context, arch_opt, loss_opt, dataset_opt, inverter_opt, config_file, out, resume, progress,
        nproc, **kwargs) -> None:
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
    settings = {k: v for k, v in kwargs.items() if ctx.get_parameter_source(k) != ParameterSource.DEFAULT}
    for flag, key, pairs in (("--arch-opt", "arch_opts", arch_opt), ("--loss-opt", "loss_opts", loss_opt),
                             ("--dataset-opt", "dataset_opts", dataset_opt),
                             ("--inverter-opt", "inverter_opts", inverter_opt)):
        if pairs:
            settings[key] = parse_pairs(pairs, flag)
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
