"""FID you can trust: the Fréchet maths against scipy, 8-bit generated images, and the on-disk
cache of real-image statistics (hits, keys, damage, changed folders)."""
from __future__ import annotations

import os
import types
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from gantools import datacache
from gantools.metrics import EvalContext
from gantools.registry import default_registry
from gantools_plugins.metrics import _features as fe
from gantools_plugins.metrics import fid, kid


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the shared 2-core test machine: one thread is the fastest
    yield
    torch.set_num_threads(threads)


def _random_cov(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


# --- the maths, against scipy.linalg.sqrtm
@pytest.mark.parametrize("d, rank", [(3, None), (16, None), (12, 5)])
def test_trace_sqrt_product_and_sqrt_match_scipy(d, rank):
    rng = np.random.default_rng(d)
    cov_a, cov_b = _random_cov(rng, d, rank), _random_cov(rng, d)
    expected = np.trace(scipy.linalg.sqrtm(cov_a @ cov_b)).real
    assert fid.trace_sqrt_product(cov_a, cov_b) == pytest.approx(expected, rel=1e-6)
    assert fid.trace_sqrt_product(cov_b, cov_a) == pytest.approx(expected, rel=1e-6)
    root = fid._sqrt_psd(torch.as_tensor(cov_b)).numpy()
    assert np.allclose(root, scipy.linalg.sqrtm(cov_b).real, atol=1e-8)


def test_frechet_distance_matches_the_scipy_formula():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8)), rng.normal(size=(200, 8)) + 0.2
    mu_x, mu_y, s_x, s_y = x.mean(0), y.mean(0), np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    expected = np.sum((mu_x - mu_y) ** 2) + np.trace(s_x + s_y - 2 * scipy.linalg.sqrtm(s_x @ s_y).real)
    assert fid.frechet_distance(x, y) == pytest.approx(expected, rel=1e-7)
    m = fid.moments(y)
    assert int(m["n"]) == 200 and np.allclose(m["cov"], s_y) and np.allclose(m["mean"], mu_y)


# --- generated images are scored as 8-bit images
def test_quantise_rounds_to_the_8_bit_grid():
    x = torch.rand(4, 3, 5, 5) * 2.2 - 1.1
    q = fe.quantise(x)
    codes = (q + 1) * 127.5
    assert torch.allclose(codes, codes.round(), atol=1e-4) and codes.min() >= 0 and codes.max() <= 255
    assert (q - x.clamp(-1, 1)).abs().max() <= 1 / 255 + 1e-6
    assert torch.equal(fe.quantise(q), q)


# --- the real-statistics cache
def _run(dataset="digits", opts=None, shape=(1, 16, 16)):
    return types.SimpleNamespace(config={"dataset": dataset, "dataset_opts": opts or {}}, data_shape=shape,
                                 device=torch.device("cpu"))


