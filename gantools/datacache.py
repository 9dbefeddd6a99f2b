"""Image folders decoded once, in parallel, into a memory-mapped uint8 cache that every start shares.

A folder is decoded (resize + centre crop, JPEG draft mode) by a pool of processes with a
progress bar, and the (N, C, H, W) uint8 array is written to ``CACHE/datasets/KEY.u8`` beside
``KEY.json`` (its shape, the files kept, labels, checksums). KEY hashes the file list (relative
paths, sizes, modification times), the size, the channels, the crop and the format version, so
a changed folder gets a new cache and the stale one is removed. Later starts, resumes,
evaluations, inversions and every torchrun rank open the array memory-mapped (read-only): one
copy in the page cache, never loaded whole, batches gathered by one indexing call.

Never trusted half-written: the data file is written to a temporary name and renamed, then the
JSON is written the same way; the JSON is the commit record. A cache whose JSON is missing or
unreadable, whose data file has the wrong size, or whose sampled block checksums disagree is
reported once and rebuilt. A lock file serialises building: two processes starting on a cold
cache decode once, the second waits and reuses the first one's file.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gantools import fileio
from gantools.errors import UserError
from gantools.imageio import IMAGE_EXTENSIONS, TensorImages, read_images

FORMAT = "gantools-image-cache"
VERSION = 2  # 2: labels from class sub-folders, class names
CROP = "center"
CHUNK = 64  # files per task of the decoding pool
CHECK_BLOCKS, CHECK_BYTES = 64, 1 << 16  # sampled blocks whose crc32 is recorded and verified


@dataclass
class ImageSet:
    """Decoded images of a folder.

    Attributes:
        images: uint8 (N, C, H, W): a read-only memory map of the cache file, or an in-memory array.
        files: the relative paths of the N images kept, in order.
        skipped: files with an image extension that could not be decoded.
        labels: (N,) class indices from the folder's dataset.json or its class sub-folders, or None.
        cache: the cache's data file, or None when not cached.
        classes: the class names (index = label), where known.
    """

    images: np.ndarray
    files: list[str]
    skipped: int
    labels: np.ndarray | None = None
    cache: Path | None = None
    classes: list[str] | None = None


# Files of a `gantools prepare` output (report.json names the tool) that are not training images.
PREPARE_EXTRAS = ("preview.png",)


def _prepared(root: Path) -> bool:
    try:
        return json.loads((root / "report.json").read_text()).get("tool") == "gantools prepare"
    except (OSError, ValueError, AttributeError):
        return False


def scan(root: Path) -> list[tuple[str, int, int]]:
    """(relative posix path, size, mtime_ns) of every image file under root, sorted by path (a
    prepared folder's preview grid left out)."""
    skip = {root / name for name in PREPARE_EXTRAS} if _prepared(root) else set()
    found = []
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(Path(entry.path))
                elif (Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS and entry.is_file()
                      and Path(entry.path) not in skip):
                    info = entry.stat()
                    found.append((Path(entry.path).relative_to(root).as_posix(), info.st_size, info.st_mtime_ns))
    return sorted(found)


def cache_key(entries: list[tuple[str, int, int]], size: int, channels: int, labels_stamp: list) -> str:
    """A hash of everything the decoded array depends on."""
    digest = hashlib.sha256(json.dumps([FORMAT, VERSION, size, channels, CROP, labels_stamp]).encode())
    for rel, nbytes, mtime in entries:
        digest.update(f"{rel}\0{nbytes}\0{mtime}\n".encode())
    return digest.hexdigest()[:32]


def load_folder(root: str | os.PathLike, size: int, channels: int, *, cache: str = "auto",
                workers: int | None = None, progress: bool = True) -> ImageSet:
    """Every image under ``root`` as uint8 (N, channels, size, size), through the cache.

    Args:
        root: the folder.
        size, channels: square side in pixels; 3 (RGB) or 1 (grayscale).
        cache: "auto" (under gantools.fileio.cache_dir()/datasets), "off" (decode into memory
            every time) or a directory to keep the cache in.
        workers: decoding processes (default: every core).
        progress: a progress bar on stderr while decoding.
    """
    root = _check_root(root)
    entries = scan(root)
    if not entries:
        extensions = ", ".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
        raise UserError(f"no images ({extensions}) found in {root}")
    label_file = root / "dataset.json"
    stamp = [label_file.stat().st_size, label_file.stat().st_mtime_ns] if label_file.is_file() else []
    decoder = _Decoder(root, [e[0] for e in entries], size, channels, workers, progress)
    if cache == "off":
        return decoder.to_memory(_labels(label_file, decoder.files))
    directory = fileio.cache_dir() / "datasets" if cache == "auto" else Path(cache).expanduser()
    key = cache_key(entries, size, channels, stamp)
    # Committed caches are never rewritten in place, so a healthy one is read without the lock;
    # building (and judging damage) happens under it, so concurrent starts decode once.
    found = _open(directory, key, quiet=True)
    if found is None:
        with _Lock(directory / f"{key}.lock"):
            found = _open(directory, key)
            if found is None:
                for leftover in directory.glob(f".{key}.u8.*.tmp"):  # a build killed mid-write
                    leftover.unlink(missing_ok=True)
                _build(directory, key, decoder, _labels(label_file, decoder.files), str(root))
                found = _open(directory, key, after_build=True)
    return found


def _check_root(root) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"image folder not found: {root}")
    if not root.is_dir():
        raise UserError(f"not a folder: {root}")
    return root


