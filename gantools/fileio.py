"""Atomic file writes: a crash or an error leaves either the old file or the new one, never a mix."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any, BinaryIO, Iterator

Data = bytes | bytearray | memoryview | str


def atomic_write(path: str | os.PathLike, data: Data) -> Path:
    """Replace ``path`` with ``data`` (a str is written as UTF-8) in one atomic step.

    The bytes go to a temporary file of a unique name in the target's directory (so
    concurrent writers never share one), are flushed and fsynced, and the file is renamed
    over the target with os.replace (atomic on POSIX); then the directory is fsynced so the
    rename itself survives a crash. On any error the temporary file is removed and the old
    target is left as it was. The new file gets the permissions a plain ``open(path, "w")``
    would give (0o666 less the umask).

    Args:
        path: the file to write; missing parent directories are created.
        data: bytes-like, or str (encoded as UTF-8).

    Returns:
        ``path`` as a Path.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_stream(path) as handle:
        handle.write(payload)
    return Path(path)


@contextlib.contextmanager
def atomic_stream(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` piece by piece, atomically: the pieces go to a temporary file
    that replaces ``path`` (fsynced, renamed) only when the block ends without an error; on an error
    (or a kill) the target is untouched and no temporary file is left by an error.

    Raises:
        OSError: the directory cannot be made or written (read-only, forbidden, not a directory),
            with ``filename`` the target path (the CLI shows it as one line).
    """
    path = Path(path)
    try:
        if path.parent.exists() and not path.parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{path.parent} is not a directory", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(path)
    except OSError as error:  # name the target, not the temporary file, in what the user sees
        raise type(error)(error.errno, f"cannot write there ({error.strerror})", str(path)) from error
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def cache_dir() -> Path:
    """Where gantools keeps what it computes once (dataset caches, metric classifiers):
    $GANTOOLS_CACHE, else $XDG_CACHE_HOME/gantools, else ~/.cache/gantools."""
    if os.environ.get("GANTOOLS_CACHE"):
        return Path(os.environ["GANTOOLS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gantools"


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON (UTF-8, a final newline) with :func:`atomic_write`; returns the Path."""
    return atomic_write(path, json.dumps(obj, indent=indent) + "\n")


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create and open ``.NAME.<random>.tmp`` beside ``path``: exclusive, so the name is this call's."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            # 0o666 here (mkstemp would use 0o600) lets the umask decide, as for any new file.
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           0o666), tmp
        except FileExistsError:
            continue


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; Windows cannot open a directory)."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
