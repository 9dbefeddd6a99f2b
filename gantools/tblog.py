"""TensorBoard beside metrics.jsonl (``--tensorboard``, on by default when the package is installed:
``pip install gantools[tensorboard]``; torch.utils.tensorboard, no TensorFlow).

RUN/tensorboard/ gets every metrics.jsonl column as a scalar (tags ``GROUP/KEY``, the groups of
``gantools plot``), each periodic evaluation figure (``eval/METRIC/FIGURE``), every sample grid
(``samples``) and the resolved config with the source of each value (text ``config``).
metrics.jsonl stays the record: `gantools plot` and the HTML report read it, not these files.
"""
from __future__ import annotations

import html
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np

INSTALL = "pip install gantools[tensorboard]"


def available() -> bool:
    """Whether the tensorboard package is importable (torch.utils.tensorboard needs it)."""
    return importlib.util.find_spec("tensorboard") is not None


def wanted(setting: bool | None) -> bool:
    """--tensorboard as resolved: None (unset) means on when the package is installed."""
    return available() if setting is None else bool(setting)


def check(setting: bool | None) -> str | None:
    """What is wrong with --tensorboard here (for the settings table), or None."""
    if setting and not available():
        return f"needs the tensorboard package: {INSTALL} (or --no-tensorboard)"
    return None


def config_markdown(record: dict[str, Any]) -> str:
    """The resolved config as a Markdown table (TensorBoard's text plugin renders it): setting,
    value, where the value came from."""
    lines = ["| setting | value | from |", "| --- | --- | --- |"]
    sources = record.get("sources", {})
    for key, value in record.get("config", {}).items():
        shown = json.dumps(value) if not isinstance(value, str) else value
        lines.append(f"| {key} | {html.escape(shown).replace('|', '&#124;')} | {sources.get(key, '')} |")
    return "\n".join(lines)


class TensorBoardLog:
    """One run's TensorBoard writer. A resumed run purges the events after its start step (as
    metrics.jsonl drops its rows after it), so the curves show the resumed run, not both.

    Args:
        path: the event directory (RUN/tensorboard).
        start_step: the step the run starts (or resumes) at.
    """

    def __init__(self, path: str | Path, start_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(path), purge_step=start_step + 1 if start_step > 0 else None)

    def config(self, record: dict[str, Any], step: int) -> None:
        self.writer.add_text("config", config_markdown(record), step)

    def scalars(self, step: int, groups: dict[str, dict[str, dict[str, list]]]) -> None:
        """A metrics.jsonl row as diagnostics.collect groups it: tag GROUP/KEY per series."""
        for group, series in groups.items():
            for key, values in series.items():
                for value in values["value"]:
                    self.writer.add_scalar(f"{group}/{key}", value, step)
        self.writer.flush()

    def image(self, tag: str, png: str | Path, step: int) -> None:
        """A PNG already written (a sample grid or a 2-D plot), as TensorBoard shows images."""
        from PIL import Image

        with Image.open(png) as im:
            pixels = np.asarray(im.convert("RGB"))
        self.writer.add_image(tag, pixels, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
