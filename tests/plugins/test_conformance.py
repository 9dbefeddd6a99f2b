"""Every installed plugin, built-in or third-party, meets its contract (driven by the registry)."""
from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest
import torch

import gantools
from gantools import checkpoint as ckpt
from gantools import conditional, inversion, metrics, specs
from gantools.data import fetch
from gantools.errors import UserError
from gantools.registry import default_registry

REGISTRY = default_registry()
SHAPES = [(2,), (1, 16, 16), (1, 28, 28), (3, 32, 32)]  # 28: MNIST-only architectures (conv28)

# Each test is parametrised over the registry's plugins of one group, so a new plugin is tested the
# day it is installed. Runs are tiny, and these options are set small for every plugin that has
# them (training steps, network widths, feature extractors that need no download or training).
SMALL = {"steps": 2, "batch_size": 8, "log_every": 1, "width_scale": 0.0625, "z_width": 8, "restarts": 1,
         "features": "random", "subsets": 2, "subset_size": 8, "patches_per_image": 8, "directions": 16,
         "min_resolution": 8}
IMAGE_RUN = dict(arch="dcgan", loss="wgan-gp", dataset="digits", image_size=16, arch_opts={"width": 8}, z_dim=8,
                 steps=2, batch_size=8, n_critic=1)
POINTS_RUN = dict(arch="mlp", loss="wgan-gp", dataset="toy:8gaussians", dataset_opts={"n": 256},
                  arch_opts={"hidden": 16, "layers": 2}, z_dim=2, steps=2, batch_size=16, n_critic=1)
N_SAMPLES = 16


def names(kind):
    return REGISTRY.names(kind)


def small_options(kind: str, name: str) -> dict:
    """SMALL restricted to the options the plugin has."""
    schema = REGISTRY.options(kind, name)
    return {k: v for k, v in SMALL.items() if k in schema}


def created(kind: str, name: str, options: dict | None = None):
    """The plugin object, checked against its group's Protocol."""
    obj = REGISTRY.create(kind, name, options)
    assert specs.problems(kind, obj) == [], f"{kind} plugin {name} breaks its contract"
    assert isinstance(obj, specs.contract(kind, obj))
    return obj


def _networks(name, shape, per_sample):
    arch = created("architectures", name)
    try:
        if isinstance(arch, specs.ShapeCheck):
            arch.check_shape(shape)
    except UserError:
        return None
    return arch.generator(8, shape), arch.discriminator(shape, per_sample=per_sample)


@pytest.mark.parametrize("name", names("architectures"))
@pytest.mark.parametrize("per_sample", [False, True])
def test_architecture_builds_trains_and_round_trips(name, per_sample, tmp_path):
    built = 0
    for shape in SHAPES:
        nets = _networks(name, shape, per_sample)
        if nets is None:
            continue
        built += 1
        g, d = nets
        z = torch.randn(4, 8)
        x = g(z)
        assert x.shape == (4, *shape)
        scores = d(x)
        assert scores.shape == (4,)
        (scores.sum()).backward()
        assert all(p.grad is not None for p in g.parameters() if p.requires_grad)
        if per_sample:  # gradient penalties need each score to depend on its own sample only
            d.eval()
            xs = torch.randn(3, *shape)
            alone = d(xs[:1])
            assert torch.allclose(d(xs)[:1], alone, atol=1e-5)
        path = tmp_path / f"{len(shape)}.pt"
        ckpt.save_atomic({"format": ckpt.FORMAT, "version": 1, "g": g.state_dict(), "d": d.state_dict()}, path)
        state = ckpt.load(path)
        g2, d2 = _networks(name, shape, per_sample)
        g2.load_state_dict(state["g"])
        d2.load_state_dict(state["d"])
        g.eval(), g2.eval(), d.eval(), d2.eval()
        # Exact: both copies are built alike (same layout), so the same kernels see the same weights.
        assert torch.equal(g(z), g2(z)) and torch.equal(d(x.detach()), d2(x.detach()))
    assert built >= 1, f"{name} supports none of {SHAPES}"


