"""Registry: find reads metadata only; load imports one plugin and names the culprit on failure."""
from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from gantools.errors import PluginLoadError, UserError
from gantools.registry import Registry, coerce_options, convert_value


class GoodLoss:
    defaults = {"n_critic": 1}

    def __init__(self, scale: float = 1.0, steps: int = 3, flag: bool = False, betas: tuple = (0.5, 0.9),
                 mode: str = "a"):
        self.scale, self.steps, self.flag, self.betas, self.mode = scale, steps, flag, betas, mode


class BuggyLoss:
    """Its constructor has a bug: it raises whatever ``error`` names, whatever the options."""

    def __init__(self, error: str = "ValueError", scale: float = 1.0):
        if error == "ValueError":
            raise ValueError("math domain error\nsecond line of the traceback text")
        if error == "TypeError":
            len(scale)  # TypeError: object of type 'float' has no len()
        if error == "UserError":
            raise UserError("buggy loss: scale must be positive")


class NeedsPath:
    """A factory whose parameter has no default: it cannot be created from options alone."""

    def __init__(self, path, scale: float = 1.0):
        self.path = path


@pytest.fixture
def fake_modules(monkeypatch):
    """Importable modules for the fake entry points; `boom` fails at import time."""
    good = types.ModuleType("fake_good")
    good.loss = GoodLoss
    good.buggy = BuggyLoss
    good.needs_path = NeedsPath
    good.not_callable = 42
    monkeypatch.setitem(sys.modules, "fake_good", good)
    monkeypatch.delitem(sys.modules, "fake_boom", raising=False)
    return good


def make_registry(*triples):
    return Registry(lambda: [(dist, "1.0", EntryPoint(name, value, f"gantools.{kind}"))
                             for dist, kind, name, value in triples])


def test_find_is_sorted_and_imports_nothing(fake_modules):
    reg = make_registry(("dist-b", "losses", "zeta", "fake_boom:loss"),
                        ("dist-a", "losses", "alpha", "fake_good:loss"),
                        ("dist-a", "architectures", "net", "fake_boom:arch"))
    infos = reg.find()
    assert [(i.kind, i.name) for i in infos] == [("architectures", "net"), ("losses", "alpha"), ("losses", "zeta")]
    assert [i.distribution for i in reg.find("losses")] == ["dist-a", "dist-b"]
    assert "fake_boom" not in sys.modules  # find never imported the broken module


def test_unknown_name_lists_installed(fake_modules):
    reg = make_registry(("d", "losses", "alpha", "fake_good:loss"), ("d", "losses", "beta", "fake_good:loss"))
    with pytest.raises(UserError, match=r"unknown loss 'gamma'; installed: alpha, beta"):
        reg.load("losses", "gamma")


def test_unknown_kind_is_an_error():
    with pytest.raises(UserError, match="unknown plugin kind 'widgets'"):
        make_registry().find("widgets")


def test_duplicate_name_names_both_distributions(fake_modules):
    reg = make_registry(("first-dist", "losses", "alpha", "fake_good:loss"),
                        ("second-dist", "losses", "alpha", "fake_good:loss"))
    with pytest.raises(UserError) as err:
        reg.load("losses", "alpha")
    assert "first-dist" in str(err.value) and "second-dist" in str(err.value)


def test_broken_plugin_names_distribution_and_cause_others_still_load(fake_modules, tmp_path, monkeypatch):
    (tmp_path / "fake_boom.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = make_registry(("broken-dist", "losses", "boom", "fake_boom:loss"),
                        ("good-dist", "losses", "alpha", "fake_good:loss"))
    with pytest.raises(PluginLoadError) as err:
        reg.load("losses", "boom")
    message = str(err.value)
    assert "broken-dist" in message and "fake_boom:loss" in message and "needs libfoo" in message
    assert reg.load("losses", "alpha") is GoodLoss


def test_non_callable_object_is_a_load_error(fake_modules):
    reg = make_registry(("d", "losses", "odd", "fake_good:not_callable"))
    with pytest.raises(PluginLoadError, match="not a factory"):
        reg.load("losses", "odd")


def test_create_converts_option_strings_to_default_types(fake_modules):
    reg = make_registry(("d", "losses", "alpha", "fake_good:loss"))
    obj = reg.create("losses", "alpha", {"scale": "0.5", "steps": "7", "flag": "yes", "betas": "0,0.99",
                                         "mode": "b"})
    assert (obj.scale, obj.steps, obj.flag, obj.betas, obj.mode) == (0.5, 7, True, (0.0, 0.99), "b")
    assert reg.options("losses", "alpha")["scale"] == 1.0


