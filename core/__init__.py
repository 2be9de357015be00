"""hisci: a declarative plugin-registry service for facility science.

Public API::

    from hisci import Registry, Settings, run_plugin, RunContext
    registry = Registry.discover()
    result = run_plugin(registry.get("table_plot"), example=True, output_dir="out")
"""

from .context import RunContext
from .errors import (
    HisciError,
    InputError,
    JobCancelled,
    ParamsError,
    PluginLoadError,
    Problem,
    UnknownPluginError,
    ValidationError,
)
from .plugin import Plugin, load_plugin
from .registry import Registry
from .runner import RunResult, run_plugin
from .settings import Settings

__version__ = "0.1.0"

__all__ = [
    "HisciError",
    "InputError",
    "JobCancelled",
    "ParamsError",
    "Plugin",
    "PluginLoadError",
    "Problem",
    "Registry",
    "RunContext",
    "RunResult",
    "Settings",
    "UnknownPluginError",
    "ValidationError",
    "load_plugin",
    "run_plugin",
]