@pytest.mark.parametrize("name", names("architectures"))
@pytest.mark.parametrize("mode", conditional.MODES)
def test_architecture_conditional_networks(name, mode):
    """Architectures with a critic trunk build every conditional critic: (x, y) -> (N,) scores that
    depend on the class (projection, concat), per sample under a penalty."""
    arch = created("architectures", name)
    if not isinstance(arch, specs.CriticTrunk):
        pytest.skip(f"{name} has no critic_trunk: conditional runs refuse it")
    for shape in SHAPES:
        if _networks(name, shape, True) is None:
            continue
        torch.manual_seed(0)
        g, d = conditional.build(arch, {"arch": name}, 8, shape, 3, mode, per_sample=True)
        y = torch.tensor([0, 1, 2, 1])
        x = g(torch.randn(4, 8), y)
        assert x.shape == (4, *shape)
        d.eval()
        scores = d(x.detach(), y)
        assert scores.shape == (4,) and torch.isfinite(scores).all()
        torch.testing.assert_close(d(x.detach()[:1], y[:1]), scores[:1], atol=1e-5, rtol=1e-5)
        if mode != "acgan":  # AC-GAN's score ignores the class; its classifier reads it
            assert not torch.allclose(d(x.detach(), torch.tensor([2, 2, 0, 0])), scores)
        else:
            assert d.classify(x.detach()).shape == (4, 3)


def _autoencoder_contract(name, loss):
    arch, shape = created("architectures", "dcgan"), (1, 16, 16)
    encoder, decoder = loss.build_encoder(arch, shape, 8), arch.generator(8, shape)
    real = torch.rand(4, *shape) * 2 - 1
    cost, logs = loss.reconstruction_loss(encoder, decoder, real)
    assert cost.dim() == 0 and torch.isfinite(cost) and all(np.isfinite(float(v)) for v in logs.values())
    cost.backward()
    assert all(p.grad is not None for net in (encoder, decoder) for p in net.parameters())
    assert loss.encode(encoder, real).shape == (4, 8)
    with pytest.raises(UserError, match="encoder_trunk"):
        loss.build_encoder(object(), shape, 8)


@pytest.mark.parametrize("name", names("losses"))
def test_loss_contract(name, tmp_path):
    loss = created("losses", name)
    if specs.attribute("losses", loss, "autoencoder"):
        return _autoencoder_contract(name, loss)
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1), torch.nn.Flatten(0))
    real, fake = torch.randn(8, 2), torch.randn(8, 2, requires_grad=True)
    d_loss, logs = loss.discriminator_loss(critic, real, fake.detach())
    assert d_loss.dim() == 0 and torch.isfinite(d_loss)
    assert all(np.isfinite(float(v)) for v in logs.values())
    d_loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in critic.parameters())
    g_loss, _ = loss.generator_loss(critic, fake)
    g_loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    if isinstance(loss, specs.AfterDiscriminatorStep):
        loss.after_discriminator_step(critic)
    if isinstance(loss, specs.StatefulLoss):  # plain data, through a checkpoint file (weights_only)
        state = loss.state_dict()
        ckpt.save_atomic({"format": ckpt.FORMAT, "version": 1, "loss": state}, tmp_path / "loss.pt")
        again = REGISTRY.create("losses", name)
        again.load_state_dict(ckpt.load(tmp_path / "loss.pt")["loss"])
        assert again.state_dict() == state


def _candidate_args(tmp_path):
    """Arguments a dataset plugin may need: none, a toy name, an image folder, an npz file."""
    from PIL import Image
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(np.full((12, 12, 3), i * 30, np.uint8)).save(folder / f"{i}.png")
    npz = tmp_path / "data.npz"
    np.savez(npz, images=np.zeros((8, 16, 16), np.uint8))
    return [None, "8gaussians", str(folder), str(npz)]


@pytest.mark.parametrize("name", names("datasets"))
def test_dataset_contract(name, tmp_path):
    plugin = created("datasets", name)
    kind = specs.attribute("datasets", plugin, "kind")
    built = {}
    for arg in _candidate_args(tmp_path):
        try:
            built[arg] = plugin.build(arg, 16, None)
        except UserError:
            continue
    assert built, f"dataset {name} built from none of the candidate arguments"
    for arg, data in built.items():
        assert len(data) > 0
        item = data[0]
        assert item.dtype == torch.float32
        if kind == "points":
            assert item.shape == (2,)
        else:
            assert item.dim() == 3 and item.shape[1:] == (16, 16)
            assert item.min() >= -1 and item.max() <= 1
        last = data[len(data) - 1]
        batch = fetch(data, torch.tensor([0, len(data) - 1]))  # through get_batch where the data has it
        assert batch.shape == (2, *item.shape) and torch.equal(batch[0], item) and torch.equal(batch[1], last)
        if isinstance(plugin, specs.KnownModes):
            _check_modes(plugin, arg)