Labels = tuple[dict[str, int], "list[str] | None"]  # {relative path: class}, the class names


def _labels(label_file: Path, files: list[str]) -> Labels | None:
    """The images' classes: from a dataset.json ({"labels": [[path, class], ...], "classes": [names]}),
    else from class sub-folders (every image one folder deep or deeper, two folders or more: the
    first folder of its path is its class, numbered in sorted order), else None."""
    if not label_file.is_file():
        tops = [f.split("/", 1)[0] if "/" in f else None for f in files]
        names = sorted(set(tops) - {None})
        if None in tops or len(names) < 2:
            return None
        index = {name: i for i, name in enumerate(names)}
        return {f: index[top] for f, top in zip(files, tops)}, names
    try:
        record = json.loads(label_file.read_text())
        pairs, names = record.get("labels"), record.get("classes")
        if pairs is None:
            return None
        return {str(path): int(label) for path, label in pairs}, None if names is None else [str(n) for n in names]
    except (ValueError, TypeError, AttributeError) as exc:
        raise UserError(f"{label_file} is not a dataset.json with {{\"labels\": [[path, class], ...]}}: {exc}") from None


class _Decoder:
    """Decodes a folder's files in chunks, in a process pool when there are enough of them."""

    def __init__(self, root: Path, files: list[str], size: int, channels: int, workers: int | None,
                 progress: bool):
        self.root, self.files, self.size, self.channels = root, files, size, channels
        self.workers = max(1, min(workers or os.cpu_count() or 1, len(files) // CHUNK or 1))
        self.progress = progress

    def chunks(self):
        """(relative paths, uint8 (k, C, H, W), (k,) ok) per chunk, in file order."""
        parts = [self.files[i:i + CHUNK] for i in range(0, len(self.files), CHUNK)]
        tasks = [([str(self.root / f) for f in part], self.size, self.channels, True) for part in parts]
        bar = _bar(len(self.files), self.root) if self.progress else None
        try:
            for part, (images, ok) in zip(parts, _map(_decode_task, tasks, self.workers)):
                if bar is not None:
                    bar.update(len(part))
                yield part, images, ok
        finally:
            if bar is not None:
                bar.close()

    def to_memory(self, labels: Labels | None) -> ImageSet:
        out = np.empty((len(self.files), self.channels, self.size, self.size), dtype=np.uint8)
        kept: list[str] = []
        for part, images, ok in self.chunks():
            out[len(kept):len(kept) + int(ok.sum())] = images[ok]
            kept += [f for f, good in zip(part, ok) if good]
        _check_some(kept, self.files, self.root)
        return ImageSet(out[:len(kept)], kept, len(self.files) - len(kept), _label_array(labels, kept, self.root),
                        classes=None if labels is None else labels[1])


def _decode_task(task) -> tuple[np.ndarray, np.ndarray]:
    return read_images(*task)


def _map(func, tasks: list, workers: int):
    """func over tasks in order: in this process for one worker, else in a pool of forked ones."""
    if workers == 1:
        yield from map(func, tasks)
        return
    import multiprocessing as mp

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers) as pool:
        yield from pool.imap(func, tasks)


def _bar(total: int, root: Path):
    from tqdm.auto import tqdm

    interval = 0.1 if sys.stderr.isatty() else 30.0
    return tqdm(total=total, unit="img", desc=f"decoding {root.name}", dynamic_ncols=True, mininterval=interval)


def _check_some(kept: list[str], files: list[str], root: Path) -> None:
    if not kept:
        raise UserError(f"none of the {len(files)} image files in {root} could be read")


def _label_array(labels: Labels | None, kept: list[str], root: Path) -> np.ndarray | None:
    if labels is None:
        return None
    labels = labels[0]
    missing = [f for f in kept if f not in labels]
    if missing:
        raise UserError(f"{root / 'dataset.json'} has no label for {len(missing)} image(s), e.g. {missing[0]}")
    return np.array([labels[f] for f in kept], dtype=np.int64)


class MappedImages(TensorImages):
    """TensorImages over a cache's read-only memory map that keeps the process's resident set small.

    Batches read their rows through the map (one indexing call); every ``release_every`` batches
    the map's pages are dropped from this process (madvise MADV_DONTNEED on a shared read-only
    file map): they stay in the kernel's page cache, shared with every other process reading the
    cache, and the next access maps them again without reading the disk. So RSS stays near the
    training's own memory instead of growing to the whole array over an epoch (measured: each
    12 KB row read maps about 400 KB of the file here, the page cache's large folios, so 64
    random rows map 25 MB; MADV_RANDOM alone does not change that).
    """

    def __init__(self, images: np.ndarray, labels=None, release_every: int = 1, classes=None):
        super().__init__(images, labels=labels, classes=classes)
        self._map, self._release_every, self._batches = images, release_every, 0

    def get_batch(self, indices):
        batch = super().get_batch(indices)
        self._batches += 1
        if self._batches % self._release_every == 0:
            _advise(self._map, "MADV_DONTNEED")
        return batch


def _advise(images: np.ndarray, advice: str) -> None:
    """madvise a numpy memory map where the platform has it (Linux, Python 3.8+)."""
    import mmap

    handle = getattr(images, "_mmap", None)
    if handle is not None and hasattr(handle, "madvise") and hasattr(mmap, advice):
        handle.madvise(getattr(mmap, advice))


# ---- the cache files ------------------------------------------------------------------------
def _build(directory: Path, key: str, decoder: _Decoder, labels: Labels | None, source: str) -> None:
    """Decode into KEY.u8 (streamed, atomic), then write KEY.json, the record that makes it valid."""
    kept: list[str] = []
    with fileio.atomic_stream(directory / f"{key}.u8") as handle:
        for part, images, ok in decoder.chunks():
            handle.write(np.ascontiguousarray(images[ok]).tobytes())
            kept += [f for f, good in zip(part, ok) if good]
        _check_some(kept, decoder.files, decoder.root)
    shape = [len(kept), decoder.channels, decoder.size, decoder.size]
    label_array = _label_array(labels, kept, decoder.root)
    meta = {"format": FORMAT, "version": VERSION, "key": key, "source": source, "shape": shape,
            "skipped": len(decoder.files) - len(kept), "files": kept,
            "labels": None if label_array is None else label_array.tolist(),
            "classes": None if labels is None else labels[1],
            "checks": _checksums(directory / f"{key}.u8", int(np.prod(shape)))}
    fileio.atomic_write_json(directory / f"{key}.json", meta, indent=None)
    _remove_stale(directory, key, source, shape[1:])


def _offsets(nbytes: int) -> list[int]:
    if nbytes <= CHECK_BYTES * CHECK_BLOCKS:
        return list(range(0, nbytes, CHECK_BYTES))
    step = (nbytes - CHECK_BYTES) / (CHECK_BLOCKS - 1)
    return [round(i * step) for i in range(CHECK_BLOCKS)]


def _checksums(path: Path, nbytes: int) -> list[list[int]]:
    """[offset, crc32] of evenly spaced blocks (the first and last included)."""
    out = []
    with open(path, "rb") as handle:
        for offset in _offsets(nbytes):
            handle.seek(offset)
            out.append([offset, zlib.crc32(handle.read(CHECK_BYTES))])
    return out


def _open(directory: Path, key: str, after_build: bool = False, quiet: bool = False) -> ImageSet | None:
    """The cached set, or None (after one warning, unless ``quiet``, when a cache was there but is damaged)."""
    meta_path, data_path = directory / f"{key}.json", directory / f"{key}.u8"
    if not meta_path.exists() and not data_path.exists():
        return None
    problem = _damage(meta_path, data_path, key)
    if problem is not None:
        if after_build:
            raise UserError(f"the dataset cache just written at {data_path} does not read back ({problem})")
        if not quiet:
            warnings.warn(f"dataset cache {data_path} is damaged ({problem}); rebuilding it", stacklevel=3)
        return None
    meta = json.loads(meta_path.read_text())
    images = np.memmap(data_path, dtype=np.uint8, mode="r", shape=tuple(meta["shape"]))
    _advise(images, "MADV_RANDOM")  # rows are read in random order: no readahead around each one
    labels = None if meta["labels"] is None else np.asarray(meta["labels"], dtype=np.int64)
    return ImageSet(images, meta["files"], int(meta["skipped"]), labels, data_path, meta.get("classes"))


def _damage(meta_path: Path, data_path: Path, key: str) -> str | None:
    """What is wrong with a cache, or None."""
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT or meta.get("version") != VERSION or meta.get("key") != key:
            return "its record is not this folder's"
        nbytes = int(np.prod(meta["shape"]))
        if data_path.stat().st_size != nbytes:
            return f"{data_path.stat().st_size} bytes where {nbytes} were written"
        if _checksums(data_path, nbytes) != meta["checks"]:
            return "its contents changed since it was written"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _remove_stale(directory: Path, key: str, source: str, item_shape: list[int]) -> None:
    """Delete older caches of the same folder at the same size and channels."""
    for meta_path in directory.glob("*.json"):
        if meta_path.stem == key:
            continue
        try:
            meta = json.loads(meta_path.read_text())
            stale = meta.get("format") == FORMAT and meta.get("source") == source and meta["shape"][1:] == item_shape
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if stale:
            for suffix in (".json", ".u8", ".lock"):
                meta_path.with_suffix(suffix).unlink(missing_ok=True)


class _Lock:
    """An exclusive lock on a file (fcntl.flock): one process builds a cache, the others wait."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"gantools: waiting for another process building the dataset cache ({self.path.stem})",
                  file=sys.stderr)
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
