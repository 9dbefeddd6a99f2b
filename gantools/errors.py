"""Errors a user can cause: the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """Bad input from the user (flag, file, plugin name, data); never a bug in gantools."""


class PluginLoadError(UserError):
    """A plugin's entry point could not be imported or does not satisfy its contract."""
