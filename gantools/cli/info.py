"""`gantools list` and `gantools info`: installed plugins, versions, device and op backends."""
from __future__ import annotations

import platform
import sys

import click

from gantools.cli.options import CONTEXT
from gantools.errors import UserError
from gantools.specs import GROUPS


@click.command(name="list", context_settings=CONTEXT)
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
    for item in infos:
        counts[(item.kind, item.name)] = counts.get((item.kind, item.name), 0) + 1
    current = None
    for item in infos:
        if item.kind != current:
            current = item.kind
            click.echo(f"{current}:")
        status = "ok" if check else "-"
        if counts[(item.kind, item.name)] > 1:
            status = "CONFLICT: registered by more than one distribution"
        elif check:
            try:
                registry.load(item.kind, item.name)
            except UserError as exc:
                status = f"BROKEN: {exc}"
        dist = f"{item.distribution} {item.version}"
        click.echo(f"  {item.name:<14} {dist:<22} {item.value:<50} {status}")


@click.command(context_settings=CONTEXT)
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
    width = max(map(len, backends)) + 1
    for name, backend in backends.items():
        click.echo(f"  {name:<{width}} {backend}")
    click.echo("plugins:")
    registry = default_registry()
    for kind in GROUPS:
        click.echo(f"  {kind:<14} {', '.join(registry.names(kind)) or '-'}")
