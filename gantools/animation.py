"""Animations (GIF or WebP): a run's fixed-latent grids over training, labelled with their steps
(`gantools animate`), and frames of generated images such as a latent interpolation."""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, ImageDraw

from gantools import fileio
from gantools.errors import UserError
from gantools.imageio import grid_image
from gantools.studyplots import _font, _text_size

FORMATS = {".gif": "GIF", ".webp": "WEBP"}
STEP_GRID = re.compile(r"step_(\d+)\.png")
LABEL_HEIGHT = 18  # pixels of the text strip under each timelapse frame
MIN_FRAME_MS = 20  # browsers show GIF delays under 20 ms as 100 ms


def animation_format(path: str | Path) -> str:
    """'GIF' or 'WEBP' from the suffix of ``path``; any other suffix is a user error."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"{path}: an animation must end in .gif or .webp (got {suffix or 'no suffix'!r})")
    return FORMATS[suffix]


def frame_ms(fps: float) -> int:
    """Milliseconds a frame stays at ``fps``, a multiple of 10 (GIF counts centiseconds), 20 at least."""
    if not fps > 0:
        raise UserError(f"fps must be positive (got {fps})")
    return max(MIN_FRAME_MS, 10 * round(100.0 / fps))


def step_grids(run_dir: str | Path) -> list[tuple[int, Path]]:
    """The fixed-latent grids RUN/samples/step_N.png as (step, path), by step."""
    samples = Path(run_dir) / "samples"
    found = [(int(m.group(1)), p) for p in samples.glob("step_*.png") if (m := STEP_GRID.fullmatch(p.name))]
    return sorted(found)


def pick_every(items: Sequence, every: int) -> list:
    """Every ``every``-th item from the first, and the last one always."""
    if every < 1:
        raise UserError(f"every must be at least 1 (got {every})")
    chosen = list(items[::every])
    if items and (len(items) - 1) % every:
        chosen.append(items[-1])
    return chosen


def label_frame(image: Image.Image, text: str) -> Image.Image:
    """``image`` above a white strip of LABEL_HEIGHT pixels holding ``text`` in black."""
    image = image.convert("L" if image.mode in ("L", "1", "I", "I;16") else "RGB")
    canvas = Image.new(image.mode, (image.width, image.height + LABEL_HEIGHT), "white")
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font()
    _, height = _text_size(draw, text, font)
    draw.text((4, image.height + max(0, (LABEL_HEIGHT - height) // 2) - 1), text, fill="black", font=font)
    return canvas


def run_frames(run_dir: str | Path, every: int = 1) -> list[tuple[int, Image.Image]]:
    """The timelapse frames of a run: (step, grid labelled "step N") for every ``every``-th grid of
    RUN/samples by step, the last grid always included.

    Raises:
        UserError: no step grids in RUN/samples.
    """
    grids = step_grids(run_dir)
    if not grids:
        raise UserError(f"no fixed-latent grids (samples/step_N.png) in {run_dir}: not a run directory, "
                        f"or no grid written yet")
    frames = []
    for step, path in pick_every(grids, every):
        with Image.open(path) as image:
            frames.append((step, label_frame(_flatten(image), f"step {step}")))
    return frames


def _flatten(image: Image.Image) -> Image.Image:
    """RGB or L; transparency (matplotlib's scatter plots) composed over white."""
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, "white")
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("L" if image.mode in ("L", "1", "I", "I;16") else "RGB")


def _uniform(frames: Sequence[Image.Image]) -> list[Image.Image]:
    """Frames of one mode (L unless one is in colour) on one canvas size (the largest; top left,
    white around), since grids drawn with a tight bounding box may differ by a few pixels."""
    mode = "L" if all(f.mode == "L" for f in frames) else "RGB"
    width, height = max(f.width for f in frames), max(f.height for f in frames)
    out = []
    for frame in frames:
        frame = frame.convert(mode)
        if frame.size != (width, height):
            canvas = Image.new(mode, (width, height), "white")
            canvas.paste(frame, (0, 0))
            frame = canvas
        out.append(frame)
    return out


def encode_animation(frames: Sequence[Image.Image], fmt: str, fps: float = 4.0, hold_last: float = 0.0) -> bytes:
    """The bytes of an endlessly looping animation of ``frames``.

    Args:
        frames: PIL images (mixed sizes and modes are put on one canvas).
        fmt: "GIF" or "WEBP" (lossless).
        fps: frames a second (each frame lasts frame_ms(fps)).
        hold_last: seconds the last frame stays, when longer than a frame.
    """
    if not frames:
        raise UserError("an animation needs at least one frame")
    frames = _uniform(frames)
    durations = [frame_ms(fps)] * len(frames)
    durations[-1] = max(durations[-1], 10 * round(100.0 * hold_last))
    buffer = io.BytesIO()
    extra = {"lossless": True, "method": 4} if fmt == "WEBP" else {"disposal": 1}
    frames[0].save(buffer, format=fmt, save_all=True, append_images=list(frames[1:]), duration=durations,
                   loop=0, **extra)
    return buffer.getvalue()


def save_animation(frames: Sequence[Image.Image], path: str | Path, fps: float = 4.0,
                   hold_last: float = 0.0) -> Path:
    """Write ``frames`` as a looping GIF or WebP (by the suffix of ``path``), atomically.

    Args:
        frames: PIL images, in order.
        path: a .gif or .webp file; parent folders are created.
        fps: frames a second.
        hold_last: seconds the last frame stays, when longer than a frame.

    GIF keeps durations in centiseconds and merges identical consecutive frames into one.
    """
    fmt = animation_format(path)
    return fileio.atomic_write(path, encode_animation(frames, fmt, fps, hold_last))


def timelapse(run_dir: str | Path, path: str | Path, fps: float = 4.0, every: int = 1,
              hold_last: float = 2.0) -> list[int]:
    """Animate a run's fixed-latent grids into ``path`` (.gif or .webp); returns the steps shown.

    Args:
        run_dir: the run directory (its samples/step_N.png).
        path: the animation to write.
        fps: frames a second.
        every: every K-th grid (the last always).
        hold_last: seconds the last frame stays.
    """
    animation_format(path)  # refuse a bad suffix before reading any grid
    frames = run_frames(run_dir, every)
    save_animation([image for _, image in frames], path, fps, hold_last)
    return [step for step, _ in frames]


def pingpong(items: Sequence) -> list:
    """0, 1, ..., n-1, n-2, ..., 1: forth and back without repeating the ends (2n - 2 items)."""
    items = list(items)
    return items + items[-2:0:-1]


def tensor_frames(images: torch.Tensor, size: int = 128) -> list[Image.Image]:
    """One frame per image of (N, 1 or 3, H, W) in [-1, 1], enlarged (nearest neighbour) by the
    whole factor that brings it nearest ``size`` pixels wide, at least 1."""
    upscale = max(1, round(size / images.shape[-1]))
    return [grid_image(image[None], nrow=1, upscale=upscale) for image in images]
