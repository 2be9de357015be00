"""Registry: the immutable set of valid plugins, plus the problems of the rejected ones."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .discovery import Candidate, candidates
from .errors import DuplicatePluginError, HisciError, Problem, UnknownPluginError, did_you_mean
from .plugin import Plugin, load_plugin
from .registry_cache import RegistryCache, fingerprint
from .settings import Settings

log = logging.getLogger("hisci.registry")


@dataclass(frozen=True)
class RejectedPlugin:
    """A folder that was found but left out, with why."""

    id: str
    folder: str
    source: str
    error: HisciError

    @property
    def problems(self) -> list[Problem]:
        return self.error.problems

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "folder": self.folder, "source": self.source,
                "message": self.error.message, "problems": [p.as_dict() for p in self.problems]}


@dataclass(frozen=True)
class Registry:
    """All valid plugins by id. Build it with :meth:`discover` or :meth:`from_candidates`."""

    plugins: dict[str, Plugin] = field(default_factory=dict)
    problems: tuple[RejectedPlugin, ...] = ()

    @classmethod
    def discover(cls, settings: Settings | None = None) -> Registry:
        """Built-in plugins, folders on ``HISCI_PLUGIN_PATH``, then ``hisci.plugins`` entry points.

        An invalid plugin goes into ``problems`` and never breaks the others; on duplicate
        ids the first one found wins and the second is reported.
        """
        settings = settings or Settings.from_env()
        cache = RegistryCache.open(settings.cache_dir)
        registry = cls.from_candidates(candidates(settings), trace=settings.trace, cache=cache)
        cache.save()
        return registry

    @classmethod
    def from_candidates(cls, found: Any, trace: bool = False, cache: RegistryCache | None = None) -> Registry:
        """Load every candidate folder; with a cache, only folders whose files changed are validated."""
        plugins: dict[str, Plugin] = {}
        rejected: list[RejectedPlugin] = []
        cache = cache or RegistryCache(None)
        for cand in found:
            rejected += _add(plugins, cand, cache)
            if trace:
                log.warning("discovery: %s from %s (%s)", cand.folder.name, cand.folder, cand.source)
        rejected += _check_workflows(plugins, rejected)
        return cls(plugins, tuple(rejected))

    @property
    def warnings(self) -> list[Problem]:
        """Quirks Hiplot tolerates, in the plugins that loaded (each names its file)."""
        return [w for plugin in self for w in plugin.warnings]

    def get(self, plugin_id: str) -> Plugin:
        try:
            return self.plugins[plugin_id]
        except KeyError:
            rejected = next((r for r in self.problems if r.id == plugin_id), None)
            if rejected is not None:
                raise UnknownPluginError(
                    f"plugin '{plugin_id}' was found but is invalid: {rejected.error}", file=rejected.folder,
                    given=plugin_id, hint="fix the problems listed for its folder") from None
            raise UnknownPluginError(
                f"unknown plugin id '{plugin_id}'{did_you_mean(plugin_id, self.plugins)}",
                given=plugin_id, allowed=sorted(self.plugins),
                hint="use one of the registered plugin ids (allowed)") from None

    def find_tool(self, tool: str, module: str | None = None) -> Plugin:
        """Address a plugin the Hiplot way (``-t tool [-m module]``); the id also works."""
        for plugin in self:
            if plugin.data.tool == tool and (module is None or plugin.data.module_name == module):
                return plugin
        return self.get(tool)

    def __iter__(self) -> Iterator[Plugin]:
        return iter(self.plugins.values())

    def __len__(self) -> int:
        return len(self.plugins)

    def __contains__(self, plugin_id: object) -> bool:
        return plugin_id in self.plugins

    def search(self, text: str = "", tag: str | None = None) -> list[Plugin]:
        text = text.lower()
        out = []
        for p in self:
            haystack = " ".join([p.id, p.meta.title("en"), p.meta.title("zh_cn"),
                                 p.meta.description("en"), " ".join(p.meta.tag)]).lower()
            if text in haystack and (tag is None or tag in p.meta.tag):
                out.append(p)
        return out

    def as_json(self, lang: str = "en") -> dict[str, Any]:
        return {"plugins": [p.summary(lang) for p in self],
                "problems": [r.as_dict() for r in self.problems]}


def _add(plugins: dict[str, Plugin], cand: Candidate, cache: RegistryCache) -> list[RejectedPlugin]:
    plugin_id = cand.folder.name
    if plugin_id in plugins:
        first = plugins[plugin_id]
        err = DuplicatePluginError(
            f"duplicate plugin id '{plugin_id}': {cand.folder} ({cand.source}) is ignored; "
            f"{first.folder} ({first.source}) was found first",
            file=str(cand.folder), given=plugin_id, hint="rename one of the folders")
        return [RejectedPlugin(plugin_id, str(cand.folder), cand.source, err)]
    print_ = fingerprint(cand.folder)
    plugin = cache.get(cand, print_)
    if plugin is None:
        try:
            plugin = load_plugin(cand.folder, cand.source, cand.package)
        except HisciError as err:
            return [RejectedPlugin(plugin_id, str(cand.folder), cand.source, err)]
        cache.put(cand, print_, plugin)
    plugins[plugin_id] = plugin
    return []


def _check_workflows(plugins: dict[str, Plugin], rejected: list[RejectedPlugin]) -> list[RejectedPlugin]:
    """Leave out workflows whose graph is unsound (repeat: one may use another)."""
    from .errors import PluginLoadError
    from .workflow.graph import check

    out: list[RejectedPlugin] = []
    changed = True
    while changed:
        changed = False
        view = Registry(plugins, tuple(rejected + out))
        for plugin in [p for p in plugins.values() if p.is_workflow]:
            problems = check(plugin, view)
            if problems:
                err = PluginLoadError(problems, plugin_id=plugin.id,
                                      summary=f"workflow '{plugin.id}' is invalid")
                out.append(RejectedPlugin(plugin.id, str(plugin.folder), plugin.source, err))
                del plugins[plugin.id]
                changed = True
                break
    return out
