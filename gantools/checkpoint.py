"""Checkpoints: plain dicts of names, options, state_dicts and RNG states, written atomically."""
from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from gantools.errors import UserError

FORMAT = "gantools-checkpoint"
VERSION = 1


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """Write ``obj`` to ``path`` so that a crash leaves either the old or the new file, never half.

    The bytes go to a temporary file in the same directory, are fsynced, and the file is
    renamed over the target (an atomic replace on POSIX); the directory is fsynced too.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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
