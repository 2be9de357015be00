"""A disk spool for messages that arrive faster than they are processed."""

from __future__ import annotations

import os
import struct
from collections import deque
from pathlib import Path

_LEN = struct.Struct("<Q")


class Spool:
    """Length-prefixed messages appended to one file and read back in order.

    The file is truncated whenever the reader catches up, so it only holds the backlog.
    ``limit`` bounds the file size in bytes; ``put`` returns False when a message does not fit
    (the caller counts it as dropped).
    """

    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit = Path(path), int(limit)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._write = 0
        self._read = 0
        self.count = 0
        self.times: deque[float] = deque()

    def __len__(self) -> int:
        return self.count

    @property
    def bytes(self) -> int:
        return self._write - self._read

    def put(self, message, arrived: float) -> bool:
        size = len(message)
        if self._write + _LEN.size + size > self.limit:
            return False
        os.pwrite(self._fd, _LEN.pack(size), self._write)
        os.pwrite(self._fd, message, self._write + _LEN.size)
        self._write += _LEN.size + size
        self.count += 1
        self.times.append(arrived)
        return True

    def get(self) -> tuple[bytes, float] | None:
        if self.count == 0:
            return None
        (size,) = _LEN.unpack(os.pread(self._fd, _LEN.size, self._read))
        data = os.pread(self._fd, size, self._read + _LEN.size)
        self._read += _LEN.size + size
        self.count -= 1
        arrived = self.times.popleft()
        if self.count == 0:
            os.ftruncate(self._fd, 0)
            self._write = self._read = 0
        return data, arrived

    def close(self) -> None:
        os.close(self._fd)
        self.path.unlink(missing_ok=True)
