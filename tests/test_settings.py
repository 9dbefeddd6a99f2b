"""The settings table: one row per setting feeds defaults, validation, the CLI and the resume rule."""
from __future__ import annotations

import click
import pytest

from gantools import settings
from gantools.cli import cli
from gantools.errors import UserError


def test_every_row_is_complete_and_named_once():
    names = [s.name for s in settings.SETTINGS]
    assert len(names) == len(set(names)) and names == list(settings.BY_NAME)
    for s in settings.SETTINGS:
        assert s.help and s.kind in (settings.INT, settings.FLOAT, settings.STR, settings.BOOL, settings.CHOICE,
                                     settings.OPTIONS, settings.NAMES, settings.PAIR)
        assert (s.kind == settings.CHOICE) == bool(s.choices)
        if s.default is not None:  # each default passes its own row's conversion and check
            value = settings.convert(s, s.default)
            assert s.check is None or s.check(value) is None, s.name
    assert settings.validate(settings.defaults())["betas"] == [0.5, 0.999]  # JSON-safe


def test_defaults_are_fresh_copies():
    a = settings.defaults()
    a["arch_opts"]["width"] = 3
    a["eval_metrics"].append("fid")
    assert settings.defaults()["arch_opts"] == {} and settings.defaults()["eval_metrics"] == []


@pytest.mark.parametrize("key,value,converted", [
    ("steps", "12", 12), ("lr", "1e-3", 1e-3), ("channels_last", "off", False), ("betas", "0.1,0.2", [0.1, 0.2]),
    ("eval_metrics", "fid, kid", ["fid", "kid"]), ("prior", "uniform", "uniform"), ("image_size", None, None),
])
def test_command_line_strings_are_converted(key, value, converted):
    assert settings.validate({**settings.defaults(), key: value})[key] == converted


@pytest.mark.parametrize("key,value,message", [
    ("steps", 0, "steps must be at least 1"), ("steps", 2.5, "whole number"), ("lr", -1.0, "lr must be positive"),
    ("prior", "cauchy", "prior must be one of normal, uniform"), ("channels", 2, "channels must be 1 or 3"),
    ("ema", 1.0, r"ema must be in \[0, 1\)"), ("betas", "0.5", "betas must be two numbers"),
    ("device", "tpu", "device must be auto, cpu or cuda"), ("channels_last", "maybe", "channels_last"),
    ("arch_opts", "width=3", "arch_opts must be a table"), ("batch_size", None, "batch_size needs a value"),
    ("eval_n", True, "eval_n must be a number"),
])
def test_bad_values_name_the_setting(key, value, message):
    with pytest.raises(UserError, match=message):
        settings.validate({**settings.defaults(), key: value})


def test_unknown_keys_are_refused():
    with pytest.raises(UserError, match="unknown setting"):
        settings.validate({**settings.defaults(), "learning_rate": 1})


def test_the_run_command_has_one_option_per_row():
    run = cli.commands["run"]
    params = {p.name: p for p in run.params}
    for s in settings.SETTINGS:
        assert s.name in params, s.name
        option = params[s.name]
        assert isinstance(option, click.Option) and option.help == s.help
        if s.kind == settings.OPTIONS:
            assert option.multiple and option.opts == ["--" + s.name[:-5].replace("_", "-") + "-opt"]
        else:
            assert s.flag in option.opts
        if s.kind == settings.CHOICE:
            assert tuple(option.type.choices) == s.choices


def test_resumable_rows_are_the_resume_rule(tmp_path, tiny_settings):
    import gantools

    assert set(settings.resumable()) >= {"steps", "device", "log_every"} and "lr" not in settings.resumable()
    gantools.train(out=tmp_path / "r", **{**tiny_settings, "steps": 2})
    more = gantools.train(out=tmp_path / "r", resume=True, steps=3, log_every=1)  # both resumable
    assert more.step == 3
    with pytest.raises(UserError, match="only steps"):
        gantools.train(out=tmp_path / "r", resume=True, z_dim=9)


def test_a_new_row_is_a_new_setting_everywhere(monkeypatch):
    """Adding a setting is one row: the defaults, validation and the resume rule pick it up."""
    row = settings.Setting("warmup", 0, settings.INT, "warm-up steps", check=settings.at_least(0), resumable=True)
    monkeypatch.setattr(settings, "SETTINGS", (*settings.SETTINGS, row))
    monkeypatch.setitem(settings.BY_NAME, "warmup", row)
    assert settings.defaults()["warmup"] == 0 and "warmup" in settings.resumable()
    assert settings.validate({**settings.defaults(), "warmup": "7"})["warmup"] == 7
    with pytest.raises(UserError, match="warmup must be at least 0"):
        settings.validate({**settings.defaults(), "warmup": -1})
