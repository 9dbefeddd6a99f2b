"""`gantools prepare`: folders, archives and videos become a trainable folder of PNGs; faces are found,
centred and (in videos) smoothed; every bad input is one line; an interrupted run leaves nothing."""
from __future__ import annotations

import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gantools import prepare as prep
from gantools.cli import main
from gantools.errors import UserError

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

QUIET = dict(workers=1, progress=False)


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def noise(rng, height=20, width=30, channels=3) -> np.ndarray:
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def class_folder(tmp_path):
    """cats/ (3 images) and dogs/ (2 images, a corrupt file), a text file at the root."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for name, count in (("cats", 3), ("dogs", 2)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(noise(rng, 20 + i, 30)).save(root / name / f"{i}.png")
    Image.fromarray(noise(rng, channels=1)).save(root / "dogs" / "gray.jpg")
    (root / "dogs" / "broken.png").write_bytes(b"not a png")
    (root / "notes.txt").write_text("not an image")
    return root


def outputs(out: Path) -> list[Path]:
    return sorted(out.rglob("img*.png"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name)


def write_video(path: Path, frames: int = 30, size=(64, 48)) -> Path:
    """A white square moving right over black, MJPG in .avi."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(frames):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[10:26, i:i + 16] = 255
        writer.write(frame)
    writer.release()
    return path


# ---- sources ---------------------------------------------------------------------------------
def test_folder_with_classes(class_folder, tmp_path):
    write_video(class_folder / "dogs" / "clip.avi", frames=3)  # beside photos a video is ignored
    out = tmp_path / "prepared"
    report = prep.prepare(class_folder, out, 16, **QUIET)
    assert (report["tool"], report["read"], report["written"]) == ("gantools prepare", 7, 6)
    assert report["skipped"] == {"unreadable": 1}
    assert json.loads((out / "report.json").read_text()) == report
    files = outputs(out)
    assert [f.relative_to(out).as_posix() for f in files] == [f"00000/img{i:08d}.png" for i in range(6)]
    for f in files:
        with Image.open(f) as img:
            assert (img.size, img.mode) == ((16, 16), "RGB")
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["classes"] == ["cats", "dogs"]
    assert dataset["labels"] == [[f"00000/img{i:08d}.png", int(i >= 3)] for i in range(6)]
    with Image.open(out / "preview.png") as preview:
        assert preview.width >= 16 * 2
    assert leftovers(tmp_path) == []


def test_grayscale_and_one_image(tmp_path):
    source = tmp_path / "one.png"
    Image.fromarray(noise(np.random.default_rng(1), 40, 20)).save(source)
    report = prep.prepare(source, tmp_path / "out", 8, channels=1, **QUIET)
    assert report["written"] == 1
    with Image.open(tmp_path / "out" / "00000" / "img00000000.png") as img:
        assert (img.size, img.mode) == ((8, 8), "L")
    assert json.loads((tmp_path / "out" / "dataset.json").read_text()) == {"labels": None}


def test_pool_matches_one_process(image_folder, tmp_path):
    serial = prep.prepare(image_folder, tmp_path / "serial", 16, **QUIET)
    pooled = prep.prepare(image_folder, tmp_path / "pooled", 16, workers=2, progress=False)
    assert serial["written"] == pooled["written"] == 40
    assert [f.read_bytes() for f in outputs(tmp_path / "serial")] == [f.read_bytes() for f in outputs(tmp_path / "pooled")]
    labels = json.loads((tmp_path / "pooled" / "dataset.json").read_text())
    assert labels["classes"] == ["part0", "part1"] and len(labels["labels"]) == 40