def test_unknown_option_lists_the_schema():
    with pytest.raises(UserError, match=r"has no option 'width'; its options: scale=1.0"):
        coerce_options(GoodLoss, {"width": "3"}, "loss 'alpha'")


@pytest.mark.parametrize("value,default", [("abc", 1), ("1.5x", 1.0), ("maybe", True)])
def test_bad_option_values_are_user_errors(value, default):
    with pytest.raises(UserError, match="cannot read"):
        convert_value(value, default, "opt")


def test_installed_builtins_are_found_through_entry_points():
    reg = Registry()
    names = {(i.kind, i.name): i.distribution for i in reg.find()}
    for key in [("architectures", "dcgan"), ("architectures", "mlp"), ("losses", "gan"), ("losses", "wgan"),
                ("losses", "wgan-gp"), ("datasets", "digits"), ("datasets", "folder"), ("datasets", "npz"),
                ("datasets", "toy"), ("inverters", "encoder"), ("inverters", "ali"), ("metrics", "fid"),
                ("metrics", "modes")]:
        assert names[key] == "gantools"


@pytest.mark.parametrize("error,cause", [("ValueError", "ValueError: math domain error"),
                                         ("TypeError", "TypeError: object of type 'float' has no len()")])
def test_a_bug_in_the_plugins_constructor_names_plugin_distribution_and_cause(fake_modules, error, cause):
    reg = make_registry(("buggy-dist", "losses", "buggy", "fake_good:buggy"))
    with pytest.raises(PluginLoadError) as err:
        reg.create("losses", "buggy", {"error": error})
    message = str(err.value)
    assert message == (f"loss plugin 'buggy' from distribution 'buggy-dist' (entry point fake_good:buggy) "
                       f"failed to start: {cause}")
    assert "bad option" not in message and "\n" not in message
    assert isinstance(err.value.__cause__, (ValueError, TypeError))  # the traceback stays reachable


def test_a_user_error_from_the_plugins_own_checks_is_not_a_plugin_bug(fake_modules):
    reg = make_registry(("d", "losses", "buggy", "fake_good:buggy"))
    with pytest.raises(UserError) as err:
        reg.create("losses", "buggy", {"error": "UserError"})
    assert type(err.value) is UserError and str(err.value) == "buggy loss: scale must be positive"


@pytest.mark.parametrize("options,message", [
    ({"width": "3"}, "loss 'buggy' has no option 'width'; its options: error='ValueError', scale=1.0"),
    ({"scale": "big"}, "loss 'buggy' option scale: cannot read 'big' as float"),
    ({"scale": [1.0]}, "loss 'buggy' option scale: expected float like its default 1.0, got list [1.0]"),
    ({"error": 3}, "loss 'buggy' option error: expected str like its default 'ValueError', got int 3"),
])
def test_bad_options_stay_user_errors_even_for_a_buggy_plugin(fake_modules, options, message):
    # The options are refused before the factory runs, so its bug never shows and the user is told.
    reg = make_registry(("d", "losses", "buggy", "fake_good:buggy"))
    with pytest.raises(UserError) as err:
        reg.create("losses", "buggy", options)
    assert not isinstance(err.value, PluginLoadError)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("value,default,expected", [
    (3, 1.5, 3.0), (4.0, 2, 4), ([0, 0.99], (0.5, 0.9), (0.0, 0.99)), (Path("/x/w.pth"), "", "/x/w.pth"),
    (True, False, True), ({"a": 1}, {}, {"a": 1}), ("anything", None, "anything")])
def test_lossless_option_values_are_converted_to_the_defaults_type(value, default, expected):
    converted = coerce_options(lambda opt=default: None, {"opt": value}, "x")["opt"]
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize("value,default", [(3.5, 1), (True, 1), (1, True), (5, (1.0,)), (["a"], (1.0,)),
                                           (1, "s"), (None, 1.0), ([1], {})])
def test_wrongly_typed_option_values_are_user_errors(value, default):
    with pytest.raises(UserError, match="x option opt: expected"):
        coerce_options(lambda opt=default: None, {"opt": value}, "x")


def test_a_factory_with_a_parameter_without_default_is_a_plugin_error(fake_modules):
    reg = make_registry(("path-dist", "losses", "p", "fake_good:needs_path"))
    with pytest.raises(PluginLoadError, match=r"'path-dist'.*cannot be created from options: .*path have no default"):
        reg.create("losses", "p", {"scale": "2"})
