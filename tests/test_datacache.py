"""The decoded-once dataset cache: parallel decoding, memory map, staleness, damage, kills, concurrency."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from gantools import datacache
from gantools.errors import UserError
from gantools.imageio import TensorImages, load_image_folder


def _folder(root, n=150, size=(40, 30), labels=False):
    """n smooth RGB images with noise, PNG and JPEG, in two class sub-folders; one corrupt file."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size[1], 0:size[0]]
    for i in range(n):
        sub = root / f"class{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        base = np.stack([np.sin(x / (3 + i % 5)), np.cos(y / (4 + i % 3)), np.sin((x + y) / 7)], -1)
        img = np.clip(127 + 100 * base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(sub / f"{i:04d}.{'png' if i % 3 else 'jpg'}")
    (root / "class0" / "broken.png").write_bytes(b"not an image")
    if labels:
        pairs = [[f"class{i % 2}/{i:04d}.{'png' if i % 3 else 'jpg'}", i % 2] for i in range(n)]
        (root / "dataset.json").write_text(json.dumps({"labels": pairs}))
    return root


@pytest.fixture
def folder(tmp_path):
    return _folder(tmp_path / "imgs")


def _load(root, cache_dir, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = datacache.load_folder(root, 16, 3, cache=str(cache_dir), progress=False, **kw)
    return found, [str(w.message) for w in caught]


def test_cached_equals_in_memory_and_the_sequential_decode_of_pngs(folder, tmp_path):
    cached, _ = _load(folder, tmp_path / "c", workers=2)
    memory = datacache.load_folder(folder, 16, 3, cache="off", workers=1, progress=False)
    assert isinstance(cached.images, np.memmap) and not cached.images.flags.writeable
    assert cached.images.shape == (150, 3, 16, 16) and cached.skipped == 1 == memory.skipped
    assert np.array_equal(np.asarray(cached.images), memory.images) and cached.files == memory.files
    sequential, skipped = load_image_folder(folder, 16, 3)  # no draft mode: PNGs decode alike
    pngs = [i for i, f in enumerate(cached.files) if f.endswith(".png")]
    assert skipped == 1 and np.array_equal(np.asarray(cached.images)[pngs], sequential[pngs])
    jpgs = [i for i, f in enumerate(cached.files) if f.endswith(".jpg")]  # draft mode: within a few levels
    diff = np.abs(np.asarray(cached.images)[jpgs].astype(int) - sequential[jpgs].astype(int))
    assert diff.mean() < 3.0


def test_warm_start_decodes_nothing_and_keeps_the_skip_count(folder, tmp_path, monkeypatch):
    first, _ = _load(folder, tmp_path / "c")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")
    monkeypatch.setattr(datacache, "read_images", no_decoding)
    again, messages = _load(folder, tmp_path / "c")
    assert messages == [] and again.skipped == 1 and again.cache == first.cache
    assert np.array_equal(np.asarray(again.images), np.asarray(first.images))


@pytest.mark.parametrize("change", ["add", "remove", "rewrite"])
def test_a_changed_folder_rebuilds_and_the_stale_cache_goes(folder, tmp_path, change):
    first, _ = _load(folder, tmp_path / "c")
    target = folder / "class1" / "0001.png"
    if change == "add":
        Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(folder / "class1" / "new.png")
    elif change == "remove":
        target.unlink()
    else:
        Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(target)
        os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    second, _ = _load(folder, tmp_path / "c")
    assert second.cache != first.cache and not first.cache.exists()
    assert len(second.files) == 150 + {"add": 1, "remove": -1, "rewrite": 0}[change]
    if change == "rewrite":
        assert np.asarray(second.images)[second.files.index("class1/0001.png")].max() == 0


@pytest.mark.parametrize("damage", ["truncate", "garbage_record", "flip_bytes", "no_record"])
def test_a_damaged_cache_is_reported_once_and_rebuilt(folder, tmp_path, damage):
    first, _ = _load(folder, tmp_path / "c")
    want = np.array(first.images)
    data, record = first.cache, first.cache.with_suffix(".json")
    del first
    if damage == "truncate":
        with open(data, "r+b") as handle:
            handle.truncate(data.stat().st_size // 2)
    elif damage == "garbage_record":
        record.write_text("{not json")
    elif damage == "flip_bytes":
        raw = bytearray(data.read_bytes())
        offset = json.loads(record.read_text())["checks"][-1][0] + 5  # a byte inside a checked block
        raw[offset] ^= 0xFF
        data.write_bytes(bytes(raw))
    else:
        record.unlink()  # a data file without its record: a build killed before it committed
    rebuilt, messages = _load(folder, tmp_path / "c")
    damaged = [m for m in messages if "dataset cache" in m]
    assert len(damaged) == 1
    assert np.array_equal(np.asarray(rebuilt.images), want)
    _, again = _load(folder, tmp_path / "c")
    assert not [m for m in again if "dataset cache" in m]  # healthy now


SLOW_BUILD = textwrap.dedent("""
    import sys, time
    from gantools import datacache
    real = datacache.read_images
    def slow(*args):
        time.sleep(float(sys.argv[3]))
        return real(*args)
    datacache.read_images = slow
    built = datacache._build
    def logged(*args):
        open(sys.argv[4], "a").write("built\\n")
        return built(*args)
    datacache._build = logged
    found = datacache.load_folder(sys.argv[1], 16, 3, cache=sys.argv[2], workers=1, progress=False)
    print(found.images.shape[0], int(found.images.sum()))
""")


def _start(folder, cache, delay, log):
    return subprocess.Popen([sys.executable, "-c", SLOW_BUILD, str(folder), str(cache), str(delay), str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_build_killed_mid_write_is_never_trusted(folder, tmp_path):
    cache = tmp_path / "c"
    proc = _start(folder, cache, 0.2, tmp_path / "log")
    deadline = time.time() + 60
    while not list(cache.glob(".*.u8.*.tmp")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # some chunks written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(cache.glob(".*.u8.*.tmp")) and not list(cache.glob("*.json"))  # half a file, no record
    found, _ = _load(folder, cache)
    assert found.images.shape[0] == 150 and not list(cache.glob(".*.u8.*.tmp"))  # rebuilt, leftover removed


def test_two_processes_on_a_cold_cache_decode_once(folder, tmp_path):
    cache, log = tmp_path / "c", tmp_path / "log"
    procs = [_start(folder, cache, 0.05, log) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert log.read_text() == "built\n"  # one decode; the other process waited and reused it
    assert outs[0][0] == outs[1][0] and outs[0][0].split()[0] == "150"
    assert any("waiting for another process" in err for _, err in outs)
    assert len(list(cache.glob("*.u8"))) == 1


def test_labels_from_dataset_json(tmp_path):
    root = _folder(tmp_path / "labelled", n=20, labels=True)
    found, _ = _load(root, tmp_path / "c")
    assert found.labels.tolist() == [int(f.split("/")[0][-1]) for f in found.files]
    data = TensorImages(found.images, labels=found.labels)
    assert data.labels.dtype == torch.long and len(data.labels) == len(data) == 20
    (root / "dataset.json").write_text(json.dumps({"labels": [["class0/0000.jpg", 0]]}))
    with pytest.raises(UserError, match="has no label for 19 image"):
        _load(root, tmp_path / "c")


def _rss_anon_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


def _mapped_kib(suffix: str) -> int:
    """Resident KiB of this process's mappings of files ending in ``suffix`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        parts = line.split()
        if len(parts) >= 5 and "-" in parts[0] and ":" in parts[3]:
            inside = parts[-1].endswith(suffix)
        elif inside and parts[0] == "Rss:":
            total += int(parts[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc to read the memory in use")
def test_memory_mapped_data_is_never_loaded_whole(tmp_path):
    """A cached set trains from the map: batches read their rows, no anonymous copy is made, and
    the map's pages are dropped from the process after each batch (they stay in the page cache)."""
    from gantools.data import BatchStream

    n, side = 4000, 64
    images = np.random.default_rng(0).integers(0, 256, (n, 3, side, side), dtype=np.uint8)  # 49 MB
    path = tmp_path / "big.u8"
    images.tofile(path)
    mapped = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, 3, side, side))
    before = _rss_anon_kib()
    data = datacache.MappedImages(mapped)
    stream = BatchStream(data, 64, seed=0)
    seen = []
    for _ in range(20):
        seen.append(stream.next())
        assert _mapped_kib("big.u8") == 0  # released after the batch
    grown_mib = (_rss_anon_kib() - before - sum(b.numel() * 4 for b in seen) / 1024) / 1024
    assert data.data.data_ptr() == mapped.ctypes.data  # the map itself, no copy
    assert grown_mib < 20, grown_mib  # the whole set is 49 MB of uint8 (196 MB as float)
    first = stream.dataset.get_batch(torch.arange(3))
    assert torch.equal(first, torch.from_numpy(images[:3]).float().div(127.5).sub(1))
    plain = TensorImages(mapped)  # without the release, the map's pages stay resident
    plain.get_batch(torch.arange(0, n, 10))
    assert _mapped_kib("big.u8") > 1000


def test_user_errors(tmp_path):
    with pytest.raises(UserError, match="image folder not found"):
        datacache.load_folder(tmp_path / "nope", 8, 3, cache="off")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        datacache.load_folder(tmp_path / "empty", 8, 3, cache=str(tmp_path / "c"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="none of the 1 image files"):
        datacache.load_folder(tmp_path / "bad", 8, 3, cache=str(tmp_path / "c"))
    assert not list((tmp_path / "c").glob("*.json"))  # nothing committed for a folder with no image
