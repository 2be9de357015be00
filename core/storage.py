"""Files on disk: checksums, atomic JSON writes, safe joins inside a folder."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: Digests this process has computed, keyed by the file's identity and stat (device, inode,
#: size, mtime_ns, ctime_ns): a GB-sized input that several runs of one process read (a
#: benchmark, a notebook) is hashed once; any change to the file changes the key.
_DIGESTS: dict[tuple, str] = {}


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file (hex); reused within a process while the file's stat is unchanged."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key in _DIGESTS:
        return _DIGESTS[key]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def write_json(path: Path, document: Any) -> None:
    """Write JSON atomically (temp file + rename), so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=2, default=_jsonable, ensure_ascii=False)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text("utf-8"))


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative`` if it stays inside root (no ``..``, absolute paths or symlink escapes)."""
    if "\x00" in relative:
        raise PermissionError("a path must not contain a NUL character")
    root = Path(root).resolve()
    candidate = (root / relative).resolve()
    if Path(relative).is_absolute() or (candidate != root and root not in candidate.parents):
        raise PermissionError(f"path {relative!r} leaves {root}")
    return candidate


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
