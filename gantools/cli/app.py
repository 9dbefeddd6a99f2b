"""The `gantools` click group, its commands (listed here, explicitly) and `main`, the entry point."""
from __future__ import annotations

import errno
import os
import sys
import warnings

import click

from gantools.cli.animate import animate
from gantools.cli.evaluate import evaluate
from gantools.cli.export import export
from gantools.cli.info import info, list_plugins
from gantools.cli.invert import invert
from gantools.cli.latent import latent
from gantools.cli.neighbours import neighbours
from gantools.cli.options import CONTEXT
from gantools.cli.plot import plot
from gantools.cli.prepare import prepare
from gantools.cli.report import report
from gantools.cli.run import run
from gantools.cli.sample import sample
from gantools.errors import UserError


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="gantools")
def cli() -> None:
    """gantools: train, sample and study GANs; extend it with plugins."""


cli.add_command(run)
cli.add_command(list_plugins)
cli.add_command(info)
cli.add_command(sample)
cli.add_command(evaluate)
cli.add_command(invert)
cli.add_command(latent)
cli.add_command(prepare)
cli.add_command(plot)
cli.add_command(export)
cli.add_command(neighbours)
cli.add_command(animate)
cli.add_command(report)

# OS errors on a path the user gave that they can fix (a missing, read-only or forbidden place, a
# full disk): one line naming the path. Any other OSError is a defect and keeps its traceback.
USER_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EISDIR, errno.ENOTDIR,
               errno.EEXIST, errno.EDQUOT, errno.ENAMETOOLONG}


def _error_label() -> str:
    """'error', or 'error (rank N)' in the processes of a torchrun launch other than rank 0."""
    import os

    rank = os.environ.get("RANK", "0") if "WORLD_SIZE" in os.environ else "0"
    return "error" if rank == "0" else f"error (rank {rank})"


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _fail(message: str) -> None:
    sys.stderr.write(f"{_error_label()}: {message}\n")  # one write: ranks sharing a terminal do not interleave
    sys.stderr.flush()
    sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    warnings.showwarning = _one_line_warning
    try:
        code = cli.main(args=argv, prog_name="gantools", standalone_mode=False)
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except UserError as exc:
        _fail(str(exc))
    except OSError as exc:
        if exc.filename is None or exc.errno not in USER_ERRNOS:
            raise  # not a path the user named or can fix: a defect, shown in full
        reason = exc.strerror
        if exc.errno == errno.EEXIST and not os.path.isdir(exc.filename):
            reason = "exists and is not a directory"  # a directory to be made, with a file in its place
        _fail(f"{exc.filename}: {reason}")
    sys.exit(code if isinstance(code, int) else 0)
