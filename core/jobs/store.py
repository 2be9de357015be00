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

    @property
    def deleting_dir(self) -> Path:
        """Tombstones of deleted jobs whose folder waits for the job to stop (then purged)."""
        return self.root / "deleting"

    def mark_deleted(self, job_id: str) -> None:
        """From now on the job is "not found" to every reader, whatever a running job writes."""
        self.folder(job_id)
        self.deleting_dir.mkdir(parents=True, exist_ok=True)
        (self.deleting_dir / job_id).touch()

    def is_deleted(self, job_id: str) -> bool:
        return (self.deleting_dir / job_id).exists()

    def deleted_pending(self) -> list[str]:
        """Deleted jobs whose folder is not yet purged (they were running when deleted)."""
        if not self.deleting_dir.is_dir():
            return []
        return sorted(p.name for p in self.deleting_dir.iterdir() if JOB_ID.match(p.name))

    def purge(self, job_id: str) -> None:
        """Remove a deleted job's folder, then its tombstone (call once the job has stopped)."""
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
        (self.deleting_dir / job_id).unlink(missing_ok=True)

    def read(self, job_id: str) -> dict[str, Any]:
        path = self.folder(job_id) / "job.json"
        if self.is_deleted(job_id):
            raise JobNotFound(f"job '{job_id}' not found", given=job_id)
        try:
            return read_json(path)
        except (FileNotFoundError, json.JSONDecodeError):
            raise JobNotFound(f"job '{job_id}' not found", given=job_id) from None

    def write(self, record: dict[str, Any]) -> None:
        """Only JobBook calls this (after the index row); every other writer goes through it."""
        write_json(self.folder(record["id"]) / "job.json", record)

    def all(self) -> Iterator[dict[str, Any]]:
        if not self.jobs_dir.is_dir():
            return
        deleting = set(self.deleted_pending())
        for folder in self.jobs_dir.iterdir():
            if folder.name in deleting:
                continue
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
