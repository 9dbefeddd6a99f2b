"""Feature extractors for the distribution metrics: images (N, C, H, W) in [-1, 1] -> (N, D) float64.

Chosen by name (the ``features`` option of fid and kid):

- ``inception``: the FID Inception-v3 (2048-d pool3 features), rebuilt here in plain PyTorch with
  the module names of the weights file pytorch-fid publishes (pt_inception-2015-12-05-6726825d.pth),
  loaded only from a local file: option ``weights=PATH`` or $GANTOOLS_INCEPTION_WEIGHTS. Nothing
  is downloaded. The only features whose FID/KID compares with published numbers.
- ``digits``: the 128-d penultimate layer of a small CNN trained on the real digits (about 5 s on
  one CPU thread, deterministic), scaled to unit RMS on real digits, cached in
  ``CACHE/digits_cnn_v1.pt``.
- ``random``: a fixed-seed, untrained conv net (512-d): for relative comparisons (run A against
  run B on the same data) on any images; its numbers mean nothing outside this tool.
- ``auto``: inception when weights are given, else digits for a digits run, else random.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gantools import checkpoint as ckpt
from gantools.errors import UserError
from gantools_plugins.metrics._inception import WEIGHTS_FILE, FIDInceptionV3, _avg_pool, load_inception  # noqa: F401

NAMES = ("auto", "inception", "digits", "random")
WEIGHTS_ENV = "GANTOOLS_INCEPTION_WEIGHTS"
DIGITS_CACHE = "digits_cnn_v1.pt"
_DIGITS_FORMAT = "gantools-digits-cnn"
LABELS = {"inception": "Inception-v3 pool3 (standard {metric})",
          "digits": "digits-CNN features (NOT Inception {metric})",
          "random": "random conv features (NOT Inception {metric})"}


# --- A CNN classifier of the real digits; its penultimate layer is the feature.
class DigitsCNN(nn.Module):
    """(N, 1, 16, 16) digits -> 10 logits; ``features`` gives the 128-d penultimate layer."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 16, 8, 8)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 32, 4, 4)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Flatten(),  # (N, 1024)
            nn.Linear(1024, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def digits_input(images: torch.Tensor) -> torch.Tensor:
    """Any (N, C, H, W) images -> (N, 1, 16, 16): channels averaged, resized bilinearly."""
    x = images.float().mean(dim=1, keepdim=True)
    if x.shape[-2:] != (16, 16):
        x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False, antialias=x.shape[-1] > 16)
    return x


def _digits(split: str):
    from gantools.registry import default_registry

    data = default_registry().create("datasets", "digits", {"split": split}).build(None, 16, 1)
    return data.get_batch(torch.arange(len(data))), data.labels


def held_out_accuracy(net: DigitsCNN) -> float:
    """Accuracy on the digits plugin's 297 held-out test digits (never trained on)."""
    images, labels = _digits("test")
    with torch.no_grad():
        return float((net(images).argmax(1) == labels).double().mean())


