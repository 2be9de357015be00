"""Job folders and uploads on disk: the source of truth that survives Redis."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import HisciError, InputError
from ..storage import read_json, safe_join, write_json

JOB_ID = re.compile(r"^[0-9a-f]{16}$")
UPLOAD_ID = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


class JobNotFound(HisciError):
    """No such job for this user (others' jobs are reported the same way: 404, not 403)."""

    code = "not_found"


class UploadTooLarge(HisciError):
    code = "too_large"


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
        """Only JobBook calls this (after the index row); every other writer goes through it."""
        write_json(self.folder(record["id"]) / "job.json", record)

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


@dataclass(frozen=True)
class UploadStore:
    """Uploaded files stored by content hash: ``uploads/<sha256>/<file name>``."""

    root: Path
    limit_bytes: int

    @property
    def uploads_dir(self) -> Path:
        return self.root / "uploads"

    def save(self, owner: str, filename: str, stream: BinaryIO) -> dict[str, Any]:
        """Stream to a temp file while hashing; over the limit, delete it and refuse."""
        name = Path(filename or "upload.bin").name or "upload.bin"
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with tempfile.NamedTemporaryFile(dir=self.uploads_dir, prefix=".partial-", delete=False) as tmp:
            try:
                while block := stream.read(CHUNK):
                    size += len(block)
                    if size > self.limit_bytes:
                        raise UploadTooLarge(
                            f"upload '{name}' is larger than the limit of {self.limit_bytes} bytes",
                            given=size, allowed=self.limit_bytes,
                            hint="raise HISCI_UPLOAD_LIMIT_MB on the server or split the data")
                    digest.update(block)
                    tmp.write(block)
            except BaseException:
                tmp.close()
                Path(tmp.name).unlink(missing_ok=True)
                raise
        upload_id = digest.hexdigest()
        folder = self.uploads_dir / upload_id
        folder.mkdir(exist_ok=True)
        target = folder / name
        if target.exists():
            Path(tmp.name).unlink()
        else:
            Path(tmp.name).replace(target)
        owners_file = folder / "owners.json"
        owners = set(read_json(owners_file)) if owners_file.exists() else set()
        write_json(owners_file, sorted(owners | {owner}))
        return {"id": upload_id, "name": name, "size": size, "sha256": upload_id}

    def path(self, owner: str, upload_id: str, admin: bool = False) -> Path:
        """The stored file of an upload this user made (others' uploads are not found)."""
        folder = self.uploads_dir / upload_id
        owners_file = folder / "owners.json"
        if not UPLOAD_ID.match(upload_id) or not owners_file.exists():
            raise InputError(f"upload '{upload_id}' not found", given=upload_id,
                             hint="upload the file first (POST /api/v1/uploads)")
        if not admin and owner not in read_json(owners_file):
            raise InputError(f"upload '{upload_id}' not found", given=upload_id)
        files = [p for p in folder.iterdir() if p.name != "owners.json"]
        return files[0]
