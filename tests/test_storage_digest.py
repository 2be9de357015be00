"""storage.sha256: reused within a process only while the file is unchanged."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hisci.storage import sha256


def test_digest_is_reused_but_follows_every_change(tmp_path: Path) -> None:
    path = tmp_path / "input.bin"
    path.write_bytes(b"a" * 3_000_000)
    assert sha256(path) == hashlib.sha256(b"a" * 3_000_000).hexdigest()
    assert sha256(path) == hashlib.sha256(b"a" * 3_000_000).hexdigest()
    # same size, same mtime restored: ctime and the content change are still seen
    st = os.stat(path)
    path.write_bytes(b"b" * 3_000_000)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sha256(path) == hashlib.sha256(b"b" * 3_000_000).hexdigest()
    path.write_bytes(b"c")
    assert sha256(path) == hashlib.sha256(b"c").hexdigest()
