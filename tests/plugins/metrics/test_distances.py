"""The distribution metrics fid, kid and swd, and their feature extractors."""
from __future__ import annotations

import math
import types
import warnings

import numpy as np
import pytest
import torch

import gantools
from gantools.errors import UserError
from gantools.metrics import EvalContext, evaluate
from gantools.registry import default_registry
from gantools_plugins.metrics import _features as fe
from gantools_plugins.metrics import fid, kid, swd


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on the shared 2-core test machine two threads oversubscribe and are
    several times slower (Inception forward 0.5 s vs 5 s measured); the figures do not change."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- FID maths
def test_frechet_distance_is_zero_on_itself_and_symmetric():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)) * [1, 2, 3, 0.5, 1, 4]
    y = rng.normal(size=(300, 6)) + 0.3
    assert abs(fid.frechet_distance(x, x)) < 1e-9 * np.trace(np.cov(x, rowvar=False))
    assert fid.frechet_distance(x, y) == pytest.approx(fid.frechet_distance(y, x), rel=1e-9)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))  # FID is invariant to a common rotation
    assert fid.frechet_distance(x @ q, y @ q) == pytest.approx(fid.frechet_distance(x, y), rel=1e-8)


def test_frechet_distance_of_a_pure_mean_shift_is_the_squared_shift():
    x = np.random.default_rng(1).normal(size=(500, 8))
    shift = np.arange(8) / 4 - 1
    assert fid.frechet_distance(x, x + shift) == pytest.approx(shift @ shift, rel=1e-9)


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    s1, s2 = np.array([1, 2, 0.5, 3]), np.array([2, 1, 0.5, 0.25])  # diagonal covariances
    mu2 = np.array([1, 0, -1, 0.5])
    exact = mu2 @ mu2 + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))  # 4.1111
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50_000, 4)) * np.sqrt(s1)
    y = mu2 + rng.normal(size=(50_000, 4)) * np.sqrt(s2)
    # Over 20 seeds at this n the estimate's bias was +0.004 and its sd 0.014: 0.07 is 5 sd.
    assert fid.frechet_distance(x, y) == pytest.approx(exact, abs=0.07)


