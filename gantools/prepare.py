"""`gantools prepare`: image folders, archives and videos (optionally face-cropped) -> a folder of PNGs.

DIR (StyleGAN dataset_tool's layout, as a folder): ``00000/img00000000.png``... (sub-folders of
1000, numbered without gaps in source order), ``dataset.json`` (labels, see dataset_labels),
``report.json`` (read, written, skipped by reason; ``"tool": "gantools prepare"`` marks the
folder as ours) and ``preview.png``. It is written as ``DIR.partial-XXXX`` and renamed at the end,
so an interrupted run never leaves an output that looks complete.
"""
from __future__ import annotations

import contextlib
import functools
import io
import itertools
import json
import math
import os
import secrets
import shutil
import signal
import tarfile
import zipfile
import zlib
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from gantools.errors import UserError
from gantools.imageio import IMAGE_EXTENSIONS, READ_ERRORS, convert_image, list_image_files, resize_center_crop

TOOL = "gantools prepare"
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm"})
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
PER_FOLDER = 1000  # images per sub-folder of the output
PREVIEW = 64  # images in preview.png
POOL_MIN = 32  # fewer images than this are decoded in this process: a pool would cost more than it saves
IN_FLIGHT = 8  # tasks queued per worker: bounds the memory a large archive can take

DEFAULT_FACE_MARGIN = 2.0  # crop side / face width
DETECT_SIDE = 640  # faces are detected on a copy shrunk to at most this long side (speed)
EYE_ZONE = 0.6  # eyes are looked for in this upper fraction of the face box
EYE_LINE_OFFSET = 0.125  # crop centre below the eye line, in face widths
SMOOTHING = 0.3  # weight of a new detection in the moving average of video boxes
RESET_AFTER = 5  # kept frames in a row without a face after which video smoothing restarts

Box = tuple[float, float, float]  # a square crop: centre x, centre y, side (pixels)
Result = tuple[str, "str | None", "bytes | None"]  # (source name, reason skipped or None, PNG bytes)


@dataclass(frozen=True)
class Settings:
    """What every image goes through: output side, PIL mode ("RGB" or "L"), face cropping."""

    size: int
    mode: str
    faces: bool = False
    face_margin: float = DEFAULT_FACE_MARGIN


@dataclass
class Source:
    """What SRC holds: (name, path or bytes) images, their count when known, (name, path) videos."""

    images: Iterable[tuple[str, Path | bytes]]
    count: int | None
    videos: list[tuple[str, Path]]


