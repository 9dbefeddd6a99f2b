"""What several commands share: click context settings, KEY=VALUE pairs, the run and inverter options."""
from __future__ import annotations

import click

from gantools.errors import UserError

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True}


def parse_pairs(pairs: tuple[str, ...], flag: str) -> dict[str, str]:
    """('width=32', 'norm=layer') -> {'width': '32', 'norm': 'layer'}."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def options_flag(name: str) -> str:
    """The flag of a plugin-options setting: 'arch_opts' -> '--arch-opt'."""
    return "--" + name[:-len("_opts")].replace("_", "-") + "-opt"


def setting_option(setting):
    """The click option of one row of gantools.settings.SETTINGS (default None: unset flags are not passed)."""
    from gantools import settings as st

    shown = setting.shown or (str(setting.default) if setting.default not in (None, [], {}) else False)
    if setting.kind == st.OPTIONS:  # arch_opts -> --arch-opt K=V, repeatable
        return click.option(options_flag(setting.name), setting.name, multiple=True, metavar="K=V",
                            help=setting.help)
    kinds = {st.INT: int, st.FLOAT: float, st.STR: str, st.PAIR: str, st.NAMES: str}
    if setting.kind == st.BOOL:
        flag, kind = f"{setting.flag}/--no-{setting.flag[2:]}", bool
    else:
        flag = setting.flag
        kind = click.Choice(setting.choices) if setting.kind == st.CHOICE else kinds[setting.kind]
    if setting.flag_value is not None:  # --conditional alone, or --conditional acgan
        return click.option(flag, setting.name, type=kind, default=None, is_flag=False, flag_value=setting.flag_value,
                            help=setting.help, show_default=shown)
    return click.option(flag, setting.name, type=kind, default=None, help=setting.help, show_default=shown)


def run_options(func):
    """One option per row of the settings table that has a flag, in the table's order."""
    from gantools.settings import SETTINGS

    for setting in reversed(SETTINGS):
        if setting.cli:
            func = setting_option(setting)(func)
    return func


def inverter_options(func):
    """RUN_DIR, --inverter, --inverter-opt and --device: the arguments every inversion command takes."""
    func = click.option("--inverter-opt", "inverter_opt", multiple=True, metavar="KEY=VALUE",
                        help="inverter option (repeatable); see gantools list inverters")(func)
    func = click.option("--inverter", "inverter", required=True, help="inverter plugin name")(func)
    func = click.option("--device", default="cpu", help="cpu or cuda")(func)
    return click.argument("run_dir", type=click.Path())(func)


def inverter_opts(pairs: tuple[str, ...]) -> dict[str, str]:
    """--inverter-opt KEY=VALUE pairs as a dict."""
    return parse_pairs(pairs, "--inverter-opt")
