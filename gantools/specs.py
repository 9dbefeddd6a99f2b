"""The plugin contracts: one place that documents what every kind of plugin provides.

A plugin is one module exposing one public object, registered under an entry-point group
(``gantools.architectures``, ``gantools.losses``, ``gantools.inverters``, ``gantools.datasets``,
``gantools.metrics``).
That object is a *factory*, usually a class: gantools calls it with the user's plugin options
as keyword arguments (``--arch-opt width=32`` -> ``factory(width=32)``) and uses the returned
instance. The factory's keyword parameters and their defaults ARE the plugin's option schema:
every parameter needs a default, unknown keys are refused, and string values from the command
line are converted to the type of the default.

The contracts below are ``typing.Protocol``s: plugins need not inherit anything, and
``isinstance(obj, Loss)`` tells whether an object has a group's required methods. Optional
abilities are small Protocols of their own, read with a default (``getattr(obj, name, None)``;
None means absent); optional data attributes and their defaults are listed in ``ATTRIBUTES``.
``problems(kind, obj)`` lists every way a created plugin object falls short of its contract.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import torch
from torch import nn

from gantools.errors import UserError

GROUPS = {
    "architectures": "gantools.architectures",
    "losses": "gantools.losses",
    "inverters": "gantools.inverters",
    "datasets": "gantools.datasets",
    "metrics": "gantools.metrics",
}

SINGULAR = {"architectures": "architecture", "losses": "loss", "inverters": "inverter", "datasets": "dataset",
            "metrics": "metric"}

Logs = dict[str, float]


@dataclass(frozen=True)
class JointContext:
    """What the trainer gives a joint inverter (``attach(ctx)``, ``generator_loss(ctx, z, fake)``):
    the run's networks and data layout, and a source of real batches. Nothing else of the trainer
    is part of the contract.

    Attributes:
        arch, loss: the run's architecture and loss plugin objects.
        generator, critic: the networks being trained (the critic as the loss plugin sees it).
        config: the resolved run config (read it, do not change it).
        data_shape: (C, H, W) of the training images.
        z_dim, prior: the latent size and prior ("normal" or "uniform").
        device, memory_format: where the networks live and their layout (channels_last or
            preserve_format); build the inverter's networks alike.
        real_batch: returns this process's rows of the next real batch, on the device, in the layout.
    """

    arch: Any
    loss: Any
    generator: nn.Module
    critic: nn.Module
    config: dict[str, Any]
    data_shape: tuple[int, ...]
    z_dim: int
    prior: str
    device: torch.device
    memory_format: torch.memory_format
    real_batch: Callable[[], torch.Tensor]


# ---- Architectures ----------------------------------------------------------------------------
@runtime_checkable
class Architecture(Protocol):
    """Builds the networks. ``image_shape`` is (C, H, W) for images or (2,) for 2-D points."""

    def generator(self, z_dim: int, image_shape: tuple[int, ...]) -> nn.Module:
        """Return G mapping (N, z_dim) latents to (N, *image_shape) samples (tanh range for images)."""

    def discriminator(self, image_shape: tuple[int, ...], *, per_sample: bool) -> nn.Module:
        """Return the critic mapping (N, *image_shape) to (N,) scores.

        Args:
            per_sample: True when the loss needs each sample's score to depend on that sample
                only (gradient penalties): no BatchNorm then; use no or layer normalisation.
        """


@runtime_checkable
class ShapeCheck(Protocol):
    """Optional for architectures: refuse data shapes the networks cannot be built for."""

    def check_shape(self, image_shape: tuple[int, ...]) -> None:
        """Raise gantools.errors.UserError when ``image_shape`` is unsupported."""


@runtime_checkable
class EncoderTrunk(Protocol):
    """Optional for architectures: a trunk that encoder-style inverters build on."""

    def encoder_trunk(self, image_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
        """Return the critic's conv trunk with fresh weights, mapping (N, *image_shape) to
        (N, features), and ``features``."""


@runtime_checkable
class CriticTrunk(Protocol):
    """Optional for architectures; conditional runs (``--conditional``) need it: the critic up to
    its last linear map, on which gantools.conditional builds the (x, y) critic (projection,
    label concatenation or an AC-GAN classifier head). A conditional generator needs nothing of
    the architecture: its generator is built for z_dim + K inputs and receives z with y's one-hot
    code appended."""

    def critic_trunk(self, image_shape: tuple[int, ...], *, per_sample: bool) -> tuple[nn.Module, int]:
        """Return the critic (fresh weights, normalised as ``discriminator`` would be) without
        its output layer, mapping (N, *image_shape) to (N, features), and ``features``."""


# ---- Losses -----------------------------------------------------------------------------------
@runtime_checkable
class Loss(Protocol):
    """An adversarial objective.

    Optional attributes (see ATTRIBUTES):
        defaults: the published recipe the trainer uses unless the dataset recommends or the
            user sets something else: ``{"n_critic": int, "optimizer": "adam"|"rmsprop",
            "lr": float, "betas": (float, float)}`` (any subset; default {}).
        per_sample: True when the critic must not couple samples (see Architecture); default False.
        autoencoder: True for reconstruction objectives without a critic (ae, dae, vae), which
            meet the Autoencoder contract instead of this one; default False.
        prior: the latent prior the objective assumes ("normal" for the VAE's KL term), or None
            (default: any); runs with another --prior are refused.
        conditioning: how a conditional run's critic takes the labels under this loss when the
            user says ``--conditional`` (auto): "projection" (default; the projection
            discriminator), "concat" (the classic cGAN's label concatenation) or "acgan".
    """

    def discriminator_loss(self, critic: nn.Module, real: torch.Tensor,
                           fake: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        """Critic objective to MINIMISE, and logs (e.g. d_real, d_fake, wasserstein, penalty)
        as floats or detached scalar tensors (the trainer averages them between log lines)."""

    def generator_loss(self, critic: nn.Module, fake: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        """Generator objective to MINIMISE, and logs."""


@runtime_checkable
class Autoencoder(Protocol):
    """The contract of a loss with ``autoencoder = True``, in place of Loss's two methods: an
    autoencoder trained by reconstruction (``gantools run --loss ae|dae|vae``), with no critic.
    The run's generator is the decoder; the loss builds the encoder, and the trainer trains both
    with the generator's optimiser, saves the encoder in the checkpoint and hands it to
    ``Run.encoder`` (the ``autoencoder`` inverter encodes with it)."""

    def build_encoder(self, arch, image_shape: tuple[int, ...], z_dim: int) -> nn.Module:
        """The encoder for ``image_shape`` (fresh weights), mapping (N, *image_shape) to codes;
        UserError when ``arch`` offers no encoder (``encoder_trunk``)."""

    def reconstruction_loss(self, encoder: nn.Module, generator: nn.Module,
                            real: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        """The objective to MINIMISE on a real batch (e.g. the VAE's negative ELBO), and logs."""

    def encode(self, encoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """The latents (N, z_dim) that stand for ``images`` (a VAE's posterior mean)."""


@runtime_checkable
class AfterDiscriminatorStep(Protocol):
    """Optional for losses: a hook after each critic update."""

    def after_discriminator_step(self, critic: nn.Module) -> None:
        """Change the critic after its optimiser step (e.g. WGAN weight clipping)."""


@runtime_checkable
class Stateful(Protocol):
    """Plain data (tensors, numbers, dicts) saved and restored with a run or an inverter file."""

    def state_dict(self) -> dict:
        """Return the state."""

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""


@runtime_checkable
class StatefulLoss(Stateful, Protocol):
    """Optional for losses: what the loss keeps between steps (e.g. a lazy penalty's schedule),
    saved in checkpoints so that a resumed run continues it."""


# ---- Inverters --------------------------------------------------------------------------------
@runtime_checkable
class Inverter(Protocol):
    """Maps images back to latents (gantools.inversion fits, loads and scores them).

    Optional attributes (see ATTRIBUTES):
        needs_fit: True (default) when ``encode`` works only after ``fit`` (a learned encoder,
            FittedInverter); False for inverters that work from the generator alone (gradient
            descent on z).
        joint: True for inverters trained with the GAN (ALI, VAE-GAN) through the trainer's
            hooks (JointInverter); default False. ``joint`` wins over ``needs_fit``.
    """

    def setup(self, run, registry=None) -> None:
        """Bind to a gantools.api.Run (generator frozen in eval mode; ``run.config``,
        ``run.data_shape``, ``run.device``, ``run.memory_format``) and build any networks, untrained."""

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Return latents (N, z_dim) whose generations reconstruct ``images`` (N, C, H, W)
        in [-1, 1]. Called with gradients enabled, so it may optimise through the generator."""


@runtime_checkable
class FittedInverter(Stateful, Protocol):
    """Required of post-hoc inverters with ``needs_fit``: trained after the GAN, against its frozen
    generator; the state is what fit learnt, saved in RUN/inverters/NAME.pt."""

    def fit(self, run, steps: int | None, log: Callable[[int, dict[str, float]], None]) -> None:
        """Train against the frozen generator (``steps`` None: the inverter's default) and report
        costs through ``log(step, {"name": value})``."""


@runtime_checkable
class JointInverter(Stateful, Protocol):
    """Required of inverters with ``joint``: hooks the trainer calls with a JointContext ``ctx``.

    ``setup``/``encode`` serve as for any inverter after training; the state is saved in the
    checkpoint and in RUN/inverters/NAME.pt at the end of training.
    Optional attribute, after ``attach``: ``discriminator``, a module that replaces the critic in
    the loss plugin's critic objective.
    """

    def attach(self, ctx: JointContext) -> None:
        """Build networks for ctx.data_shape / ctx.z_dim on ctx.device in ctx.memory_format
        (ctx.arch, .loss, .critic, .generator are there to use)."""

    def parameters(self):
        """The inverter's networks' parameters, trained with the generator's optimiser."""

    def critic_inputs(self, real: torch.Tensor, z: torch.Tensor,
                      fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(real_in, fake_in): what the critic objective compares."""

    def generator_loss(self, ctx: JointContext, z: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        """The objective of G and the inverter, and logs (``ctx.real_batch()`` gives a real batch)."""


# ---- Datasets ---------------------------------------------------------------------------------
@runtime_checkable
class Dataset(Protocol):
    """Training data.

    Optional attributes (see ATTRIBUTES):
        kind: "images" (default) or "points".
        recommended: settings this data trains best with (e.g. image_size, n_critic, lr, ema);
            the run applies them unless the user overrides them. A "loss:NAME" key holds a
            dict of settings that apply only with that loss (a recipe tuned for WGAN-GP must
            not change a weight-clipped WGAN's learning rate); an "arch:NAME" key, settings
            for one architecture (e.g. its arch_opts). Default {}.
        features_name: what the ``features`` method (DatasetFeatures) computes, as figures and
            JSON name it (e.g. "digits classifier (128-d penultimate layer)"); default None.

    Optional ability (DatasetFeatures): ``features(images)``, a feature space of the data in
    which near means alike (``gantools neighbours`` compares samples with training images in it;
    without it the run's critic trunk serves).
    """

    def build(self, arg: str | None, image_size: int | None, channels: int | None) -> torch.utils.data.Dataset:
        """Load the data: a torch Dataset whose items are float tensors in [-1, 1] of shape
        (C, H, W), or 2-D points of shape (2,); it may be a BatchDataset. ``arg`` is what follows
        ``name:`` on the command line (a path, a variant) or None; ``image_size``/``channels``
        are the requested resolution and channel count, None meaning the data's own.

        Labelled data (what ``--conditional`` trains on) gives the returned Dataset two
        attributes: ``labels``, (N,) integer classes 0..K-1 in item order, and optionally
        ``classes``, the K class names (index = class; default the numbers)."""


@runtime_checkable
class BatchDataset(Protocol):
    """Optional for the torch Dataset that ``Dataset.build`` returns: a fast path for batches
    (otherwise items are stacked)."""

    def get_batch(self, indices: torch.Tensor) -> torch.Tensor:
        """The items at ``indices`` (a LongTensor) as one (B, *item_shape) float tensor."""


@runtime_checkable
class KnownModes(Protocol):
    """Optional for point datasets that are mixtures of Gaussians (the ``modes`` metric uses it)."""

    def modes(self, arg: str | None) -> Any:
        """The (K, 2) mode centres of the variant ``arg``; UserError for a variant without modes."""

    def std(self, arg: str | None) -> float:
        """The standard deviation of every mode of the variant ``arg``."""


@runtime_checkable
class DatasetFeatures(Protocol):
    """Optional for image datasets: a feature space made for this data (e.g. a classifier's
    penultimate layer), where ``gantools neighbours`` looks for the training images nearest to
    generated ones; name it with the ``features_name`` attribute."""

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, F) float features of ``images`` (B, C, H, W) in [-1, 1] at the run's resolution, on
        the CPU, without gradients; deterministic (equal images give equal features)."""


# ---- Metrics ----------------------------------------------------------------------------------
@runtime_checkable
class Metric(Protocol):
    """Scores generated samples (gantools.metrics.evaluate, ``gantools eval``).

    Optional attribute (see ATTRIBUTES):
        kinds: the data kinds it applies to, ("images",) (default) and/or ("points",).
    """

    def evaluate(self, samples: torch.Tensor, ctx) -> dict[str, Any]:
        """Figures for ``samples`` (n, C, H, W) in [-1, 1] or (n, 2) points, on the CPU, as a
        JSON-able dict of numbers (and lists). ``ctx`` is a gantools.metrics.EvalContext:
        ``ctx.real(n)`` gives real data, ``ctx.run`` the run, ``ctx.cache_dir`` a cache. A figure
        whose meaning depends on a choice the user made (e.g. FID's feature extractor) carries
        a ``"label"`` string saying so."""


@runtime_checkable
class Applies(Protocol):
    """Optional for metrics: whether it applies to a run beyond its data kind."""

    def applies(self, ctx) -> str | None:
        """None when the metric applies to ``ctx.run``, else the reason it does not (e.g. `modes`
        needs a dataset whose plugin knows its modes)."""


# ---- Checking objects against the contracts ---------------------------------------------------
CONTRACTS: dict[str, type] = {"architectures": Architecture, "losses": Loss, "inverters": Inverter,
                              "datasets": Dataset, "metrics": Metric}

# Optional abilities by group: if an object has any method of one, it must have all of them.
# (An inverter's abilities are required by its flags instead: see required_abilities.)
ABILITIES: dict[str, tuple[type, ...]] = {"architectures": (ShapeCheck, EncoderTrunk, CriticTrunk),
                                          "losses": (AfterDiscriminatorStep, StatefulLoss),
                                          "inverters": (), "datasets": (KnownModes, DatasetFeatures),
                                          "metrics": (Applies,)}

LOSS_DEFAULT_KEYS = ("n_critic", "optimizer", "lr", "betas")
DATA_KINDS = ("images", "points")


def _flag(value) -> str | None:
    return None if isinstance(value, bool) else "must be True or False"


def _table(value) -> str | None:
    return None if isinstance(value, dict) else "must be a dict"


def _loss_defaults(value) -> str | None:
    if not isinstance(value, dict):
        return "must be a dict"
    extra = sorted(set(value) - set(LOSS_DEFAULT_KEYS))
    return f"has keys {extra} outside {', '.join(LOSS_DEFAULT_KEYS)}" if extra else None


def _conditioning(value) -> str | None:
    modes = ("projection", "concat", "acgan")
    return None if value in modes else f"must be one of {', '.join(modes)}"


def _kind(value) -> str | None:
    return None if value in DATA_KINDS else f"must be one of {', '.join(DATA_KINDS)}"


def _optional_text(value) -> str | None:
    return None if value is None or (isinstance(value, str) and value) else "must be None or a non-empty str"


def _kinds(value) -> str | None:
    if not isinstance(value, (tuple, list)) or not value or any(v not in DATA_KINDS for v in value):
        return f"must be a non-empty tuple of {', '.join(DATA_KINDS)}"
    return None


# Optional data attributes: name -> (default when absent, check returning what is wrong or None).
ATTRIBUTES: dict[str, dict[str, tuple[Any, Callable[[Any], str | None]]]] = {
    "architectures": {},
    "losses": {"defaults": ({}, _loss_defaults), "per_sample": (False, _flag), "autoencoder": (False, _flag),
               "prior": (None, lambda v: None if v in (None, "normal", "uniform") else "must be None, normal or uniform"),
               "conditioning": ("projection", _conditioning)},
    "inverters": {"needs_fit": (True, _flag), "joint": (False, _flag)},
    "datasets": {"kind": ("images", _kind), "recommended": ({}, _table), "features_name": (None, _optional_text)},
    "metrics": {"kinds": (("images",), _kinds)},
}


def check_kind(kind: str) -> None:
    """Refuse a plugin group name that does not exist."""
    if kind not in GROUPS:
        raise UserError(f"unknown plugin kind '{kind}'; choose from {', '.join(GROUPS)}")


def attribute(kind: str, obj: Any, name: str) -> Any:
    """An optional data attribute of a plugin object, or its documented default (ATTRIBUTES)."""
    check_kind(kind)
    return getattr(obj, name, ATTRIBUTES[kind][name][0])


def members(protocol: type) -> list[str]:
    """The methods a Protocol asks for, its own in the order they are documented, then its bases'."""
    names: list[str] = []
    for cls in protocol.__mro__:
        if cls is protocol or Protocol in cls.__bases__:
            names += [n for n, v in vars(cls).items() if inspect.isfunction(v) and not n.startswith("_")
                      and n not in names]
    return names


def contract(kind: str, obj: Any) -> type:
    """The Protocol an object of group ``kind`` must meet: the group's, or Autoencoder for a loss
    whose ``autoencoder`` flag is set."""
    if kind == "losses" and attribute(kind, obj, "autoencoder") is True:
        return Autoencoder
    return CONTRACTS[kind]


def required_abilities(kind: str, obj: Any) -> tuple[type, ...]:
    """Abilities an object's own flags make mandatory: a joint inverter's hooks, a fitted one's fit."""
    if kind != "inverters":
        return ()
    if attribute(kind, obj, "joint"):
        return (JointInverter,)
    return (FittedInverter,) if attribute(kind, obj, "needs_fit") else ()


def _call_problem(protocol: type, name: str, method: Callable) -> str | None:
    """Whether ``method`` accepts the call the contract makes: required parameters positionally,
    the others by keyword."""
    args, kwargs, shown = [], {}, []
    for p in list(inspect.signature(getattr(protocol, name)).parameters.values())[1:]:  # without self
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty:
            args.append(None)
            shown.append(p.name)
        else:
            kwargs[p.name] = None
            shown.append(f"{p.name}=...")
    try:
        inspect.signature(method).bind(*args, **kwargs)
    except ValueError:  # no signature to read (some builtins): cannot tell
        return None
    except TypeError as exc:
        return f"{name}({', '.join(shown)}) cannot be called as the contract does: {exc}"
    return None


def _method_problems(protocol: type, obj: Any, required: bool) -> list[str]:
    present = {n: getattr(obj, n, None) for n in members(protocol)}
    if not required and all(v is None for v in present.values()):
        return []  # an optional ability the object does not offer
    out = []
    for name, value in present.items():
        if value is None:
            why = "required" if protocol in CONTRACTS.values() else f"{protocol.__name__} needs it"
            out.append(f"missing method '{name}' ({why})")
        elif not callable(value):
            out.append(f"'{name}' is not callable (a {type(value).__name__}: {value!r}; {protocol.__name__})")
        else:
            problem = _call_problem(protocol, name, value)
            if problem:
                out.append(problem)
    return out


def problems(kind: str, obj: Any) -> list[str]:
    """How a created plugin object fails its group's contract; empty when it meets it.

    Lists missing or uncallable required methods, methods that cannot be called the way gantools
    calls them, optional abilities offered in part (state_dict without load_state_dict) or as
    non-callables, abilities its flags make mandatory (fit for needs_fit, the hooks for joint),
    and optional attributes of the wrong type or value.

    Args:
        kind: the plugin group ("architectures", "losses", "inverters", "datasets", "metrics").
        obj: what the plugin's factory returned.
    """
    check_kind(kind)
    out: list[str] = []
    for name, (_, check) in ATTRIBUTES[kind].items():
        if hasattr(obj, name):
            wrong = check(getattr(obj, name))
            if wrong:
                out.append(f"attribute '{name}' {wrong} (got {getattr(obj, name)!r})")
    out += _method_problems(contract(kind, obj), obj, required=True)
    required = required_abilities(kind, obj)
    for ability in (*required, *ABILITIES[kind]):
        out += [p for p in _method_problems(ability, obj, ability in required) if p not in out]
    return out