def _samples(n, shape=(1, 16, 16), seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture
def counted(monkeypatch):
    """Records the batch size of every feature-network call (fake and real images alike)."""
    calls = []
    original = fe.Features.__call__

    def call(self, images, *args, **kwargs):
        calls.append(len(images))
        return original(self, images, *args, **kwargs)

    monkeypatch.setattr(fe.Features, "__call__", call)
    return calls


def _score(metric, samples, run, cache, forbid_real=False):
    ctx = EvalContext(run, default_registry(), len(samples), cache=cache)
    if forbid_real:
        ctx.real = lambda n=None: pytest.fail("real images read despite cached statistics")
    return metric.evaluate(samples, ctx)


def test_fid_near_quantised_samples_is_the_same():
    data = default_registry().create("datasets", "digits").build(None, 16, 1)
    real = data.get_batch(torch.arange(200))
    ctx = types.SimpleNamespace(real=lambda n: real[:n], seed=0, dataset_name="digits", cache_dir=None,
                                run=types.SimpleNamespace(device=torch.device("cpu")))
    samples = fe.quantise(_samples(50))
    off_grid = samples + (torch.rand(samples.shape) - 0.5) / 300  # below half a level: the same 8 bits
    a = fid.metric(features="random").evaluate(samples, ctx)["fid"]
    b = fid.metric(features="random").evaluate(off_grid, ctx)["fid"]
    assert a == b


def test_second_evaluation_reads_the_cache(tmp_path, counted):
    run, samples = _run(), _samples(60)
    first = _score(fid.metric(features="random"), samples, run, tmp_path)
    assert counted == [60, 60]  # fake, then real
    files = list((tmp_path / "real_stats").glob("*.npz"))
    assert len(files) == 1
    counted.clear()
    second = _score(fid.metric(features="random"), samples, run, tmp_path, forbid_real=True)
    assert counted == [60]  # the fake images only
    assert second == first
    k1 = _score(kid.metric(features="random", subset_size=30), samples, run, tmp_path)
    k2 = _score(kid.metric(features="random", subset_size=30), samples, run, tmp_path, forbid_real=True)
    assert k1 == k2 and len(list((tmp_path / "real_stats").glob("*.npz"))) == 2


def test_other_n_seed_or_network_get_their_own_entries(tmp_path, counted, monkeypatch):
    run = _run()
    _score(fid.metric(features="random"), _samples(40), run, tmp_path)
    _score(fid.metric(features="random"), _samples(41), run, tmp_path)
    ctx = EvalContext(run, default_registry(), 40, seed=1, cache=tmp_path)
    fid.metric(features="random").evaluate(_samples(40), ctx)
    assert len(list((tmp_path / "real_stats").glob("*.npz"))) == 3
    monkeypatch.setattr(fe, "random_net", lambda seed=0, original=fe.random_net: original(seed + 1))
    counted.clear()
    _score(fid.metric(features="random"), _samples(40), run, tmp_path)  # other weights: a miss
    assert counted == [40, 40] and len(list((tmp_path / "real_stats").glob("*.npz"))) == 4
    other = _run(shape=(3, 16, 16))  # other channels: a miss
    _score(fid.metric(features="random"), _samples(40, (3, 16, 16)), other, tmp_path)
    assert len(list((tmp_path / "real_stats").glob("*.npz"))) == 5


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty"])
def test_a_damaged_cache_is_recomputed_with_the_same_result(tmp_path, counted, damage):
    run, samples = _run(), _samples(30)
    first = _score(fid.metric(features="random"), samples, run, tmp_path)
    (path,) = (tmp_path / "real_stats").glob("*.npz")
    data = path.read_bytes()
    broken = {"garbage": b"not an npz", "truncated": data[:len(data) // 2], "empty": b"",
              "flipped": data[:-2000] + bytes([data[-2000] ^ 0xFF]) + data[-1999:]}[damage]
    path.write_bytes(broken)
    counted.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = _score(fid.metric(features="random"), samples, run, tmp_path)
    assert any("damaged or unreadable" in str(w.message) for w in caught)
    assert counted == [30, 30] and again == first
    assert path.read_bytes() != broken  # replaced by a sound copy, which is then read
    counted.clear()
    assert _score(fid.metric(features="random"), samples, run, tmp_path) == first and counted == [30]


def test_a_changed_folder_is_recomputed(tmp_path, image_folder, counted):
    run = _run(f"folder:{image_folder}", {"cache": str(tmp_path / "data"), "workers": 1}, (3, 16, 16))
    samples, cache = _samples(12, (3, 16, 16)), tmp_path / "metrics"

    def key():
        return datacache.cache_key(datacache.scan(image_folder), 16, 3, [])

    first_key = key()
    first = _score(fid.metric(features="random"), samples, run, cache)
    counted.clear()
    assert _score(fid.metric(features="random"), samples, run, cache, forbid_real=True) == first
    touched = image_folder / "part0" / "000.png"
    info = touched.stat()
    os.utime(touched, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    assert key() != first_key  # the dataset cache sees a changed folder ...
    counted.clear()
    _score(fid.metric(features="random"), samples, run, cache)
    assert counted == [12, 12]  # ... and so do the statistics
    assert len(list((cache / "real_stats").glob("*.npz"))) == 1  # the stale entry is gone
    (image_folder / "part1" / "extra.png").write_bytes(touched.read_bytes())
    counted.clear()
    _score(fid.metric(features="random"), samples, run, cache)
    assert counted == [12, 12]
