"""Checkpoints: plain dicts of names, options, state_dicts and RNG states, written atomically."""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from gantools import fileio
from gantools.errors import UserError

FORMAT = "gantools-checkpoint"
VERSION = 1
# A fitted or jointly trained inverter's state: RUN/inverters/NAME.pt.
INVERTER_FORMAT = "gantools-inverter"
INVERTER_VERSION = 1


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """Write ``obj`` with torch.save to ``path`` so that a crash leaves either the old or the new
    file, never half of one (gantools.fileio.atomic_write: temp file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    fileio.atomic_write(path, buffer.getbuffer())  # no copy of a large checkpoint


def load(path: str | Path, map_location: str | torch.device = "cpu", *, fmt: str = FORMAT,
         version: int = VERSION, what: str = "checkpoint") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: tensors and plain data only, never code.

    Args:
        fmt, version: the "format" the file must carry and the newest "version" understood
            (other gantools files, e.g. fitted inverters, use their own).
        what: how error messages name the file.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no {what} at {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is damaged or foreign
        raise UserError(f"{what} {path} is corrupt or not a torch file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"refusing to load {path}: it holds objects other than tensors and plain "
                        f"data ({first})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise UserError(f"{what} {path} is corrupt or unreadable: {str(exc).splitlines()[0]}") from None
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        raise UserError(f"{path} is not a gantools {what}")
    if obj.get("version", 0) > version:
        raise UserError(f"{path} was written by a newer gantools (format {obj['version']})")
    return obj


def save_inverter_state(path: Path, name: str, options: dict[str, Any], state: dict[str, Any],
                        history: list[dict[str, float]]) -> Path:
    """Write an inverter's learnt state (atomically) where load_inverter_state reads it; returns ``path``."""
    save_atomic({"format": INVERTER_FORMAT, "version": INVERTER_VERSION, "name": name, "options": dict(options),
                 "state": state, "history": history}, path)
    return Path(path)


def load_inverter_state(path: Path) -> dict[str, Any]:
    """{"name", "options", "state", "history"} of an inverter file (errors as for checkpoints)."""
    return load(path, fmt=INVERTER_FORMAT, version=INVERTER_VERSION, what="inverter file")

