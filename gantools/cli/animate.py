"""`gantools animate`: a run's fixed-latent grids over training as a GIF or WebP timelapse."""
from __future__ import annotations

import click

from gantools.cli.options import CONTEXT


@click.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path())
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="animation to write: FILE.gif or FILE.webp")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True, max=50), default=4.0, show_default=True,
              help="frames a second")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="every K-th grid (the last one always)")
@click.option("--hold", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="seconds the last frame stays")
def animate(run_dir: str, out: str, fps: float, every: int, hold: float) -> None:
    """Animate the fixed-latent sample grids (RUN/samples/step_N.png) over training, each frame
    labelled with its step."""
    from gantools import animation

    steps = animation.timelapse(run_dir, out, fps=fps, every=every, hold_last=hold)
    click.echo(f"wrote {out}: {len(steps)} frames, steps {steps[0]}..{steps[-1]}, "
               f"{animation.frame_ms(fps)} ms a frame, the last held {max(hold, animation.frame_ms(fps) / 1000):g} s")