def test_zip_strips_a_wrapper_folder(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("photos/", "")
        for name in ("photos/b/2.png", "photos/a/1.png", "photos/b/3.png"):
            archive.writestr(name, png_bytes(noise(rng)))
        archive.writestr("photos/a/bad.jpg", b"garbage")
        archive.writestr("photos/readme.txt", "text")
    report = prep.prepare(path, tmp_path / "out", 8, **QUIET)
    assert (report["read"], report["written"], report["skipped"]) == (4, 3, {"unreadable": 1})
    dataset = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert dataset["classes"] == ["a", "b"]
    assert [label for _, label in dataset["labels"]] == [0, 1, 1]  # sorted member names: a/1, b/2, b/3


def test_tar_gz_reads_hostile_names_without_extracting(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "work" / "photos.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as archive:
        for name in ("x/1.png", "../evil.png", "/abs.png", "x/skip.txt"):
            data = png_bytes(noise(rng)) if name.endswith(".png") else b"text"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    report = prep.prepare(path, tmp_path / "work" / "out", 8, **QUIET)
    assert (report["read"], report["written"]) == (3, 3)
    assert not (tmp_path / "evil.png").exists() and not Path("/abs.png").exists()
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["out", "photos.tar.gz"]


def test_video_every_third_frame(tmp_path):
    video = write_video(tmp_path / "clip.avi")
    report = prep.prepare(video, tmp_path / "out", 16, every=3, **QUIET)
    assert (report["read"], report["written"]) == (10, 10)
    frames = [np.asarray(Image.open(f)) for f in outputs(tmp_path / "out")]
    assert not np.array_equal(frames[0], frames[-1])  # the square moved


def test_folder_of_videos(tmp_path):
    root = tmp_path / "clips"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    write_video(root / "a" / "one.avi", frames=6)
    write_video(root / "b" / "two.avi", frames=4)
    (root / "b" / "broken.mp4").write_bytes(b"not a video" * 50)
    report = prep.prepare(root, tmp_path / "out", 8, every=2, **QUIET)
    assert (report["written"], report["skipped"]) == (5, {"unreadable video": 1})
    dataset = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert dataset["classes"] == ["a", "b"] and [l for _, l in dataset["labels"]] == [0, 0, 0, 1, 1]


def test_progress_bar_on_stderr(class_folder, tmp_path, capsys):
    prep.prepare(class_folder, tmp_path / "out", 8, workers=1)
    err = capsys.readouterr().err
    assert "7/7" in err and "img/s" in err


# ---- faces -----------------------------------------------------------------------------------
def test_faces_keeps_the_face_and_skips_the_rest(tmp_path):
    root = tmp_path / "people"
    root.mkdir()
    Image.fromarray(skdata.astronaut()).save(root / "astronaut.png")
    Image.fromarray(skdata.coffee()).save(root / "coffee.jpg")
    report = prep.prepare(root, tmp_path / "out", 32, faces=True, **QUIET)
    assert (report["written"], report["skipped"]) == (1, {"no face": 1})


def test_face_crop_covers_the_astronauts_face():
    box = prep.FaceFinder().find(Image.fromarray(skdata.astronaut()))
    left, top, right, bottom = prep.crop_box(box, 512, 512)
    # The face (hair to chin) lies at about x 160-280, y 60-200; the crop holds it with a margin.
    assert left <= 160 and right >= 280 and top <= 60 and bottom >= 195
    assert 150 <= right - left <= 240  # 2 x the face width, not the whole picture
    assert abs((left + right) / 2 - 220) < 20 and abs((top + bottom) / 2 - 130) < 25


def test_face_centre_rules():
    face = (100, 50, 80, 80)
    both = prep.face_centre(face, [(10, 20, 16, 16), (50, 22, 16, 16)])  # eye centres (18, 28), (58, 30)
    assert both == pytest.approx((100 + 38, 50 + 29 + prep.EYE_LINE_OFFSET * 80))
    assert prep.face_centre(face, [(10, 20, 16, 16)]) == (140, 90)  # one eye: the box centre
    assert prep.face_centre(face, [(10, 20, 16, 16), (50, 60, 16, 16)]) == (140, 90)  # a mouth is no eye


def test_crop_box_is_clamped_never_padded():
    assert prep.crop_box((10, 10, 40), 100, 80) == (0, 0, 40, 40)
    assert prep.crop_box((95, 70, 40), 100, 80) == (60, 40, 100, 80)
    assert prep.crop_box((50, 40, 500), 100, 80) == (10, 0, 90, 80)


def test_smoothing_steadies_a_jittery_face():
    rng = np.random.default_rng(4)
    t = np.arange(60)
    raw = [(100 + 2 * i + rng.uniform(-6, 6), 80 + rng.uniform(-6, 6), 90 + rng.uniform(-6, 6)) for i in t]
    smoother = prep.BoxSmoother()
    smooth = np.array([smoother.update(box) for box in raw])
    raw = np.array(raw)
    for axis in range(3):
        assert np.diff(smooth[10:, axis]).std() < 0.5 * np.diff(raw[10:, axis]).std()
    assert abs(smooth[-1, 0] - (100 + 2 * 59)) < 10  # it follows the motion, with a small lag


def test_smoothing_restarts_after_misses_or_a_jump():
    smoother = prep.BoxSmoother(weight=0.5, reset_after=3)
    smoother.update((100, 100, 50))
    assert smoother.update((110, 100, 50)) == (105, 100, 50)
    assert smoother.update(None) is None and smoother.update(None) is None
    assert smoother.update((115, 100, 50)) == (110, 100, 50)  # two misses: still averaging
    for _ in range(3):
        smoother.update(None)
    assert smoother.update((130, 100, 50)) == (130, 100, 50)  # three misses: restarted
    assert smoother.update((300, 100, 50)) == (300, 100, 50)  # a jump of more than a side: restarted


def test_video_faces_end_to_end(tmp_path):
    """A pan over the astronaut with jitter: every kept frame is a face crop."""
    image = skdata.astronaut()
    path = tmp_path / "pan.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    rng = np.random.default_rng(5)
    for i in range(8):
        x, y = 40 + 4 * i + rng.integers(-4, 5), 10 + i + rng.integers(-4, 5)
        frame = cv2.resize(image[y:y + 300, x:x + 400], (320, 240))
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    report = prep.prepare(path, tmp_path / "out", 32, faces=True, **QUIET)
    assert report["written"] == 8


# ---- bad input, interruption, overwrite ------------------------------------------------------
def _bad_sources(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "a.png").write_bytes(b"nope")
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 50)
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    (tmp_path / "bad.tar.gz").write_bytes(b"not a tar")
    (tmp_path / "notes.txt").write_text("hello")
    with zipfile.ZipFile(tmp_path / "text.zip", "w") as archive:
        archive.writestr("a.txt", "text")
    Image.fromarray(skdata.coffee()).save(tmp_path / "coffee.png")
    return {name: tmp_path / name for name in ("empty", "corrupt", "bad.mp4", "bad.zip", "bad.tar.gz",
                                               "notes.txt", "text.zip", "coffee.png")}


@pytest.mark.parametrize("source,flags,message", [
    ("missing", [], "source not found"),
    ("empty", [], "no images"),
    ("corrupt", [], "nothing could be read"),
    ("bad.mp4", [], "cannot read video"),
    ("bad.zip", [], "cannot read archive"),
    ("bad.tar.gz", [], "cannot read archive"),
    ("text.zip", [], "no images"),
    ("notes.txt", [], "cannot prepare"),
    ("coffee.png", ["--faces"], "no face found"),
    ("coffee.png", ["--size", "0"], "--size must be"),
    ("coffee.png", ["--every", "0"], "--every must be"),
    ("coffee.png", ["--channels", "2"], "--channels must be"),
    ("coffee.png", ["--face-margin", "0.5"], "--face-margin must be"),
    ("coffee.png", ["--workers", "0"], "--workers must be"),
])
def test_bad_input_is_one_line(tmp_path, capsys, source, flags, message):
    sources = _bad_sources(tmp_path)
    args = ["prepare", str(sources.get(source, tmp_path / source)), "--out", str(tmp_path / "out"),
            "--no-progress", "--workers", "1"]
    code, out, err = run_cli(args + (flags if "--size" in flags else ["--size", "8", *flags]), capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_an_existing_output_that_is_not_ours_is_never_touched(class_folder, tmp_path, capsys, kind):
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("keep me")
    else:
        out.mkdir()
        (out / "keep.txt").write_text("keep me")
    code, _, err = run_cli(["prepare", str(class_folder), "--out", str(out), "--size", "8", "--overwrite",
                            "--no-progress"], capsys)
    assert code == 1 and "is not a gantools prepare output" in err
    assert (out if kind == "file" else out / "keep.txt").read_text() == "keep me"


def test_out_inside_the_source_is_refused(class_folder, capsys):
    code, _, err = run_cli(["prepare", str(class_folder), "--out", str(class_folder / "out"), "--size", "8"],
                           capsys)
    assert code == 1 and "must not lie inside" in err and not (class_folder / "out").exists()


def test_overwrite_replaces_a_previous_output(class_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(["prepare", str(class_folder), "--out", str(out), "--size", "8",
                               "--no-progress"], capsys)
    assert code == 0 and "wrote 6 images" in stdout
    code, _, err = run_cli(["prepare", str(class_folder), "--out", str(out), "--size", "12"], capsys)
    assert code == 1 and "--overwrite" in err
    code, _, _ = run_cli(["prepare", str(class_folder), "--out", str(out), "--size", "12", "--overwrite",
                          "--no-progress"], capsys)
    assert code == 0 and json.loads((out / "report.json").read_text())["size"] == 12
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_run_leaves_nothing(class_folder, tmp_path, monkeypatch, failure):
    previous = tmp_path / "previous"
    prep.prepare(class_folder, previous, 8, **QUIET)
    real_encode, calls = prep.encode, []

    def failing_encode(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise failure("stopped mid-way")
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(prep, "encode", failing_encode)
    with pytest.raises(failure):
        prep.prepare(class_folder, tmp_path / "new", 8, **QUIET)
    calls.clear()
    with pytest.raises(failure):
        prep.prepare(class_folder, previous, 16, overwrite=True, **QUIET)
    assert not (tmp_path / "new").exists() and leftovers(tmp_path) == []
    assert json.loads((previous / "report.json").read_text())["size"] == 8  # the old output is intact


@pytest.mark.parametrize("source,extra", [("clip.avi", "video"), ("photos", "faces")])
def test_without_opencv_one_line_names_the_extra(class_folder, tmp_path, monkeypatch, capsys, source, extra):
    write_video(tmp_path / "clip.avi", frames=2)
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now fails
    flags = ["--faces"] if extra == "faces" else []
    code, _, err = run_cli(["prepare", str(tmp_path / source), "--out", str(tmp_path / "out"), "--size", "8",
                            *flags], capsys)
    assert code == 1 and f"pip install 'gantools[{extra}]'" in err and len(err.strip().splitlines()) == 1


def test_python_api_checks_its_arguments(class_folder, tmp_path):
    with pytest.raises(UserError, match="--size"):
        prep.prepare(class_folder, tmp_path / "out", 8.5)


# ---- training on the result ------------------------------------------------------------------
def test_a_prepared_folder_trains(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANTOOLS_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(6)
    (tmp_path / "src").mkdir()
    for i in range(8):
        Image.fromarray(noise(rng, 24, 24)).save(tmp_path / "src" / f"{i}.png")
    prep.prepare(tmp_path / "src", tmp_path / "data", 16, **QUIET)
    code, _, err = run_cli(["run", "--dataset", f"folder:{tmp_path / 'data'}", "--steps", "2", "--batch-size", "4",
                            "--arch", "dcgan", "--arch-opt", "width=8", "--z-dim", "8", "--image-size", "16",
                            "--out", str(tmp_path / "run"), "--no-progress"], capsys)
    assert code == 0, err


def test_the_folder_dataset_sees_exactly_the_prepared_images(class_folder, tmp_path):
    from gantools_plugins.datasets.folder import Folder

    report = prep.prepare(class_folder, tmp_path / "data", 16, **QUIET)
    dataset = Folder(cache="off", workers=1).build(str(tmp_path / "data"), 16, 3)
    assert len(dataset) == report["written"] and dataset.labels.tolist() == [0, 0, 0, 1, 1, 1]