def train_digits_cnn(epochs: int = 12, seed: int = 0) -> DigitsCNN:
    """Train on the digits plugin's 1500 training digits (held-out test split untouched).

    Deterministic: fixed seed, CPU, ONE thread (results then do not depend on the machine's
    core count; on a busy 2-core machine one thread is also the fastest). Random +-1 pixel
    shifts make the features robust to small misplacements of generated digits.
    """
    images, labels = _digits("train")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            net = DigitsCNN()
        gen = torch.Generator().manual_seed(seed)
        batch, steps = 50, -(-len(images) // 50)
        opt = torch.optim.Adam(net.parameters(), 2e-3)
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * steps)
        padded = F.pad(images, (1, 1, 1, 1), value=-1.0)  # background is -1
        with torch.enable_grad():
            for _ in range(epochs):
                order = torch.randperm(len(images), generator=gen)
                for i in range(0, len(images), batch):
                    idx = order[i:i + batch]
                    dy, dx = torch.randint(0, 3, (2,), generator=gen).tolist()
                    x = padded[idx, :, dy:dy + 16, dx:dx + 16]
                    loss = F.cross_entropy(net(x), labels[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    schedule.step()
    finally:
        torch.set_num_threads(threads)
    return _unit_rms(net.eval(), images)


@torch.no_grad()
def _unit_rms(net: DigitsCNN, images: torch.Tensor) -> DigitsCNN:
    """Scale the feature layer so real digits' features have unit root-mean-square (x.y/d of
    order 1, the range KID's cubic kernel is made for); the head is rescaled, logits unchanged."""
    scale = float(net.features(images).pow(2).mean().rsqrt())
    layer = net.trunk[-2]  # Linear(1024, 128), before the last ReLU (positively homogeneous)
    layer.weight.mul_(scale)
    layer.bias.mul_(scale)
    net.head.weight.div_(scale)
    return net


def digits_cnn(cache_dir: str | os.PathLike) -> tuple[DigitsCNN, float]:
    """The digits CNN and its held-out accuracy, from ``cache_dir/digits_cnn_v1.pt`` or trained
    and written there (atomically); a damaged cache file is retrained and replaced."""
    path = Path(cache_dir) / DIGITS_CACHE
    if path.is_file():
        try:
            state = ckpt.load(path, fmt=_DIGITS_FORMAT, version=1, what="digits-CNN cache")
            net = DigitsCNN()
            net.load_state_dict(state["state_dict"])
            return net.eval(), float(state["held_out_accuracy"])
        except (UserError, KeyError, RuntimeError, TypeError, ValueError) as exc:
            warnings.warn(f"retraining the digits CNN: {exc}", stacklevel=2)
    net = train_digits_cnn()
    accuracy = held_out_accuracy(net)
    try:
        ckpt.save_atomic({"format": _DIGITS_FORMAT, "version": 1, "state_dict": net.state_dict(),
                          "held_out_accuracy": accuracy}, path)
    except OSError as exc:
        warnings.warn(f"could not cache the digits CNN in {path}: {exc}", stacklevel=2)
    return net, accuracy


# --- A fixed-seed random conv net.
def random_net(seed: int = 0) -> nn.Module:
    """Untrained conv net: (N, 3, 32, 32) -> (N, 512); He-normal weights from ``seed``."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),  # (N, 32, 32, 32)
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),  # (N, 64, 16, 16)
            nn.Conv2d(64, 128, 4, 2, 1), nn.ReLU(),  # (N, 128, 8, 8)
            nn.Conv2d(128, 128, 4, 2, 1), nn.ReLU(),  # (N, 128, 4, 4)
            nn.AdaptiveAvgPool2d(2), nn.Flatten())  # (N, 512)
        for m in net:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
    return net.eval()


def _rgb(images: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """(N, 1 or 3, H, W) -> (N, 3, size, size); grey repeated, resized bilinearly (size None: kept)."""
    x = images.float()
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    if size is not None and x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < min(x.shape[-2:]))
    return x


FEATURES_VERSION = 1  # bump when a network's input preparation changes: cached statistics then miss


def quantise(images: torch.Tensor) -> torch.Tensor:
    """Generated images in [-1, 1] rounded to 8 bits, as real images read from files are:
    x -> round((x + 1) * 127.5) / 127.5 - 1 (clamped first), so sub-8-bit detail that no saved
    image could carry cannot move a feature statistic."""
    return torch.round((images.float().clamp(-1, 1) + 1) * 127.5) / 127.5 - 1


class Features:
    """A named feature map: ``features(images)`` -> (N, dim) float64 numpy array.

    Attributes:
        name: "inception", "digits" or "random".
        info: figures about the extractor worth reporting (e.g. the classifier's accuracy).
    """

    def __init__(self, name: str, net: nn.Module, prepare, forward=None, info: dict | None = None):
        self.name, self.net, self.prepare, self.info = name, net, prepare, info or {}
        self.forward = forward or net
        self._identity: str | None = None

    def label(self, metric: str) -> str:
        return LABELS[self.name].format(metric=metric)

    @property
    def identity(self) -> str:
        """NAME/HASH: the extractor's name and a sha256 of every tensor of its network (so other
        weights, or a retrained digits CNN, never meet statistics cached for these)."""
        if self._identity is None:
            digest = hashlib.sha256(f"{FEATURES_VERSION}\0{self.name}".encode())
            for key, value in sorted(self.net.state_dict().items()):
                tensor = value.detach().cpu().contiguous()
                digest.update(f"{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\n".encode())
                digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
            self._identity = f"{self.name}/{digest.hexdigest()[:24]}"
        return self._identity

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 200, device="cpu") -> np.ndarray:
        self.net.to(device)
        parts = [self.forward(self.prepare(chunk).to(device)).double().cpu() for chunk in images.split(batch_size)]
        return torch.cat(parts).numpy()


def build(name: str, weights: str = "", cache_dir: str | os.PathLike | None = None) -> Features:
    """The extractor ``name`` ("inception", "digits" or "random"; not "auto")."""
    if name == "inception":
        return Features(name, load_inception(weights), _rgb)  # the network resizes, as pytorch-fid
    if name == "digits":
        from gantools.metrics import cache_dir as default_cache

        net, accuracy = digits_cnn(cache_dir if cache_dir is not None else default_cache())
        return Features(name, net, digits_input, net.features, {"digits_cnn_accuracy": accuracy})
    if name == "random":
        return Features(name, random_net(), lambda x: _rgb(x, 32))
    raise UserError(f"unknown features '{name}'; choose from {', '.join(NAMES)}")


def resolve(name: str, weights: str, dataset_name: str) -> tuple[str, str]:
    """(extractor name, weights path) for the user's ``features``/``weights`` options."""
    weights = weights or os.environ.get(WEIGHTS_ENV, "")
    if name == "auto":
        name = "inception" if weights else "digits" if dataset_name == "digits" else "random"
    if name == "inception" and not weights:
        raise UserError(f"features=inception needs the FID Inception weights ({WEIGHTS_FILE}, "
                        f"published by pytorch-fid): give weights=PATH or set {WEIGHTS_ENV}")
    return name, weights


def check_options(metric: str, features: str, batch_size: int) -> None:
    if features not in NAMES:
        raise UserError(f"{metric}: features must be one of {', '.join(NAMES)}, got {features!r}")
    if batch_size < 1:
        raise UserError(f"{metric}: batch_size must be at least 1, got {batch_size}")


def extractor(features: str, weights: str, ctx) -> Features:
    """The extractor for the ``features``/``weights`` options, memoised on ``ctx`` (fid, kid and
    is in one evaluation share one network)."""
    name, weights = resolve(features, weights, ctx.dataset_name)
    memo = ctx.__dict__.setdefault("_distance_features", {})
    if (name, weights) not in memo:
        memo[(name, weights)] = build(name, weights, ctx.cache_dir)
    return memo[(name, weights)]


def fake_features(extract: Features, samples: torch.Tensor, batch_size: int, ctx) -> np.ndarray:
    """Features (n, D) of the generated samples, quantised to 8 bits first; memoised on ``ctx``."""
    if len(samples) == 0:
        raise UserError("no samples to score")
    memo = ctx.__dict__.setdefault("_distance_features", {})
    key = (extract.identity, "fake", id(samples), tuple(samples.shape))
    if key not in memo:
        memo[key] = extract(quantise(samples), batch_size, getattr(ctx.run, "device", "cpu"))
    return memo[key]


def real_statistics(extract: Features, what: str, reduce, batch_size: int, n: int, ctx) -> dict:
    """``reduce(real features)`` -> {name: array} for the first n real images (fewer when the data
    is smaller), cached on disk by ``ctx.real_statistics`` (keyed by ``what``, the network's
    identity, the data and n), so a later evaluation never runs the network on real images.
    A context without that cache (a stand-in) computes every time."""
    memo = ctx.__dict__.setdefault("_distance_features", {})

    def compute() -> dict:
        key = (extract.identity, "real", n)
        if key not in memo:
            memo[key] = extract(ctx.real(n), batch_size, getattr(ctx.run, "device", "cpu"))
        return reduce(memo[key])

    cached = getattr(ctx, "real_statistics", None)
    return compute() if cached is None else cached(f"{what}/{extract.identity}", n, compute)
