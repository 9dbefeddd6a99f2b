"""Plugin registry: find (entry-point metadata only, no imports) apart from load (import one)."""
from __future__ import annotations

import importlib.metadata as md
import inspect
import numbers
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gantools.errors import PluginLoadError, UserError
from gantools.specs import GROUPS, SINGULAR, check_kind

# (distribution name, distribution version, entry point)
Source = Callable[[], Iterable[tuple[str, str, md.EntryPoint]]]


@dataclass(frozen=True)
class PluginInfo:
    """What the metadata says about one plugin, before anything is imported."""

    kind: str
    name: str
    value: str
    distribution: str
    version: str
    entry_point: md.EntryPoint


def installed_entry_points() -> Iterable[tuple[str, str, md.EntryPoint]]:
    """Every gantools entry point of every installed distribution (one copy per distribution)."""
    groups = set(GROUPS.values())
    seen: set[str] = set()
    for dist in md.distributions():
        name = dist.metadata["Name"] or "?"
        key = name.lower().replace("_", "-")
        if key in seen:  # the same distribution twice on sys.path: the first one wins, as in import
            continue
        seen.add(key)
        for ep in dist.entry_points:
            if ep.group in groups:
                yield name, dist.version, ep


class Registry:
    """Finds and loads plugins. Tests build one from fake entry points.

    Args:
        source: callable returning (distribution, version, EntryPoint) triples; defaults to
            the installed distributions' metadata.
    """

    def __init__(self, source: Source | None = None):
        self._source = source or installed_entry_points
        self._infos: list[PluginInfo] | None = None
        self._loaded: dict[tuple[str, str], Any] = {}

    def find(self, kind: str | None = None) -> list[PluginInfo]:
        """All plugins (of one kind), sorted by kind then name; reads metadata only."""
        if self._infos is None:
            kinds = {group: k for k, group in GROUPS.items()}
            infos = [PluginInfo(kinds[ep.group], ep.name, ep.value, dist, version, ep)
                     for dist, version, ep in self._source() if ep.group in kinds]
            self._infos = sorted(infos, key=lambda i: (i.kind, i.name, i.distribution))
        if kind is not None:
            check_kind(kind)
            return [i for i in self._infos if i.kind == kind]
        return list(self._infos)

    def names(self, kind: str) -> list[str]:
        """Sorted distinct plugin names of one kind."""
        return sorted({i.name for i in self.find(kind)})

    def info(self, kind: str, name: str) -> PluginInfo:
        """The single plugin called ``name``; unknown or duplicated names are errors."""
        matches = [i for i in self.find(kind) if i.name == name]
        singular = SINGULAR[kind]
        if not matches:
            installed = ", ".join(self.names(kind)) or "none"
            raise UserError(f"unknown {singular} '{name}'; installed: {installed}")
        if len(matches) > 1:
            dists = " and ".join(f"'{m.distribution}' ({m.value})" for m in matches)
            raise UserError(f"{singular} '{name}' is registered twice, by {dists}; uninstall one")
        return matches[0]

    def load(self, kind: str, name: str) -> Any:
        """Import one plugin and return its public object (a factory); failures name the cause."""
        info = self.info(kind, name)
        key = (kind, name)
        if key not in self._loaded:
            try:
                obj = info.entry_point.load()
            except Exception as exc:  # any import-time failure of third-party code
                raise plugin_error(info, "failed to load", exc) from exc
            if not callable(obj):
                raise plugin_error(info, f"is not a factory (got {type(obj).__name__})")
            self._loaded[key] = obj
        return self._loaded[key]

    def create(self, kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
        """Load a plugin and call its factory with validated, type-converted options.

        A bad option (unknown key, unreadable or wrongly typed value) is a UserError; anything
        but a UserError raised by the factory's own code is a bug in the plugin, a PluginLoadError
        naming the plugin, its distribution and the cause.
        """
        factory = self.load(kind, name)
        info = self.info(kind, name)
        what = f"{SINGULAR[kind]} '{name}'"
        kwargs = coerce_options(factory, options or {}, what)
        required = required_parameters(factory)
        if required:
            raise plugin_error(info, f"cannot be created from options: its factory's parameter(s) "
                                     f"{', '.join(required)} have no default")
        try:
            inspect.signature(factory).bind(**kwargs)
        except TypeError as exc:
            raise UserError(f"{what}: bad options {kwargs}: {exc}") from None
        try:
            return factory(**kwargs)
        except UserError:
            raise
        except Exception as exc:  # the plugin's own code failed, not the user's options
            raise plugin_error(info, "failed to start", exc) from exc

    def options(self, kind: str, name: str) -> dict[str, Any]:
        """The plugin's option names and default values."""
        return option_defaults(self.load(kind, name))


def plugin_error(info: PluginInfo, what: str, exc: BaseException | None = None) -> PluginLoadError:
    """A one-line PluginLoadError naming the plugin, its distribution, entry point and the cause."""
    cause = ""
    if exc is not None:
        lines = str(exc).strip().splitlines()
        cause = f": {type(exc).__name__}" + (f": {lines[0]}" if lines else "")
    return PluginLoadError(f"{SINGULAR[info.kind]} plugin '{info.name}' from distribution '{info.distribution}' "
                           f"(entry point {info.value}) {what}{cause}")


def required_parameters(factory: Callable) -> list[str]:
    """Parameters a factory cannot be called without (plugin options must all have defaults)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except ValueError:  # no signature to read: trust it
        return []
    return [p.name for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def option_defaults(factory: Callable) -> dict[str, Any]:
    """Keyword parameters of a factory and their defaults (the plugin's option schema)."""
    params = inspect.signature(factory).parameters.values()
    return {p.name: p.default for p in params
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty}


def coerce_options(factory: Callable, options: dict[str, Any], what: str) -> dict[str, Any]:
    """Check option names against the factory's schema and convert strings to the default's type."""
    schema = option_defaults(factory)
    out = {}
    for key, value in options.items():
        if key not in schema:
            known = ", ".join(f"{k}={v!r}" for k, v in schema.items()) or "none"
            raise UserError(f"{what} has no option '{key}'; its options: {known}")
        out[key] = check_type(convert_value(value, schema[key], f"{what} option {key}"), schema[key],
                              f"{what} option {key}")
    return out


def convert_value(value: Any, default: Any, what: str) -> Any:
    """Convert a command-line string to the type of ``default`` (bool, int, float, tuple, str)."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    text = value.strip()
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, (tuple, list)):
            items = [t for t in text.strip("()[]").split(",") if t.strip()]
            elem = default[0] if default else text
            return type(default)(convert_value(t, elem, what) for t in items)
    except ValueError as exc:
        raise UserError(f"{what}: cannot read {value!r} as {type(default).__name__} ({exc})") from None
    return value


def check_type(value: Any, default: Any, what: str) -> Any:
    """``value`` as the type of ``default`` where that is lossless (3 -> 3.0, 3.0 -> 3, a list ->
    a tuple, a path -> str); UserError for a value of another type (3.5 for an int option, 1 for a
    string, 1 for a bool). A None default accepts anything."""
    if default is None:
        return value
    expected = type(default).__name__
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, numbers.Integral):
        whole = isinstance(value, float) and value.is_integer()
        ok = whole or isinstance(value, numbers.Integral) and not isinstance(value, bool)
        value = int(value) if ok else value
    elif isinstance(default, numbers.Real):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        value = os.fspath(value) if isinstance(value, os.PathLike) else value
        ok = isinstance(value, str)
    elif isinstance(default, (tuple, list)):
        ok = isinstance(value, (tuple, list))
        if ok and default and len({type(d) for d in default}) == 1:
            value = [check_type(v, default[0], what) for v in value]
        value = type(default)(value) if ok else value
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
    else:
        ok = True
    if not ok:
        raise UserError(f"{what}: expected {expected} like its default {default!r}, got {type(value).__name__} "
                        f"{value!r}")
    return value


_default: Registry | None = None


def default_registry() -> Registry:
    """The registry of the installed plugins (created on first use)."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


# Module-level shortcuts, so `gantools.registry.find("losses")` reads the installed plugins.
def find(kind: str | None = None) -> list[PluginInfo]:
    """Installed plugins (of one kind), from metadata only."""
    return default_registry().find(kind)


def load(kind: str, name: str) -> Any:
    """Import one installed plugin and return its factory."""
    return default_registry().load(kind, name)


def create(kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
    """Load an installed plugin and call its factory with the given options."""
    return default_registry().create(kind, name, options)
