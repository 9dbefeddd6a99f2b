"""`gantools prepare`: images, archives or videos -> a folder of square PNGs to train on (folder:DIR)."""
from __future__ import annotations

import click

from gantools.cli.options import CONTEXT
from gantools.prepare import DEFAULT_FACE_MARGIN


@click.command(context_settings=CONTEXT)
@click.argument("src", type=click.Path())
@click.option("--out", required=True, type=click.Path(), metavar="DIR",
              help="output folder; must not exist (or be a previous prepare output, with --overwrite)")
@click.option("--size", required=True, type=int, help="side of the square PNGs in pixels")
@click.option("--channels", type=int, default=3, help="3: RGB, 1: grayscale")
@click.option("--faces", is_flag=True,
              help="keep the largest face of each image, cropped square (pip install 'gantools[faces]')")
@click.option("--face-margin", type=float, default=DEFAULT_FACE_MARGIN,
              help="with --faces: crop side as a multiple of the face width")
@click.option("--every", type=int, default=1, metavar="K", help="videos: keep every K-th frame")
@click.option("--workers", type=int, default=None, help="decoding processes  [default: every core]")
@click.option("--overwrite", is_flag=True, help="replace DIR when it holds a previous prepare output")
@click.option("--progress/--no-progress", default=True, help="show a progress bar")
def prepare(src: str, out: str, size: int, channels: int, faces: bool, face_margin: float, every: int,
            workers: int | None, overwrite: bool, progress: bool) -> None:
    """Turn images, archives or videos into a folder of square PNGs to train on.

    SRC is an image folder (recursive), a .zip/.tar/.tar.gz/.tgz of images, a video, or a
    folder of videos. DIR gets numbered PNGs, dataset.json (class labels from sub-folders),
    report.json and preview.png; train on it with --dataset folder:DIR."""
    from gantools.prepare import prepare as prepare_folder

    report = prepare_folder(src, out, size, channels, faces=faces, every=every, face_margin=face_margin,
                            workers=workers, overwrite=overwrite, progress=progress)
    skipped = ", ".join(f"{n} {reason}" for reason, n in report["skipped"].items()) or "none"
    click.echo(f"wrote {report['written']} images to {out} (read {report['read']}, skipped: {skipped}); "
               f"see {out}/preview.png")
