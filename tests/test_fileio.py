"""Atomic writes: the target holds the old content or the new, never a mix, and no temp file stays."""
from __future__ import annotations

import ast
import json
import os
import sys
import threading
from pathlib import Path

import pytest

from gantools import fileio


def leftovers(directory: Path, target: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != target)


def test_content_is_replaced_and_parents_are_created(tmp_path):
    path = tmp_path / "a" / "b" / "out.bin"
    assert fileio.atomic_write(path, b"first version, longer") == path
    fileio.atomic_write(str(path), b"second")
    assert path.read_bytes() == b"second"
    assert leftovers(path.parent, "out.bin") == []


def test_str_is_written_as_utf8(tmp_path):
    path = fileio.atomic_write(tmp_path / "t.txt", "digits ½ — ünïcode\n")
    assert path.read_bytes() == "digits ½ — ünïcode\n".encode("utf-8")


def test_json(tmp_path):
    path = fileio.atomic_write_json(tmp_path / "e.json", {"b": [1, 2.5], "a": "é"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"b": [1, 2.5], "a": "é"}
    assert path.read_text(encoding="utf-8").endswith("}\n")
    fileio.atomic_write_json(path, [1], indent=None)
    assert path.read_text() == "[1]\n"


def test_new_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = fileio.atomic_write(tmp_path / "p", b"x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("broken", ["fsync", "replace"])
def test_an_error_mid_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch, broken):
    path = fileio.atomic_write(tmp_path / "state.json", b"old")

    def fail(*args):
        raise OSError(f"simulated {broken} failure")
    monkeypatch.setattr(os, broken, fail)
    with pytest.raises(OSError, match="simulated"):
        fileio.atomic_write(path, b"new content")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path, "state.json") == []


def test_an_interrupt_mid_write_also_cleans_up(tmp_path, monkeypatch):
    path = fileio.atomic_write(tmp_path / "f", b"old")

    def interrupted(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and leftovers(tmp_path, "f") == []


def test_concurrent_writers_never_mix(tmp_path):
    """Threads write the same target at once: every read, and the end result, is one whole payload."""
    path = tmp_path / "shared.bin"
    payloads = [bytes([65 + i]) * (256 * 1024 + i) for i in range(4)]  # distinct bytes and lengths
    fileio.atomic_write(path, payloads[0])
    errors: list[BaseException] = []
    seen: set[bytes] = set()
    stop = threading.Event()

    def reported(work):  # a thread's exception would otherwise be lost
        def run(*args):
            try:
                work(*args)
            except BaseException as exc:
                errors.append(exc)
        return run

    @reported
    def write(payload: bytes) -> None:
        for _ in range(15):
            fileio.atomic_write(path, payload)

    @reported
    def read() -> None:  # the target always exists and is always whole
        while not stop.is_set():
            seen.add(path.read_bytes())

    writers = [threading.Thread(target=write, args=(p,)) for p in payloads]
    reader = threading.Thread(target=read)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often so that writes overlap
    try:
        reader.start()
        for t in writers:
            t.start()
        for t in writers:
            t.join()
    finally:
        stop.set()
        reader.join()
        sys.setswitchinterval(switch)
    assert errors == []
    assert seen <= set(payloads)
    assert path.read_bytes() in payloads
    assert leftovers(tmp_path, "shared.bin") == []


def test_fileio_imports_only_the_standard_library():
    tree = ast.parse(Path(fileio.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_an_unwritable_place_is_an_oserror_naming_the_target(tmp_path):
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "out.json"
    with pytest.raises(NotADirectoryError, match="is not a directory") as info:
        fileio.atomic_write_json(target, {})
    assert info.value.filename == str(target)  # not the temporary file's name
    assert os.listdir(tmp_path) == ["afile"]
