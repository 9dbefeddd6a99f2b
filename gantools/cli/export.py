"""`gantools export`: a run's generator as safetensors, a torch.export .pt2 or ONNX, with a JSON sidecar."""
from __future__ import annotations

from pathlib import Path

import click

from gantools.cli.options import CONTEXT
from gantools.errors import UserError

_FORMATS = ("safetensors", "pt2", "onnx")  # gantools.export.FORMATS, without importing torch for --help


@click.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path())
@click.option("--format", "fmt", required=True, type=click.Choice(_FORMATS),
              help="safetensors: weights + run config, reloaded through gantools; pt2 (torch.export) and "
                   "onnx: run with torch or onnxruntime alone (onnx needs pip install gantools[onnx])")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="file to write (default RUN/export/generator.FORMAT); the JSON of what it needs goes "
                   "to OUT.json")
@click.option("--checkpoint", default="latest.pt", show_default=True, help="checkpoint file under RUN/checkpoints/")
def export(run_dir: str, fmt: str, out: str | None, checkpoint: str) -> None:
    """Export a run's generator (its EMA weights where the run keeps them): G(z), or G(z, labels) for a
    conditional run, images in [-1, 1]; gantools.load_generator(OUT) loads any of the formats."""
    import time

    from gantools.export import SUFFIXES, export_generator, sidecar_path

    if not Path(run_dir).is_dir():
        raise UserError(f"no run directory at {run_dir}")
    path = Path(out) if out is not None else Path(run_dir) / "export" / f"generator{SUFFIXES[fmt]}"
    start = time.perf_counter()
    info = export_generator(run_dir, path, fmt, checkpoint=checkpoint)
    inputs = "z, labels" if info["conditional"] else "z"
    click.echo(f"wrote {path} ({fmt}, G({inputs}) -> {info['output']} {tuple(info['output_shape'])}, "
               f"z_dim {info['z_dim']}, {info['prior']} prior; {time.perf_counter() - start:.1f} s) "
               f"and {sidecar_path(path)}")
