"""A cache of validated plugin folders, so discovery validates only what changed.

Checking a folder (three JSON Schemas, the expressions, the derived parameter schema and its
exampleData) costs milliseconds; a community registry has thousands of folders and every
worker start, reload and ``hicli list`` discovers them. The cache keeps each valid folder's
meta.json and warnings, keyed by the folder, its source, and the size and mtime of its three
JSON files and its Python modules; a hit is a :class:`~.plugin.CachedPlugin`, which reads
data.json and ui.json again only when a caller needs them (and derives its parameter schema
only then). One pickle
file per cache directory; it is rewritten atomically when something changed, and ignored
(rebuilt) when hisci's own validation code or schemas changed.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .discovery import Candidate
from .errors import Problem
from .plugin import JSON_FILES, CachedPlugin, Plugin
from .workflow.model import WORKFLOW_FILE

log = logging.getLogger("hisci.registry")

FORMAT = 1
FILE_NAME = f"registry-v{FORMAT}.pickle"

Fingerprint = tuple[Any, ...]


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def fingerprint(folder: Path) -> Fingerprint:
    """Size and mtime of meta.json, data.json, ui.json, workflow.json and every top-level .py."""
    files = [(name, _stat(folder / name)) for name in (*JSON_FILES, WORKFLOW_FILE)]
    try:
        code = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder)
                      if e.name.endswith(".py") and e.is_file())
    except OSError:
        code = []
    return tuple(files), tuple(code)


@cache
def code_version() -> Fingerprint:
    """What a cached validation depends on in hisci itself: its version, schemas and core code."""
    from . import __version__

    root = Path(__file__).parent
    schemas = Path(str(resources.files("hisci.schemas")))
    files = sorted([*root.glob("*.py"), *root.glob("models/*.py"), *schemas.glob("*.json")])
    return __version__, FORMAT, tuple((p.name, _stat(p)) for p in files)


@dataclass
class RegistryCache:
    """Validated plugins by (folder, source, package), with the fingerprint they had."""

    path: Path | None
    entries: dict[tuple[str, str, str | None], tuple[Fingerprint, dict[str, Any], tuple[Problem, ...]]] = field(
        default_factory=dict)
    changed: bool = False
    hits: int = 0
    misses: int = 0

    @classmethod
    def open(cls, directory: Path | None) -> RegistryCache:
        """The cache in ``directory`` (an empty one if missing, stale or unreadable; None: off)."""
        if directory is None:
            return cls(None)
        path = Path(directory) / FILE_NAME
        try:
            with open(path, "rb") as fh:
                version, entries = pickle.load(fh)
        except FileNotFoundError:
            return cls(path)
        except Exception as exc:  # noqa: BLE001 - a corrupt or foreign cache is rebuilt, never fatal
            log.warning("registry cache %s unreadable (%s); rebuilding it", path, exc)
            return cls(path, changed=True)
        if version != code_version():
            return cls(path, changed=True)
        return cls(path, entries)

    def get(self, cand: Candidate, print_: Fingerprint) -> Plugin | None:
        """The cached plugin of this folder if its files are unchanged, else None."""
        entry = self.entries.get((str(cand.folder), cand.source, cand.package))
        if entry is not None and entry[0] == print_:
            self.hits += 1
            return CachedPlugin.restore(cand.folder, cand.source, cand.package, entry[1], entry[2])
        self.misses += 1
        return None

    def put(self, cand: Candidate, print_: Fingerprint, plugin: Plugin) -> None:
        if self.path is None:
            return
        self.entries[(str(cand.folder), cand.source, cand.package)] = (
            print_, plugin.raw["meta.json"], tuple(plugin.warnings))
        self.changed = True

    def save(self) -> None:
        """Write the cache if it changed, forgetting folders that no longer exist."""
        if self.path is None or not self.changed:
            return
        for key in [k for k in self.entries if not os.path.isdir(k[0])]:
            del self.entries[key]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".registry.", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump((code_version(), self.entries), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
            self.changed = False
        except OSError as exc:  # a read-only home still discovers, just without the cache
            log.warning("registry cache %s not written: %s", self.path, exc)
