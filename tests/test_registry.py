"""Registry: find reads metadata only; load imports one plugin and names the culprit on failure."""
from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import pytest

from gantools.errors import PluginLoadError, UserError
from gantools.registry import Registry, coerce_options, convert_value


class GoodLoss:
    defaults = {"n_critic": 1}

    def __init__(self, scale: float = 1.0, steps: int = 3, flag: bool = False, betas: tuple = (0.5, 0.9),
                 mode: str = "a"):
        self.scale, self.steps, self.flag, self.betas, self.mode = scale, steps, flag, betas, mode


@pytest.fixture
def fake_modules(monkeypatch):
    """Importable modules for the fake entry points; `boom` fails at import time."""
    good = types.ModuleType("fake_good")
    good.loss = GoodLoss
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
                ("datasets", "toy")]:
        assert names[key] == "gantools"
