"""The run record (job.json) and Hiplot's task.status.json, written by the runner."""

from __future__ import annotations

import platform
import socket
import sys
import uuid
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from .jobs.record import JobState, now
from .storage import sha256, write_json

RECORD_VERSION = 1
RECORDED_PACKAGES = ("hisci", "numpy", "scipy", "h5py", "plotly", "pyFAI", "ducc0", "numba", "cupy")


# Hiplot's step codes: 0 pending, 1 running, 2 done, 3 error.
HIPLOT_STEPS = ("read-params", "read-data", "core-steps", "done")
HIPLOT_LABELS = ("en:Read parameters;zh_cn:读取参数", "en:Read data;zh_cn:读取数据",
                 "en:Run;zh_cn:运行", "en:Done;zh_cn:完成")


def new_job_id() -> str:
    return uuid.uuid4().hex[:16]


@lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return tuple(versions.items())


def package_versions() -> dict[str, str]:
    """Versions of Python and the main packages (looked up once per process)."""
    return dict(_versions())


def describe_inputs(inputs: dict[str, list[Path]]) -> list[dict[str, Any]]:
    described = []
    for name, paths in inputs.items():
        for path in paths:
            entry: dict[str, Any] = {"name": name, "path": str(path)}
            if path.is_file():
                entry.update(size=path.stat().st_size, sha256=sha256(path))
            described.append(entry)
    return described


def new_record(plugin: Any, params: dict[str, Any], inputs: dict[str, list[Path]],
               job_id: str | None = None, owner: str | None = None) -> dict[str, Any]:
    return {
        "record_version": RECORD_VERSION,
        "id": job_id or new_job_id(),
        "plugin": {"id": plugin.id, "version": plugin.version, "source": plugin.source},
        "params": params,
        "inputs": describe_inputs(inputs),
        "owner": owner,
        "status": JobState.QUEUED.value,
        "reason": None,
        "progress": 0.0,
        "message": "",
        "host": socket.gethostname(),
        "argv": sys.argv[:1],
        "packages": package_versions(),
        "created": now(),
        "started": None,
        "finished": None,
        "figures": [],
        "outputs": [],
    }


def write_task_status(folder: Path, step: int, failed: bool = False) -> None:
    """Hiplot's task.status.json: one status code per step."""
    codes = [2 if i < step else (3 if failed else 1) if i == step else 0
             for i in range(len(HIPLOT_STEPS))]
    if step >= len(HIPLOT_STEPS):
        codes = [2] * len(HIPLOT_STEPS)
    write_json(folder / "task.status.json",
               {"id": list(HIPLOT_STEPS), "label": list(HIPLOT_LABELS), "status": codes})
