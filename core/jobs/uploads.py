"""Uploaded files, stored by content hash, with ownership kept outside the content folders.

::

    uploads/<sha256>/<safe file name>     the bytes (one file per folder)
    uploads/.owners/<sha256>.json         the ids of the users who uploaded them

A file name is reduced to a safe base name (no folders, no control characters, at most
``NAME_MAX`` characters, ``upload.bin`` when nothing is left), so no upload can overwrite
the ownership record or leave its folder; a refused or interrupted upload leaves no file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import HisciError, InputError
from ..storage import read_json, write_json

UPLOAD_ID = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20
NAME_MAX = 128
DEFAULT_NAME = "upload.bin"


class UploadTooLarge(HisciError):
    code = "too_large"


def safe_upload_name(filename: str | None) -> str:
    """The base name an upload is stored under.

    Raises
    ------
    InputError
        The name holds control characters (NUL, newline, ...).
    """
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InputError(f"file name {name!r} contains control characters", pointer="/file", given=name,
                         hint="rename the file (letters, digits, '.', '-', '_')")
    if name in ("", ".", ".."):
        return DEFAULT_NAME
    if len(name) > NAME_MAX:
        stem, dot, suffix = name.rpartition(".")
        suffix = f".{suffix}" if dot and stem and len(suffix) < 16 else ""
        name = name[: NAME_MAX - len(suffix)] + suffix
    return name


@dataclass(frozen=True)
class UploadStore:
    """Uploaded files stored by content hash: ``uploads/<sha256>/<file name>``."""

    root: Path
    limit_bytes: int

    @property
    def uploads_dir(self) -> Path:
        return self.root / "uploads"

    @property
    def owners_dir(self) -> Path:
        return self.uploads_dir / ".owners"

    def _owners(self, upload_id: str) -> set[str]:
        path = self.owners_dir / f"{upload_id}.json"
        try:
            return set(read_json(path)) if UPLOAD_ID.match(upload_id) else set()
        except (OSError, ValueError):
            return set()

    def save(self, owner: str, filename: str, stream: BinaryIO) -> dict[str, Any]:
        """Stream to a temp file while hashing; over the limit, delete it and refuse.

        ``owner`` is the user's id. Returns ``{"id", "name", "size", "sha256"}``.
        """
        name = safe_upload_name(filename)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(dir=self.uploads_dir, prefix=".partial-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                while block := stream.read(CHUNK):
                    size += len(block)
                    if size > self.limit_bytes:
                        raise UploadTooLarge(
                            f"upload '{name}' is larger than the limit of {self.limit_bytes} bytes",
                            given=size, allowed=self.limit_bytes,
                            hint="raise HISCI_UPLOAD_LIMIT_MB on the server or split the data")
                    digest.update(block)
                    fh.write(block)
            upload_id = digest.hexdigest()
            folder = self.uploads_dir / upload_id
            folder.mkdir(exist_ok=True)
            existing = [p for p in folder.iterdir() if p.is_file()]
            if existing:
                name = existing[0].name
            else:
                tmp.replace(folder / name)
            write_json(self.owners_dir / f"{upload_id}.json", sorted(self._owners(upload_id) | {owner}))
        finally:
            tmp.unlink(missing_ok=True)
        return {"id": upload_id, "name": name, "size": size, "sha256": upload_id}

    def owns(self, owner: str, upload_id: str) -> bool:
        """True when user id ``owner`` uploaded ``upload_id``."""
        return owner in self._owners(upload_id)

    def path(self, owner: str, upload_id: str, admin: bool = False) -> Path:
        """The stored file of an upload this user made (others' uploads are not found)."""
        folder = self.uploads_dir / upload_id if UPLOAD_ID.match(upload_id or "") else None
        files = [p for p in folder.iterdir() if p.is_file()] if folder and folder.is_dir() else []
        if not files or not (admin or self.owns(owner, upload_id)):
            raise InputError(f"upload '{upload_id}' not found", given=upload_id,
                             hint="upload the file first (POST /api/v1/uploads)")
        return files[0]
