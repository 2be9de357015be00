"""A disk spool for messages that arrive faster than they are processed."""

from __future__ import annotations

import os
import struct
import threading
from collections import deque
from pathlib import Path

_LEN = struct.Struct("<Q")


class Spool:
    """Length-prefixed messages appended to one file and read back in order.

    One writer thread (``put``) and one reader thread (``get``); the disk I/O runs outside
    the lock, so a slow disk never blocks the other side. The file is truncated whenever
    the reader catches up, so it only holds the backlog. ``limit`` bounds the file size in
    bytes; ``put`` returns False when a message does not fit (the caller counts it as
    dropped).
    """

    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit = Path(path), int(limit)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._lock = threading.Lock()
        self._write = 0
        self._read = 0
        self.count = 0
        self._meta: deque[tuple[int, float]] = deque()  # (seq, arrival) per record
        self._writing = False

    def __len__(self) -> int:
        return self.count

    @property
    def bytes(self) -> int:
        return self._write - self._read

    def oldest(self) -> float | None:
        with self._lock:
            return self._meta[0][1] if self._meta else None

    def put(self, message, seq: int, arrived: float) -> bool:
        size = len(message)
        with self._lock:
            offset = self._write
            if offset + _LEN.size + size > self.limit:
                return False
            self._writing = True  # no truncation while a record is being written
        try:
            os.pwrite(self._fd, _LEN.pack(size), offset)
            os.pwrite(self._fd, message, offset + _LEN.size)
        finally:
            with self._lock:  # visible to the reader only once written
                self._write = offset + _LEN.size + size
                self.count += 1
                self._meta.append((seq, arrived))
                self._writing = False
        return True

    def get(self) -> tuple[bytes, int, float] | None:
        with self._lock:
            if self.count == 0:
                return None
            offset = self._read
        (size,) = _LEN.unpack(os.pread(self._fd, _LEN.size, offset))
        data = os.pread(self._fd, size, offset + _LEN.size)
        with self._lock:
            self._read = offset + _LEN.size + size
            self.count -= 1
            seq, arrived = self._meta.popleft()
            if self.count == 0 and not self._writing:  # caught up: start the file again
                os.ftruncate(self._fd, 0)
                self._write = self._read = 0
        return data, seq, arrived

    def close(self) -> None:
        os.close(self._fd)
        self.path.unlink(missing_ok=True)