def _check_modes(plugin, arg):
    try:
        modes = np.asarray(plugin.modes(arg))
    except UserError:  # a variant without modes (e.g. a swiss roll) says so
        return
    assert modes.ndim == 2 and modes.shape[1] == 2 and len(modes) >= 1
    assert float(plugin.std(arg)) > 0


# ---- inverters: on one tiny trained image run ----------------------------------------------------
def _train(out, settings):
    gantools.train(out=out, **settings)
    return gantools.load_run(out)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("conformance") / "images", IMAGE_RUN)


@pytest.fixture(scope="module")
def points_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("conformance") / "points", POINTS_RUN)


def _flags(name):
    probe = created("inverters", name, small_options("inverters", name))
    return specs.attribute("inverters", probe, "joint"), specs.attribute("inverters", probe, "needs_fit")


@pytest.fixture(scope="module")
def fitted_run(image_run):
    """The image run with every post-hoc fitted inverter fitted briefly, for inverters that build
    on one (hybrid starts from the encoder)."""
    for name in names("inverters"):
        joint, needs_fit = _flags(name)
        if needs_fit and not joint:
            inversion.fit(image_run, name, small_options("inverters", name), steps=2)
    return image_run


def _encodes(inverter, run, images):
    z = inverter.encode(images)  # gradients enabled, as the contract says
    assert z.shape == (len(images), run.config["z_dim"]) and torch.isfinite(z).all()
    return z.detach()


def _round_trips(run, name, options, inverter, images, z):
    """A fresh inverter given the state_dict encodes as the original does."""
    if not isinstance(inverter, specs.Stateful):
        return
    again = inversion.create(run, name, options)
    again.load_state_dict(inverter.state_dict())
    torch.testing.assert_close(_encodes(again, run, images), z)


@pytest.mark.parametrize("name", names("inverters"))
def test_inverter_contract(name, image_run, tmp_path, request):
    options = small_options("inverters", name)
    joint, needs_fit = _flags(name)
    images = image_run.sample(5, seed=1)  # (5, C, H, W) in [-1, 1]
    if joint:  # trained with the GAN through the trainer's hooks
        run = _train(tmp_path / name, {**IMAGE_RUN, "inverter": name, "inverter_opts": options})
        inverter = inversion.load(run, name)  # its state as saved at the end of training
    elif needs_fit:  # fitted afterwards against the frozen generator, saved in the run
        run = image_run
        logged = []
        inversion.fit(run, name, options, steps=2, log=lambda step, costs: logged.append((step, costs)))
        assert logged and all(1 <= step <= 2 for step, _ in logged)
        assert all(math.isfinite(float(v)) for _, costs in logged for v in costs.values())
        inverter = inversion.load(run, name)  # what fit learnt, through the run's inverter file
    else:  # works from the generator (and whatever fitted inverters it builds on)
        run = request.getfixturevalue("fitted_run")
        try:
            inverter = inversion.create(run, name, options)
        except UserError:  # one that needs an autoencoder run's own encoder
            run = _train(tmp_path / name, {**IMAGE_RUN, "loss": "ae"})
            inverter = inversion.create(run, name, options)
    assert specs.problems("inverters", inverter) == []  # still, once set up for the run
    _round_trips(run, name, options, inverter, images, _encodes(inverter, run, images))


# ---- metrics: on a tiny image run and a tiny points run, as their kinds say ----------------------
@pytest.fixture(scope="module")
def metric_cache(tmp_path_factory):
    """A fresh metric cache (classifiers trained once per module), no Inception weights."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANTOOLS_CACHE", str(tmp_path_factory.mktemp("metric-cache")))
        patch.delenv("GANTOOLS_INCEPTION_WEIGHTS", raising=False)
        yield


def _numbers(value):
    """Every number in a JSON-able structure (booleans are not figures)."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


