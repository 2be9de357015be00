"""The three places plugins come from. Finders yield folders; they never import plugin code."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from .settings import Settings

ENTRY_POINT_GROUP = "hisci.plugins"
log = logging.getLogger("hisci.discovery")


@dataclass(frozen=True)
class Candidate:
    """A folder that should hold a plugin, and where it was found."""

    folder: Path
    source: str
    package: str | None = None


def is_plugin_folder(folder: Path) -> bool:
    return (folder / "meta.json").is_file()


def builtin_candidates() -> Iterator[Candidate]:
    root = Path(str(resources.files("hisci.builtin_plugins")))
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and is_plugin_folder(p)):
        yield Candidate(folder, "builtin", f"hisci.builtin_plugins.{folder.name}")


def path_candidates(paths: tuple[Path, ...]) -> Iterator[Candidate]:
    """Each path is a plugin folder, or a folder of plugin folders."""
    for path in paths:
        path = Path(path).expanduser()
        if is_plugin_folder(path):
            yield Candidate(path.resolve(), "path")
        elif path.is_dir():
            for folder in sorted(p for p in path.iterdir() if p.is_dir() and is_plugin_folder(p)):
                yield Candidate(folder.resolve(), "path")
        else:
            log.warning("HISCI_PLUGIN_PATH entry %s is not a folder; skipped", path)


def entry_point_candidates() -> Iterator[Candidate]:
    """Installed distributions exposing ``hisci.plugins``: the value names a package
    whose folder is the plugin (or holds plugin folders)."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else "?"
        try:
            root = Path(str(resources.files(ep.value)))
        except (ModuleNotFoundError, TypeError) as exc:
            log.warning("entry point %s = %s (%s): cannot find package: %s", ep.name, ep.value, dist, exc)
            continue
        if is_plugin_folder(root):
            yield Candidate(root, f"entry-point:{dist}", ep.value)
        else:
            for folder in sorted(p for p in root.iterdir() if p.is_dir() and is_plugin_folder(p)):
                yield Candidate(folder, f"entry-point:{dist}", f"{ep.value}.{folder.name}")


def candidates(settings: Settings) -> Iterator[Candidate]:
    if settings.builtins:
        yield from builtin_candidates()
    yield from path_candidates(settings.plugin_path)
    if settings.entry_points:
        yield from entry_point_candidates()
