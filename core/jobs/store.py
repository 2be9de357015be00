"""Job folders and uploads on disk: the source of truth that survives Redis."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HisciError
from ..storage import read_json, safe_join, write_json
from .uploads import UploadStore, UploadTooLarge  # noqa: F401 - re-exported (moved to uploads.py)

JOB_ID = re.compile(r"^[0-9a-f]{16}$")
UPLOAD_ID = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


class JobNotFound(HisciError):
    """No such job for this user (others' jobs are reported the same way: 404, not 403)."""

    code = "not_found"


@dataclass(frozen=True)
class JobStore:
    """``<data dir>/jobs/<id>/job.json`` plus the run's files."""

    root: Path

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    def folder(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id or ""):
            raise JobNotFound(f"job '{job_id}' not found", given=job_id)
        return self.jobs_dir / job_id

    def read(self, job_id: str) -> dict[str, Any]:
        path = self.folder(job_id) / "job.json"
        try:
            return read_json(path)
        except (FileNotFoundError, json.JSONDecodeError):
            raise JobNotFound(f"job '{job_id}' not found", given=job_id) from None

    def write(self, record: dict[str, Any]) -> None:
        write_json(self.folder(record["id"]) / "job.json", record)

    def update(self, job_id: str, **changes: Any) -> dict[str, Any]:
        record = self.read(job_id)
        record.update(changes)
        self.write(record)
        return record

    def all(self) -> Iterator[dict[str, Any]]:
        if not self.jobs_dir.is_dir():
            return
        for folder in self.jobs_dir.iterdir():
            try:
                yield read_json(folder / "job.json")
            except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
                continue

    def delete(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def file(self, job_id: str, relative: str) -> Path:
        """A file inside the job folder; anything that escapes it is "not found"."""
        folder = self.folder(job_id)
        try:
            path = safe_join(folder, relative)
        except PermissionError:
            raise JobNotFound(f"file '{relative}' not found in job {job_id}", given=relative) from None
        if not path.is_file():
            raise JobNotFound(f"file '{relative}' not found in job {job_id}", given=relative)
        return path

    def files(self, job_id: str) -> list[dict[str, Any]]:
        folder = self.folder(job_id).resolve()
        out = []
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                out.append({"path": str(path.relative_to(folder)), "size": path.stat().st_size})
        return out