@pytest.mark.parametrize("name", names("metrics"))
def test_metric_contract(name, metric_cache, request):
    options = small_options("metrics", name)
    metric = created("metrics", name, options)
    scored, skipped = 0, []
    for kind in specs.attribute("metrics", metric, "kinds"):
        run = request.getfixturevalue({"images": "image_run", "points": "points_run"}[kind])
        reason = metric.applies(metrics.EvalContext(run, REGISTRY, N_SAMPLES)) \
            if isinstance(metric, specs.Applies) else None
        if reason is not None:
            assert isinstance(reason, str) and reason
            skipped.append(f"{kind} run ({run.config['dataset']}): {reason}")
            continue
        result = metrics.evaluate(run, [name], n=N_SAMPLES, options={name: options} if options else None)
        figures = result["metrics"][name]
        assert isinstance(figures, dict)
        figures = json.loads(json.dumps(figures))  # JSON-able: no tensors, no numpy integers
        assert any(math.isfinite(n) for n in _numbers(figures)), figures
        assert isinstance(figures.get("label", ""), str)
        scored += 1
    if not scored:
        print("\n".join(skipped))
        pytest.skip(f"metric {name} applies to none of the tiny runs: {'; '.join(skipped)}")


# ---- the checker itself: it must catch what the tests above rely on it to catch -----------------
class _Arch:
    def generator(self, z_dim, image_shape):
        return torch.nn.Identity()

    def discriminator(self, image_shape):  # no per_sample keyword
        return torch.nn.Identity()


class _Loss:
    defaults = {"n_critic": 1, "learning_rate": 1e-3}
    per_sample = "yes"
    after_discriminator_step = True

    def discriminator_loss(self, critic, real, fake):
        return torch.zeros(()), {}

    def state_dict(self):
        return {}


class _Inverter:
    def setup(self, run, registry=None):
        pass

    def encode(self, images):
        return images


class _JointInverter(_Inverter):
    joint = True

    def attach(self, ctx):
        pass


class _Metric:
    kinds = ("video",)

    def evaluate(self, samples, ctx):
        return {}

    def applies(self):  # no ctx
        return None


@pytest.mark.parametrize("kind,obj,expected", [
    ("architectures", _Arch(), ["discriminator(image_shape, per_sample=...) cannot be called as the contract does: "
                                "got an unexpected keyword argument 'per_sample'"]),
    ("losses", _Loss(), ["attribute 'defaults' has keys ['learning_rate'] outside n_critic, optimizer, lr, betas",
                         "attribute 'per_sample' must be True or False",
                         "missing method 'generator_loss' (required)",
                         "'after_discriminator_step' is not callable (a bool: True; AfterDiscriminatorStep)",
                         "missing method 'load_state_dict' (StatefulLoss needs it)"]),
    ("inverters", _Inverter(), ["missing method 'fit' (FittedInverter needs it)",  # needs_fit by default
                                "missing method 'state_dict' (FittedInverter needs it)",
                                "missing method 'load_state_dict' (FittedInverter needs it)"]),
    ("inverters", _JointInverter(), ["missing method 'parameters' (JointInverter needs it)",
                                     "missing method 'critic_inputs' (JointInverter needs it)",
                                     "missing method 'generator_loss' (JointInverter needs it)",
                                     "missing method 'state_dict' (JointInverter needs it)",
                                     "missing method 'load_state_dict' (JointInverter needs it)"]),
    ("metrics", _Metric(), ["attribute 'kinds' must be a non-empty tuple of images, points",
                            "applies(ctx) cannot be called as the contract does: too many positional arguments"]),
    ("datasets", types.SimpleNamespace(kind="audio", build=lambda arg, image_size, channels: None),
     ["attribute 'kind' must be one of images, points"]),
])
def test_problems_names_every_way_an_object_breaks_its_contract(kind, obj, expected):
    found = specs.problems(kind, obj)
    assert len(found) == len(expected), found
    for line, start in zip(found, expected):
        assert line.startswith(start), (line, start)
    # isinstance against the group's Protocol sees the required methods only.
    assert isinstance(obj, specs.CONTRACTS[kind]) == ("(required)" not in " ".join(found))


def test_optional_attributes_read_with_their_documented_defaults():
    bare = types.SimpleNamespace()
    assert specs.attribute("inverters", bare, "needs_fit") is True
    assert specs.attribute("inverters", bare, "joint") is False
    assert specs.attribute("metrics", bare, "kinds") == ("images",)
    assert specs.attribute("datasets", bare, "kind") == "images"
    assert specs.attribute("losses", types.SimpleNamespace(per_sample=True), "per_sample") is True
    with pytest.raises(UserError, match="unknown plugin kind 'widgets'"):
        specs.problems("widgets", bare)