# --- KID maths
def test_kid_kernel_and_unbiased_mmd_by_hand():
    assert kid.polynomial_kernel(np.array([[1.0, 2]]), np.array([[3.0, 4]]))[0, 0] == 6.5 ** 3
    x, y = np.array([[1.0, 0], [0, 1]]), np.array([[1.0, 1], [2, 0]])
    # k_xx off-diagonal (0/2+1)^3 = 1; k_yy (2/2+1)^3 = 8; k_xy: 1.5^3, 2^3, 1.5^3, 1 -> mean 3.9375
    assert kid.mmd2_unbiased(x, y) == pytest.approx(1 + 8 - 2 * 3.9375)
    mean, std = kid.kernel_inception_distance(x, y, subsets=3, subset_size=5, seed=0)  # capped at 2
    assert mean == pytest.approx(1.125) and std == pytest.approx(0.0, abs=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(0)
    a, b, shifted = rng.normal(size=(1000, 16)), rng.normal(size=(1000, 16)), rng.normal(size=(1000, 16)) + 0.5
    same, _ = kid.kernel_inception_distance(a, b, subsets=10, subset_size=500, seed=0)
    far, far_std = kid.kernel_inception_distance(a, shifted, subsets=10, subset_size=500, seed=0)
    assert far > 0.5 and far > 10 * far_std  # (d/16 mean shift: about 1.0)
    assert abs(same) < 0.05 * far
    assert kid.kernel_inception_distance(a, b, 10, 500, seed=0) == (same, _)  # seeded


# --- SWD maths
def test_sliced_wasserstein_identity_translation_and_unequal_sizes():
    a = np.random.default_rng(3).normal(size=(600, 5))
    assert swd.sliced_wasserstein(a, a, directions=64, seed=1) == 0.0
    t = np.array([0.5, -1.0, 2.0, 0.0, 1.0])
    dirs = swd.random_directions(5, 512, seed=4)  # the directions the function draws
    expected = np.abs(t @ dirs).mean()
    # projections are float32: agreement to float32 precision
    assert swd.sliced_wasserstein(a, a + t, directions=512, seed=4) == pytest.approx(expected, rel=1e-5)
    # and E|<t, u>| over the unit sphere in d dims is |t| G(d/2) / (sqrt(pi) G((d+1)/2)); 512
    # directions estimate it to about 3% (1 sd).
    closed = np.linalg.norm(t) * math.gamma(2.5) / (math.sqrt(math.pi) * math.gamma(3))
    assert expected == pytest.approx(closed, rel=0.12)
    assert swd.sliced_wasserstein(a[:300], a + t, directions=64, seed=0) > 0.5


def test_laplacian_pyramid_levels():
    assert [swd.pyramid_levels(s, 16) for s in (16, 32, 64, 12)] == [1, 2, 3, 1]
    assert swd.pyramid_levels(16, 8) == 2
    x = torch.rand(2, 3, 32, 32)
    fine, coarse = swd.laplacian_pyramid(x, 2)
    assert fine.shape == (2, 3, 32, 32) and coarse.shape == (2, 3, 16, 16)
    flat = swd.laplacian_pyramid(torch.full((1, 1, 16, 16), 0.3), 2)
    assert flat[0].abs().max() < 1e-6 and torch.allclose(flat[1], torch.tensor(0.3))  # no detail


# --- shared fixtures: one digits CNN (trained once) and one tiny run
@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache directory holding a trained digits CNN; records how often training ran."""
    path = tmp_path_factory.mktemp("cache")
    calls = []
    real_train = fe.train_digits_cnn
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fe, "train_digits_cnn", lambda: calls.append(1) or real_train())
        fe.digits_cnn(path)
    assert calls == [1]
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    gantools.train(out=out, arch="dcgan", loss="wgan-gp", dataset="digits", arch_opts={"width": 8}, z_dim=8,
                   batch_size=16, steps=2, n_critic=1, log_every=1, checkpoint_every=2, sample_every=2)
    return gantools.load_run(out)


def _test_digits():
    data = default_registry().create("datasets", "digits", {"split": "test"}).build(None, 16, 1)
    return data.get_batch(torch.arange(len(data))), data.labels


# --- the digits CNN
def test_digits_cnn_classifies_held_out_digits(cache):
    net, recorded = fe.digits_cnn(cache)
    images, labels = _test_digits()  # the plugin's 297 held-out digits, never trained on
    with torch.no_grad():
        accuracy = float((net(images).argmax(1) == labels).double().mean())
    assert accuracy > 0.95 and accuracy == pytest.approx(recorded)
    extract = fe.build("digits", cache_dir=cache)
    assert np.sqrt(np.mean(extract(images) ** 2)) == pytest.approx(1.0, abs=0.1)  # unit RMS on real digits
    feats = extract(torch.rand(5, 3, 32, 32) * 2 - 1)  # resized, channels averaged
    assert feats.shape == (5, 128) and feats.dtype == np.float64


def test_digits_cnn_cache_is_reused(cache, monkeypatch):
    file = cache / fe.DIGITS_CACHE
    before = file.stat().st_mtime_ns
    monkeypatch.setattr(fe, "train_digits_cnn", lambda: pytest.fail("retrained despite a valid cache"))
    fe.digits_cnn(cache)
    assert file.stat().st_mtime_ns == before


def test_a_corrupt_digits_cache_is_retrained_identically(cache, tmp_path):
    good, _ = fe.digits_cnn(cache)
    (tmp_path / fe.DIGITS_CACHE).write_bytes(b"not a torch file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net, accuracy = fe.digits_cnn(tmp_path)
    assert any("retraining the digits CNN" in str(w.message) for w in caught)
    for key, value in good.state_dict().items():  # deterministic training: the same weights
        assert torch.equal(net.state_dict()[key], value), key
    assert fe.digits_cnn(tmp_path)[1] == accuracy  # the replaced file now loads


# --- Inception
def test_inception_shapes_and_weight_names():
    net = fe.FIDInceptionV3().eval()
    extract = fe.Features("inception", net, fe._rgb)
    assert extract(torch.rand(2, 3, 40, 40) * 2 - 1).shape == (2, 2048)
    assert extract(torch.rand(2, 1, 16, 16) * 2 - 1).shape == (2, 2048)
    state = net.state_dict()
    # key -> shape in pytorch-fid's FID Inception (torchvision layout, 1008-class fc, no aux head)
    expected = {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Conv2d_4a_3x3.bn.running_var": (192,),
                "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
                "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
                "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
                "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
                "Mixed_7b.branch3x3_2a.conv.weight": (384, 384, 1, 3),
                "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
                "Mixed_7c.branch_pool.bn.bias": (192,), "fc.weight": (1008, 2048)}
    assert {k: tuple(state[k].shape) for k in expected} == expected
    assert not any(k.startswith("AuxLogits") for k in state)
    # TF's average pools ignore the zero padding (torchvision's count it); Mixed_7c max-pools
    assert torch.equal(fe._avg_pool(torch.ones(1, 1, 5, 5)), torch.ones(1, 1, 5, 5))
    assert net.Mixed_7c.max_pool and not net.Mixed_7b.max_pool
    assert len([k for k in state if not k.endswith("num_batches_tracked")]) == 472
    assert sum(p.numel() for p in net.parameters()) == 23_850_960  # torchvision's, minus aux, fc 1008


def test_inception_weights_loader(tmp_path):
    state = fe.FIDInceptionV3().state_dict()
    for value in state.values():
        if value.is_floating_point():
            value.uniform_(0.5, 1.5)  # not the defaults, so a real load is visible
    path = tmp_path / fe.WEIGHTS_FILE
    torch.save(state, path)
    loaded = fe.load_inception(path).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())

    with pytest.raises(UserError, match="no such file"):
        fe.load_inception(tmp_path / "absent.pth")
    renamed = dict(state)
    renamed["Mixed_6b.branch7x7_2.conv.weights"] = renamed.pop("Mixed_6b.branch7x7_2.conv.weight")
    torch.save(renamed, path)
    with pytest.raises(UserError, match=r"missing key 'Mixed_6b\.branch7x7_2\.conv\.weight'; "
                                        r"unexpected key 'Mixed_6b\.branch7x7_2\.conv\.weights'"):
        fe.load_inception(path)
    reshaped = dict(state, **{"Mixed_5d.branch5x5_2.conv.weight": torch.zeros(64, 48, 3, 3)})
    torch.save(reshaped, path)
    with pytest.raises(UserError, match=r"'Mixed_5d\.branch5x5_2\.conv\.weight' has shape \(64, 48, 3, 3\).*"
                                        r"\(64, 48, 5, 5\)"):
        fe.load_inception(path)
    path.write_text("garbage")
    with pytest.raises(UserError, match="not a readable torch state dict"):
        fe.load_inception(path)


def test_feature_choice(monkeypatch):
    monkeypatch.delenv(fe.WEIGHTS_ENV, raising=False)
    assert fe.resolve("auto", "", "digits") == ("digits", "")
    assert fe.resolve("auto", "", "folder") == ("random", "")
    assert fe.resolve("auto", "/w.pth", "digits") == ("inception", "/w.pth")
    with pytest.raises(UserError, match=fe.WEIGHTS_ENV):
        fe.resolve("inception", "", "digits")
    monkeypatch.setenv(fe.WEIGHTS_ENV, "/env.pth")
    assert fe.resolve("auto", "", "folder") == ("inception", "/env.pth")
    with pytest.raises(UserError, match="features must be one of"):
        fid.metric(features="vgg")


# --- through the core
def _disjoint_real(run, n):
    """Real digits the metrics' ctx.real(n) does not contain (the next n of its permutation)."""
    return EvalContext(run, default_registry(), n, seed=0).real()[n:2 * n]


def test_end_to_end_real_digits_score_far_better_than_an_untrained_generator(run, cache, monkeypatch):
    monkeypatch.setenv("GANTOOLS_CACHE", str(cache))
    monkeypatch.delenv(fe.WEIGHTS_ENV, raising=False)
    options = {"swd": {"patches_per_image": 32}}
    generated = evaluate(run, ["fid", "kid", "swd"], n=200, options=options)["metrics"]
    real = evaluate(run, ["fid", "kid", "swd"], samples=_disjoint_real(run, 200), options=options)["metrics"]
    for figures in (generated, real):
        for name in ("fid", "kid"):
            assert "digits-CNN" in figures[name]["label"] and "NOT Inception" in figures[name]["label"]
            assert figures[name]["n_fake"] == figures[name]["n_real"] == 200
        assert all(math.isfinite(figures[m][m]) for m in ("fid", "kid", "swd"))
        assert figures["swd"]["levels"] == [16]
    assert real["fid"]["fid"] < 0.1 * generated["fid"]["fid"]
    assert real["kid"]["kid"] < 0.1 * generated["kid"]["kid"]
    assert real["swd"]["swd"] < 0.5 * generated["swd"]["swd"]
    with pytest.raises(UserError, match="no such file"):
        evaluate(run, ["fid"], n=8, options={"fid": {"features": "inception", "weights": "/nope.pth"}})


def _ctx(real, cache, dataset="folder"):
    """A stand-in EvalContext whose real data is ``real`` (possibly fewer than the samples)."""
    return types.SimpleNamespace(real=lambda n: real[:n], seed=0, dataset_name=dataset, cache_dir=cache,
                                 run=types.SimpleNamespace(device=torch.device("cpu")))


def test_fewer_real_images_than_samples_and_random_features(cache):
    data = default_registry().create("datasets", "digits").build(None, 16, 3)
    pool = data.get_batch(torch.arange(160))
    ctx = _ctx(pool[:60], cache)
    samples = pool[60:160]
    f = fid.metric().evaluate(samples, ctx)
    k = kid.metric(subset_size=1000).evaluate(samples, ctx)
    s = swd.metric(patches_per_image=16, min_resolution=8).evaluate(samples, ctx)
    assert f["features"] == "random" and "random conv" in f["label"] and f["feature_dim"] == 512
    assert (f["n_fake"], f["n_real"], k["subset_size"], s["n_real"]) == (100, 60, 60, 60)
    assert s["levels"] == [16, 8] and set(s) >= {"swd_16px", "swd_8px"}
    assert all(math.isfinite(v) for v in (f["fid"], k["kid"], s["swd"]))


def test_swd_grows_as_images_get_more_different(cache):
    data = default_registry().create("datasets", "digits").build(None, 16, 1)
    pool = data.get_batch(torch.arange(400))
    ctx, gen = _ctx(pool[:200], cache), torch.Generator().manual_seed(0)
    noise = torch.randn(200, 1, 16, 16, generator=gen)
    metric = swd.metric(patches_per_image=32)
    values = [metric.evaluate((pool[200:] + sigma * noise).clamp(-1, 1), ctx)["swd"] for sigma in (0.0, 0.2, 0.6)]
    assert values[0] < values[1] < values[2]
    assert values[2] > 3 * values[0]


def test_metrics_are_registered_with_their_options():
    registry = default_registry()
    assert registry.options("metrics", "fid") == {"features": "auto", "weights": "", "batch_size": 200}
    assert registry.options("metrics", "kid")["subsets"] == 10
    assert registry.create("metrics", "swd", {"min_resolution": "8"}).min_resolution == 8
    with pytest.raises(UserError, match="min_resolution"):
        registry.create("metrics", "swd", {"min_resolution": "4"})