def prepare(src: str | os.PathLike, out: str | os.PathLike, size: int, channels: int = 3, *,
            faces: bool = False, every: int = 1, face_margin: float = DEFAULT_FACE_MARGIN,
            workers: int | None = None, overwrite: bool = False, progress: bool = True) -> dict:
    """Turn a folder, archive or video of images into a folder of square PNGs to train on.

    Args:
        src: an image folder (recursive), a .zip/.tar/.tar.gz/.tgz of images, a video (.mp4,
            .avi, .mov, .mkv, .webm), a folder of videos (one without images) or one image.
        out: the output folder; must not exist, unless it is a previous prepare output and
            ``overwrite`` is set.
        size: side of the square PNGs in pixels.
        channels: 3 (RGB) or 1 (grayscale).
        faces: keep only the largest face of each image, cropped square (needs OpenCV).
        every: in videos, keep every ``every``-th frame.
        face_margin: crop side as a multiple of the face box's width.
        workers: decoding processes for folders and archives (default: every core).
        overwrite: replace ``out`` when it holds a previous prepare output.
        progress: a progress bar on stderr.

    Returns:
        The report, as written to ``out/report.json``.

    Raises:
        UserError: bad arguments, an unreadable source, nothing to write, ``out`` in the way.
    """
    settings = _check_args(size, channels, every, faces, face_margin, workers)
    src, out = Path(src).expanduser(), Path(os.path.abspath(Path(out).expanduser()))
    source = _open_source(src, out)
    _check_out(out, overwrite)
    if faces:
        _opencv("faces", cascades=True)
    if source.videos:
        _opencv("video")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"{out.name}.partial-{secrets.token_hex(4)}")
    partial.mkdir()  # not mkdtemp: its 0700 mode would stay with the renamed output
    try:
        writer = _write_all(source, partial, settings, every, _worker_count(workers), progress)
        if not writer.files:
            raise UserError(_nothing_written(src, writer))
        report = writer.finish({"source": str(src), "size": size, "channels": channels, "faces": faces,
                                "every": every})
        _publish(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return report


def _check_args(size, channels, every, faces, face_margin, workers) -> Settings:
    def integer(value) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if not integer(size) or size < 1:
        raise UserError(f"--size must be a positive number of pixels, got {size!r}")
    if channels not in (1, 3):
        raise UserError(f"--channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if not integer(every) or every < 1:
        raise UserError(f"--every must be at least 1 (keep every K-th video frame), got {every!r}")
    if not isinstance(face_margin, (int, float)) or not face_margin >= 1:
        raise UserError(f"--face-margin must be at least 1 (crop side / face width), got {face_margin!r}")
    if workers is not None and (not integer(workers) or workers < 1):
        raise UserError(f"--workers must be at least 1, got {workers!r}")
    return Settings(int(size), "RGB" if channels == 3 else "L", bool(faces), float(face_margin))


def _worker_count(workers: int | None) -> int:
    if workers is not None:
        return workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ---- what SRC is -----------------------------------------------------------------------------
def _open_source(src: Path, out: Path) -> Source:
    """Recognise and list SRC (images are read lazily); UserError for anything unusable."""
    if not src.exists():
        raise UserError(f"source not found: {src}")
    if src.is_dir():
        return _folder_source(src, out)
    name = src.name.lower()
    if src.suffix.lower() in VIDEO_EXTENSIONS:
        _check_video(src)
        return Source([], 0, [(src.name, src)])
    if name.endswith(".zip"):
        return _zip_source(src)
    if name.endswith(TAR_SUFFIXES):
        return _tar_source(src)
    if src.suffix.lower() in IMAGE_EXTENSIONS:
        return Source([(src.name, src)], 1, [])
    raise UserError(f"cannot prepare {src}: expected an image folder, a .zip, .tar, .tar.gz or .tgz "
                    f"archive, a video ({_listed(VIDEO_EXTENSIONS)}) or an image")


def _listed(extensions) -> str:
    return ", ".join(sorted(e[1:] for e in extensions))


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _folder_source(src: Path, out: Path) -> Source:
    """The images of a folder; a folder without images: its videos. (Videos beside photos, such as a
    phone's live-photo clips, are not what a photo folder is prepared for.)"""
    if _inside(out, src) or _inside(src, out):
        raise UserError(f"--out {out} and the source folder {src} must not lie inside each other")
    images = [(p.relative_to(src).as_posix(), p) for p in list_image_files(src)]
    if images:
        return Source(images, len(images), [])
    videos = sorted((p.relative_to(src).as_posix(), p) for p in src.rglob("*")
                    if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    if not videos:
        raise UserError(f"no images ({_listed(IMAGE_EXTENSIONS)}) or videos ({_listed(VIDEO_EXTENSIONS)}) "
                        f"found in {src}")
    return Source([], 0, videos)


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


# Members are only ever read into memory, never extracted, so hostile names ("/etc/x.png",
# "../x.png") cannot write anywhere; they only name a source in labels.
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, zlib.error, EOFError, OSError)


def _archive_error(path: Path, exc: Exception) -> UserError:
    return UserError(f"cannot read archive {path}: {' '.join(str(exc).split())}")  # some span lines


def _zip_source(path: Path) -> Source:
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(i.filename for i in archive.infolist() if not i.is_dir() and _is_image_name(i.filename))
    except _ARCHIVE_ERRORS as exc:
        raise _archive_error(path, exc) from None
    if not names:
        raise UserError(f"no images ({_listed(IMAGE_EXTENSIONS)}) in archive {path}")
    return Source(_zip_members(path, names), len(names), [])


def _zip_members(path: Path, names: list[str]) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        for name in names:
            try:
                data = archive.read(name)
            except _ARCHIVE_ERRORS:  # one damaged member (bad CRC, bad compression): skipped as unreadable
                data = b""
            yield name, data


def _tar_source(path: Path) -> Source:
    try:
        with tarfile.open(path) as archive:
            archive.next()  # reads the first header: a file that is no tar fails here, before any work
    except _ARCHIVE_ERRORS as exc:
        raise _archive_error(path, exc) from None
    return Source(_tar_members(path), None, [])


def _tar_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """Image members in archive order, streamed (one pass, even through gzip)."""
    found = 0
    try:
        with tarfile.open(path, "r|*") as archive:
            for member in archive:
                if member.isfile() and _is_image_name(member.name):
                    found += 1
                    yield member.name, archive.extractfile(member).read()
    except _ARCHIVE_ERRORS as exc:
        raise _archive_error(path, exc) from None
    if not found:
        raise UserError(f"no images ({_listed(IMAGE_EXTENSIONS)}) in archive {path}")


# ---- the output folder -----------------------------------------------------------------------
def is_prepare_output(path: Path) -> bool:
    """Whether ``path`` is a folder written by prepare (its report.json carries the tool marker)."""
    try:
        return json.loads((path / "report.json").read_text()).get("tool") == TOOL
    except (OSError, ValueError, AttributeError):
        return False


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or not is_prepare_output(out):
        raise UserError(f"--out {out} exists and is not a gantools prepare output; it is left untouched, "
                        f"choose another folder")
    if not overwrite:
        raise UserError(f"--out {out} holds a previous gantools prepare output; add --overwrite to replace it")


def _publish(partial: Path, out: Path) -> None:
    """Rename the finished partial folder to ``out``, replacing a previous output."""
    if not out.exists():
        os.rename(partial, out)
        return
    aside = out.with_name(f"{out.name}.old-{secrets.token_hex(4)}")
    os.rename(out, aside)
    try:
        os.rename(partial, out)
    except OSError:
        os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _nothing_written(src: Path, writer: "_Writer") -> str:
    skipped = dict(sorted(writer.skipped.items()))
    if set(skipped) == {"no face"}:
        return f"no face found in any of the {writer.read} images of {src}"
    if set(skipped) == {"unreadable video"}:
        return f"cannot read the video(s) in {src}"
    tally = ", ".join(f"{count} {reason}" for reason, count in skipped.items())
    return f"nothing could be read from {src} ({writer.read} tried: {tally})"


class _Writer:
    """Numbers and writes the PNGs, tallies what was read and skipped, then the JSON files."""

    def __init__(self, root: Path):
        self.root = root
        self.files: list[str] = []
        self.sources: list[str] = []
        self.read = 0
        self.skipped: Counter = Counter()

    def add(self, name: str, reason: str | None, png: bytes | None) -> None:
        self.read += 1
        if reason is not None:
            self.skipped[reason] += 1
            return
        index = len(self.files)
        rel = f"{index // PER_FOLDER:05d}/img{index:08d}.png"
        (self.root / rel).parent.mkdir(exist_ok=True)
        (self.root / rel).write_bytes(png)
        self.files.append(rel)
        self.sources.append(name)

    def finish(self, meta: dict) -> dict:
        """Write dataset.json, preview.png and, last, report.json; return the report."""
        (self.root / "dataset.json").write_text(json.dumps(dataset_labels(self.files, self.sources)) + "\n")
        _save_preview(self.root, self.files)
        report = {"tool": TOOL, **meta, "read": self.read, "written": len(self.files),
                  "skipped": dict(sorted(self.skipped.items()))}
        (self.root / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        return report


def dataset_labels(files: list[str], sources: list[str]) -> dict:
    """dataset.json's content: ``{"labels": [[file, class], ...], "classes": [names]}`` or ``{"labels": None}``.

    A source's class is its first sub-folder below the deepest folder holding every source (so a
    zip's single wrapper folder does not count); labels need two classes or more and one for
    every image; the index is the name's rank in sorted order.
    """
    folders = [[p for p in s.replace("\\", "/").split("/")[:-1] if p not in ("", ".", "..")] for s in sources]
    depth = len(os.path.commonprefix(folders)) if folders else 0
    classes = [parts[depth] if len(parts) > depth else None for parts in folders]
    names = set(classes)
    if None in names or len(names) < 2:
        return {"labels": None}
    index = {name: i for i, name in enumerate(sorted(names))}
    return {"labels": [[f, index[c]] for f, c in zip(files, classes)], "classes": sorted(names)}


def _save_preview(root: Path, files: list[str]) -> None:
    """preview.png: up to PREVIEW written images, evenly spread, read back from their PNGs."""
    import torch

    from gantools.report import save_samples

    picks = sorted(set(np.linspace(0, len(files) - 1, min(PREVIEW, len(files))).round().astype(int)))
    arrays = []
    for i in picks:
        with Image.open(root / files[i]) as img:
            arrays.append(np.asarray(img))
    images = np.stack([a[..., None] if a.ndim == 2 else a for a in arrays])  # (N, H, W, C)
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    save_samples(tensor, root / "preview.png", "images")


# ---- the work --------------------------------------------------------------------------------
def _write_all(source: Source, root: Path, settings: Settings, every: int, workers: int,
               progress: bool) -> _Writer:
    writer = _Writer(root)
    use = workers if source.count is None or source.count >= POOL_MIN else 1
    with _pool(settings, use) as pool:  # before the progress bar's thread: forking copies no thread
        bar = _progress(source, every) if progress else None
        try:
            results = itertools.chain(_image_results(source.images, settings, pool, use),
                                      _video_results(source.videos, settings, every))
            for name, reason, png in results:
                writer.add(name, reason, png)
                if bar is not None:
                    bar.update()
        finally:
            if bar is not None:
                bar.close()
    return writer


def _progress(source: Source, every: int):
    from gantools.report import progress_bar

    frames = sum(_frame_estimate(path, every) for _, path in source.videos)
    bar = progress_bar(0, None if source.count is None else source.count + frames)  # a tar: unknown
    bar.unit = "img"
    return bar


def _pool(settings: Settings, workers: int):
    """A process pool for ``workers`` > 1, else a context holding None."""
    if workers <= 1:
        return contextlib.nullcontext()
    import multiprocessing as mp

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(method).Pool(workers, initializer=_start_worker, initargs=(settings,))


def _image_results(items: Iterable[tuple[str, Path | bytes]], settings: Settings, pool,
                   workers: int) -> Iterator[Result]:
    """Each image prepared, in order: in this process, or in the pool with a bounded queue."""
    if pool is None:
        for name, payload in items:
            yield (name, *prepare_image(payload, settings))
        return
    pending: deque = deque()
    for name, payload in items:
        pending.append((name, pool.apply_async(prepare_image, (payload, settings))))
        if len(pending) >= workers * IN_FLIGHT:
            name, result = pending.popleft()
            yield (name, *result.get())
    while pending:
        name, result = pending.popleft()
        yield (name, *result.get())


def _start_worker(settings: Settings) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the main process stops the pool, quietly
    if settings.faces:  # one thread per process: the pool already uses every core
        _opencv("faces", cascades=True).setNumThreads(1)


def prepare_image(payload: Path | bytes, settings: Settings) -> tuple[str | None, bytes | None]:
    """(None, PNG bytes) for one image file or its bytes, or (reason skipped, None)."""
    try:
        with Image.open(io.BytesIO(payload) if isinstance(payload, bytes) else payload) as img:
            img.load()
            img = convert_image(img, settings.mode)
    except READ_ERRORS:
        return "unreadable", None
    if not settings.faces:
        return None, encode(img, settings.size)
    return _crop_face(img, settings, _face_finder(settings.face_margin).find)


@functools.lru_cache(maxsize=None)
def _face_finder(margin: float) -> "FaceFinder":
    """One per process and margin, so the cascades load once."""
    return FaceFinder(margin)


def _crop_face(img: Image.Image, settings: Settings,
               find: Callable[[Image.Image], Box | None]) -> tuple[str | None, bytes | None]:
    box = find(img)
    if box is None:
        return "no face", None
    return None, encode(img, settings.size, box)


def encode(img: Image.Image, size: int, box: Box | None = None) -> bytes:
    """PNG bytes of ``img`` cropped to ``box`` (if any), then resized and centre-cropped to size."""
    if box is not None:
        img = img.crop(crop_box(box, *img.size))
    buffer = io.BytesIO()
    resize_center_crop(img, size).save(buffer, format="PNG")
    return buffer.getvalue()


# ---- video -----------------------------------------------------------------------------------
def _opencv(extra: str, cascades: bool = False):
    """cv2, or one clear UserError naming the extra to install."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # a broken file is our one error line, not ffmpeg's
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    what = "--faces" if extra == "faces" else "reading video"
    try:
        import cv2
    except ImportError:
        raise UserError(f"{what} needs OpenCV: pip install 'gantools[{extra}]'") from None
    if cascades and not hasattr(cv2, "CascadeClassifier"):
        raise UserError(f"{what} needs OpenCV 4 (whose wheel ships the Haar cascades): "
                        f"pip install 'gantools[{extra}]'")
    return cv2


def _check_video(path: Path) -> None:
    capture = _opencv("video").VideoCapture(str(path))
    opened = capture.isOpened() and capture.grab()
    capture.release()
    if not opened:
        raise UserError(f"cannot read video {path}: not a video OpenCV can decode")


class VideoError(Exception):
    """A file that does not open as a video."""


def video_frames(path: Path, every: int) -> Iterator[Image.Image | None]:
    """Every ``every``-th frame (the first included) as an RGB image, None for a frame that failed
    to decode; raises VideoError when the file does not open as a video."""
    cv2 = _opencv("video")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"cannot open {path}")
        index = 0
        while capture.grab():  # grab without decoding to RGB: cheap for the frames not kept
            if index % every == 0:
                ok, frame = capture.retrieve()
                yield Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)) if ok else None
            index += 1
    finally:
        capture.release()


def _frame_estimate(path: Path, every: int) -> int:
    cv2 = _opencv("video")
    capture = cv2.VideoCapture(str(path))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    capture.release()
    return max(0, math.ceil(frames / every))


def _video_results(videos: list[tuple[str, Path]], settings: Settings, every: int) -> Iterator[Result]:
    """Kept frames of each video, in order; a face box smoothed over consecutive kept frames."""
    finder = FaceFinder(settings.face_margin) if settings.faces and videos else None
    for name, path in videos:
        smoother = BoxSmoother()
        try:
            for frame in video_frames(path, every):
                if frame is None:
                    yield name, "unreadable", None
                elif finder is None:
                    yield name, None, encode(frame.convert(settings.mode), settings.size)
                else:
                    img = frame.convert(settings.mode)
                    yield (name, *_crop_face(img, settings, lambda im: smoother.update(finder.find(im))))
        except VideoError:
            yield name, "unreadable video", None


# ---- faces -----------------------------------------------------------------------------------
class FaceFinder:
    """The crop box around the largest frontal face of an image, by OpenCV's Haar cascades.

    The crop is a square of side ``margin`` x the face box's width, centred on the face box
    (see face_centre for the eyes), found on a grayscale, histogram-equalised copy shrunk to at
    most DETECT_SIDE pixels.
    """

    def __init__(self, margin: float = DEFAULT_FACE_MARGIN):
        self.cv2 = _opencv("faces", cascades=True)
        self.margin = margin
        base = self.cv2.data.haarcascades
        self.faces = self.cv2.CascadeClassifier(base + "haarcascade_frontalface_default.xml")
        self.eyes = self.cv2.CascadeClassifier(base + "haarcascade_eye.xml")
        if self.faces.empty() or self.eyes.empty():
            raise UserError(f"--faces: OpenCV's Haar cascade files are missing from {base}")

    def find(self, img: Image.Image) -> Box | None:
        """(centre x, centre y, side) in ``img``'s pixels, or None when no face is found."""
        cv2 = self.cv2
        gray = np.asarray(img.convert("L"))
        scale = min(1.0, DETECT_SIDE / max(gray.shape))
        if scale < 1:
            size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        faces = self.faces.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        if len(faces) == 0:
            return None
        x, y, w, h = (int(v) for v in max(faces, key=lambda f: int(f[2]) * int(f[3])))
        least = max(4, w // 8)
        eyes = self.eyes.detectMultiScale(gray[y:y + h, x:x + w], scaleFactor=1.1, minNeighbors=5,
                                          minSize=(least, least))
        cx, cy = face_centre((x, y, w, h), [tuple(int(v) for v in e) for e in eyes])
        return cx / scale, cy / scale, self.margin * w / scale


def face_centre(face: tuple[int, int, int, int], eyes: list[tuple[int, int, int, int]]) -> tuple[float, float]:
    """The crop centre for a face box (x, y, w, h) and the eye boxes found inside it (relative to it).

    When there is an eye in each half of the upper EYE_ZONE of the box (the largest of each half
    counts), the centre is midway between them horizontally and EYE_LINE_OFFSET face widths below
    their line (where the eyes sit in a frontal face box), so the eyes land at the same place in
    every crop; otherwise it is the box centre.
    """
    x, y, w, h = face
    upper = [(ex + ew / 2, ey + eh / 2, ew * eh) for ex, ey, ew, eh in eyes if ey + eh / 2 < EYE_ZONE * h]
    left = [e for e in upper if e[0] < w / 2]
    right = [e for e in upper if e[0] >= w / 2]
    if not left or not right:
        return x + w / 2, y + h / 2
    (lx, ly, _), (rx, ry, _) = max(left, key=lambda e: e[2]), max(right, key=lambda e: e[2])
    return x + (lx + rx) / 2, y + (ly + ry) / 2 + EYE_LINE_OFFSET * w


def crop_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the square ``box`` clamped into a width x height image: the
    side shrinks to the image's short side at most, then the square is shifted inside (no padding)."""
    cx, cy, side = box
    side = max(1, min(round(side), width, height))
    left = min(max(round(cx - side / 2), 0), width - side)
    top = min(max(round(cy - side / 2), 0), height - side)
    return left, top, left + side, top + side


class BoxSmoother:
    """Steadies the face box over the consecutive kept frames of a video.

    An exponential moving average of centre x, centre y and side: each detection moves the box
    ``weight`` of the way towards it (0.3: the box follows a face that moves, but a jitter of a
    few pixels shrinks to a third). It restarts from the raw detection after ``reset_after`` kept
    frames in a row without a face, or when a face is detected farther than one box side from
    the smoothed centre (a cut, or another person). Frames without a face are skipped.
    """

    def __init__(self, weight: float = SMOOTHING, reset_after: int = RESET_AFTER):
        self.weight, self.reset_after = weight, reset_after
        self.box: Box | None = None
        self.misses = 0

    def update(self, raw: Box | None) -> Box | None:
        """The smoothed box for this frame's detection (None when no face was found)."""
        if raw is None:
            self.misses += 1
            if self.misses >= self.reset_after:
                self.box = None
            return None
        self.misses = 0
        if self.box is None or math.dist(raw[:2], self.box[:2]) > self.box[2]:
            self.box = tuple(raw)
        else:
            self.box = tuple(s + self.weight * (r - s) for s, r in zip(self.box, raw))
        return self.box
