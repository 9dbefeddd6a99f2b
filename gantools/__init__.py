"""gantools: a plugin-based GAN toolkit for PyTorch."""
from gantools import registry
from gantools.api import Run, load_run, train
from gantools.errors import PluginLoadError, UserError
from gantools.export import load_generator

__version__ = "0.1.0"


def __getattr__(name: str):
    # ops and nn import on first use, so `import gantools` stays light.
    if name in ("ops", "nn"):
        import importlib
        return importlib.import_module(f"gantools.{name}")
    raise AttributeError(f"module 'gantools' has no attribute {name!r}")


__all__ = ["PluginLoadError", "Run", "UserError", "load_generator", "load_run", "registry", "train",
           "__version__"]
