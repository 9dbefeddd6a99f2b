"""The run settings: one table feeds the defaults, validation, the CLI options and the resume rule.

Adding a setting is one row of SETTINGS: its name (the config key and, with dashes, the
``gantools run`` flag), default, kind (and choices), an optional check, help text, and whether
``--resume`` may change it. gantools.config resolves the layers of values and calls ``validate``;
gantools.cli builds the options of ``gantools run`` from the rows; gantools.api lets a resumed run
change only the rows marked resumable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from gantools.errors import UserError
from gantools.precision import PRECISIONS
from gantools.registry import convert_value

# Kinds of value: how a command-line string is read and what a valid value is.
INT, FLOAT, STR, BOOL, CHOICE, OPTIONS, NAMES, PAIR = ("int", "float", "str", "bool", "choice", "options",
                                                       "names", "pair")


@dataclass(frozen=True)
class Setting:
    """One run setting.

    Attributes:
        name: config key; the flag is ``--`` + name with dashes (``batch_size`` -> ``--batch-size``).
        default: gantools' default (None: decided later, e.g. by the dataset; said in ``shown``).
        kind: INT, FLOAT, STR, BOOL, CHOICE (one of ``choices``), OPTIONS (a plugin's key=value
            table, given as ``--NAME-opt K=V`` repeatable), NAMES (a list of names, comma-separated on
            the command line) or PAIR (two floats, ``b1,b2``).
        help: the help text of the flag.
        check: returns what is wrong with a converted value (a phrase such as "must be at least 1"),
            or None when it is fine.
        resumable: ``--resume`` may change it (cadences, length, device); the others are the run.
        shown: the default as ``--help`` shows it, where the plain value would mislead.
        cli: False for settings that have no flag of their own.
    """

    name: str
    default: Any
    kind: str
    help: str
    choices: tuple[str, ...] = ()
    check: Callable[[Any], str | None] | None = None
    resumable: bool = False
    shown: str | None = None
    cli: bool = True
    flag_value: Any = None  # the value of the bare flag (``--conditional`` = auto), for options that take one

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def at_least(low: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= low else f"must be at least {low:g}"


def between(low: float, high: float) -> Callable[[Any], str | None]:
    """low <= v < high."""
    return lambda v: None if low <= v < high else f"must be in [{low:g}, {high:g})"


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be positive"


def _tensorboard(v: bool | None) -> str | None:
    from gantools import tblog

    return tblog.check(v)


def _device(v: str) -> str | None:
    return None if v in ("auto", "cpu", "cuda") or v.startswith("cuda:") else "must be auto, cpu or cuda[:N]"


def _channels(v: int | None) -> str | None:
    return None if v in (None, 1, 3) else "must be 1 or 3"


def _betas(v: tuple[float, ...]) -> str | None:
    return None if len(v) == 2 and all(0.0 <= b < 1.0 for b in v) else "must be two numbers in [0, 1)"


def _augmentations(names: list[str]) -> str | None:
    from gantools.augment import POLICIES

    unknown = [n for n in names if n not in (*POLICIES, "none")]
    if unknown or ("none" in names and len(names) > 1):
        return f"must be none or one or more of {', '.join(POLICIES)}"
    return None


RECIPE = "the loss's recipe"
SETTINGS: tuple[Setting, ...] = (
    Setting("arch", "dcgan", STR, "architecture plugin (gantools list architectures)"),
    Setting("loss", "wgan-gp", STR, "loss plugin (gantools list losses)"),
    Setting("dataset", "digits", STR, "dataset plugin, NAME or NAME:ARG (folder:PATH, mnist[:PATH], npz:PATH, "
            "toy:25gaussians)"),
    Setting("arch_opts", {}, OPTIONS, "architecture option K=V (repeatable)"),
    Setting("loss_opts", {}, OPTIONS, "loss option K=V (repeatable)"),
    Setting("dataset_opts", {}, OPTIONS, "dataset option K=V (repeatable)"),
    Setting("augment", [], NAMES, "augment what the critic sees: flip (random x-flip of real images), "
            "diffaugment (colour, translation, cutout on real and generated images alike; Zhao et al. 2020); "
            "comma-separated", check=lambda v: _augmentations(v), shown="none"),
    Setting("instance_noise", 0.0, FLOAT, "std of Gaussian noise added to every critic input (real and "
            "generated), annealed linearly to 0 over the run; 0: off (Sonderby et al. 2017, the face thesis' "
            "instance noise)", check=at_least(0.0)),
    Setting("conditional", "off", CHOICE, "train a class-conditional GAN on labelled data: projection (the "
            "projection discriminator), concat (label concatenation, the classic cGAN) or acgan (an auxiliary "
            "classifier); the bare flag is auto: concat for the gan loss, projection otherwise",
            choices=("off", "auto", "projection", "concat", "acgan"), flag_value="auto"),
    Setting("acgan_weight", 1.0, FLOAT, "weight of the auxiliary classifier's cross-entropy in both "
            "objectives (--conditional acgan)", check=at_least(0.0)),
    Setting("inverter", None, STR, "joint inverter trained with the GAN (ali, vaegan); post-hoc ones: "
            "gantools invert fit"),
    Setting("inverter_opts", {}, OPTIONS, "inverter option K=V (repeatable)"),
    Setting("steps", 5000, INT, "generator iterations (each has n_critic critic steps)", check=at_least(1),
            resumable=True),
    Setting("epochs", None, INT, "train for N epochs instead of --steps; one epoch = the critic has seen every "
            "real image once: steps = ceil(N x images / (batch_size x n_critic))", check=at_least(1),
            resumable=True, shown="off: --steps decides"),
    Setting("batch_size", 64, INT, "images per batch", check=at_least(1)),
    Setting("image_size", None, INT, "resolution", check=lambda v: None if v is None or v >= 4 else "must be at least 4",
            shown="the dataset's recommendation"),
    Setting("channels", None, INT, "1 grayscale or 3 RGB", check=_channels, shown="the data's"),
    Setting("z_dim", 128, INT, "latent dimension", check=at_least(1)),
    Setting("prior", "normal", CHOICE, "latent prior", choices=("normal", "uniform")),
    Setting("n_critic", 1, INT, "critic steps per generator step", check=at_least(1), shown=RECIPE),
    Setting("optimizer", "adam", CHOICE, "optimiser", choices=("adam", "rmsprop"), shown=RECIPE),
    Setting("lr", 2e-4, FLOAT, "learning rate", check=_positive, shown=RECIPE),
    Setting("betas", (0.5, 0.999), PAIR, "Adam betas as b1,b2", check=_betas, shown=RECIPE),
    Setting("lr_decay", "none", CHOICE, "learning-rate schedule over the run (linear: to 0 at the last step)",
            choices=("none", "linear")),
    Setting("lr_decay_start", 0.0, FLOAT, "fraction of the run at the full rate before the decay",
            check=between(0.0, 1.0)),
    Setting("ema", 0.0, FLOAT, "decay of the generator's weight average used for sampling; 0 = off",
            check=between(0.0, 1.0)),
    Setting("channels_last", None, BOOL, "channels-last (NHWC) memory format for image networks and batches "
            "(faster convolutions on CPU)", shown="on for images"),
    Setting("precision", "fp32", CHOICE, "autocast the forward passes to bf16 or fp16 (fp16 with loss "
            "scaling); fp32: none", choices=PRECISIONS, resumable=True),
    Setting("cuda_graphs", False, BOOL, "capture each training iteration as a CUDA graph and replay it (one "
            "launch per step; CUDA, one process, fp32/bf16; refused with the reason where capture cannot work)",
            resumable=True),
    Setting("seed", 0, INT, "random seed"),
    Setting("device", "auto", STR, "auto, cpu or cuda[:N]", check=_device, resumable=True),
    Setting("sample_every", 500, INT, "write a sample grid every N steps", check=at_least(1), resumable=True),
    Setting("checkpoint_every", 1000, INT, "keep a numbered checkpoint every N steps", check=at_least(1),
            resumable=True),
    Setting("log_every", 50, INT, "append a metrics.jsonl row every N steps", check=at_least(1), resumable=True),
    Setting("log_grad_norms", False, BOOL, "log the critic's gradient norm per layer (grad_norm/LAYER, the "
            "mean over the steps since the last row) in metrics.jsonl; gantools plot draws them on a log scale; "
            "and a histogram of the critic's weights per layer at the end (plots/weights.png: under wgan's "
            "clipping they pile up at +-clip)",
            resumable=True),
    Setting("tensorboard", None, BOOL, "also write the logged values, sample grids and the config as TensorBoard "
            "events under RUN/tensorboard (metrics.jsonl stays the record)", check=_tensorboard, resumable=True,
            shown="on when the tensorboard package is installed"),
    Setting("time_limit", 0.0, FLOAT, "stop after this many minutes of training (checkpointed; --resume "
            "continues); 0: no limit", check=lambda v: None if v >= 0 else "must be >= 0 minutes", resumable=True),
    Setting("eval_every", 0, INT, "score the run with metric plugins every N steps into metrics.jsonl "
            "(0: never; see gantools eval)", check=at_least(0), resumable=True),
    Setting("eval_metrics", [], NAMES, "comma-separated metric plugins for --eval-every",
            shown="every installed one that applies", resumable=True),
    Setting("eval_n", 1000, INT, "generated samples per periodic evaluation", check=at_least(2), resumable=True),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def defaults() -> dict[str, Any]:
    """Every setting's default (fresh copies of mutable ones)."""
    return {s.name: (type(s.default)(s.default) if isinstance(s.default, (dict, list)) else s.default)
            for s in SETTINGS}


