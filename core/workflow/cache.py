"""Step cache: a succeeded step is reused when plugin, version, params and inputs match.

The key is the sha256 of the plugin id and version, the step's validated params (without
the input links) and the sha256 of every input file. The index is one small JSON file per
key under ``<root>/<owner>/``, naming the folder of the step that succeeded; a hit is used
only while that folder still holds a succeeded ``job.json`` of the same key.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..storage import read_json, sha256, write_json

SKIP_FILES = ("job.json", "log.txt", "task.status.json")


def step_key(plugin_id: str, version: str, params: dict[str, Any],
             inputs: dict[str, list[Path]]) -> str:
    """The cache key of one step run (see the module docstring)."""
    request = {k: v for k, v in params.items() if k != "data"}
    digests = {name: [sha256(Path(p)) for p in paths] for name, paths in sorted(inputs.items())}
    text = json.dumps({"plugin": plugin_id, "version": version, "params": request,
                       "inputs": digests}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class StepCache:
    """The index of succeeded steps, per owner, under ``root``."""

    root: Path

    def _entry(self, owner: str, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in owner or "local")
        return Path(self.root) / safe / f"{key}.json"

    def lookup(self, owner: str, key: str) -> dict[str, Any] | None:
        """The record of a succeeded step with this key, or None."""
        path = self._entry(owner, key)
        if not path.is_file():
            return None
        try:
            entry = read_json(path)
            record = read_json(Path(entry["folder"]) / "job.json")
        except (OSError, ValueError, KeyError):
            return None
        if record.get("status") != "succeeded" or record.get("cache_key") != key:
            return None
        return {"folder": entry["folder"], "record": record}

    def remember(self, owner: str, key: str, folder: Path, job_id: str) -> None:
        write_json(self._entry(owner, key), {"folder": str(Path(folder).resolve()), "job": job_id})


def link_outputs(source: Path, target: Path) -> list[str]:
    """Hard-link (or copy, across file systems) every result file of ``source`` into ``target``."""
    linked = []
    for path in sorted(Path(source).rglob("*")):
        rel = path.relative_to(source)
        if not path.is_file() or str(rel) in SKIP_FILES:
            continue
        dest = Path(target) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            dest.unlink()
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)
        linked.append(str(rel))
    return linked
