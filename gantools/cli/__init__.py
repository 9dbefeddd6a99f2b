"""The `gantools` command line: one module per command (group), registered in gantools.cli.app."""
from gantools.cli.app import _one_line_warning, cli, main

__all__ = ["cli", "main"]