def resumable() -> tuple[str, ...]:
    return tuple(s.name for s in SETTINGS if s.resumable)


def check_keys(values: dict[str, Any], where: str) -> None:
    """Refuse keys that are not settings."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise UserError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")


def convert(setting: Setting, value: Any) -> Any:
    """A value (possibly a command-line string) as the setting's kind; UserError if it cannot be."""
    name, kind = setting.name, setting.kind
    if value is None:
        if setting.default is None:
            return None
        raise UserError(f"{name} needs a value")
    if kind in (INT, FLOAT, BOOL):
        example = {INT: 0, FLOAT: 0.0, BOOL: False}[kind]
        value = convert_value(value, example, name)
        if kind == BOOL and not isinstance(value, bool):
            raise UserError(f"{name} must be true or false (got {value!r})")
        if kind != BOOL and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UserError(f"{name} must be a number (got {value!r})")
        if kind == INT and isinstance(value, float) and not value.is_integer():
            raise UserError(f"{name} must be a whole number (got {value!r})")
        return int(value) if kind == INT else float(value) if kind == FLOAT else value
    if kind == PAIR:
        return tuple(float(b) for b in convert_value(value, (0.0, 0.0), name))
    if kind == NAMES:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise UserError(f"{name} must be a list of names (got {value!r})")
        return list(value)
    if kind == OPTIONS:
        if not isinstance(value, dict):
            raise UserError(f"{name} must be a table of key=value options")
        return dict(value)
    if not isinstance(value, str):
        raise UserError(f"{name} must be a string (got {value!r})")
    if kind == CHOICE and value not in setting.choices:
        raise UserError(f"{name} must be one of {', '.join(setting.choices)} (got {value!r})")
    return value


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Convert and check every setting; return plain data (JSON- and checkpoint-safe)."""
    check_keys(config, "config")
    out = dict(config)
    for setting in SETTINGS:
        value = convert(setting, out.get(setting.name, setting.default))
        problem = setting.check(value) if setting.check is not None and value is not None else None
        if problem:
            raise UserError(f"{setting.name} {problem} (got {value!r})")
        out[setting.name] = list(value) if setting.kind == PAIR else value  # JSON round-trips lists
    return out
