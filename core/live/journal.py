"""The write-ahead journal of a ZeroMQ source: every received message on disk before it is
processed, so a crashed run's retry replays what it had received and not finished."""

from __future__ import annotations

import os
import re
import struct
import threading
from pathlib import Path

#: Entry header: sequence number, message length, arrival time (``time.time()``).
_HEAD = struct.Struct("<QQd")
_SEGMENT = re.compile(r"^(?P<name>.+)\.(?P<n>\d{6})\.journal$")


class _Segment:
    def __init__(self, path: Path, fd: int, size: int = 0) -> None:
        self.path, self.fd, self.size = path, fd, size
        self.first = self.last = 0  # sequence numbers held (0: none yet)


class Journal:
    """Length-prefixed messages appended to numbered segment files in ``folder``.

    One writer thread (``append``) and one reader thread (``read``, ``trim``). A segment is
    deleted once every message in it is at or before the committed checkpoint (``trim``),
    so the journal holds what was received and not yet finished. ``limit`` bounds the bytes
    held; ``append`` returns None when a message does not fit (the caller counts a drop).

    Parameters
    ----------
    folder : the journal's folder (``<job>/live/spool``).
    name : the live source name (segment files ``NAME.000001.journal``).
    limit : the most bytes held on disk.
    segment_bytes : the size after which a new segment starts.
    """

    def __init__(self, folder: Path, name: str, limit: int, segment_bytes: int = 64 << 20) -> None:
        self.folder, self.name, self.limit = Path(folder), name, int(limit)
        self.segment_bytes = max(64 << 10, min(int(segment_bytes), self.limit // 8))
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._number = 0
        self.bytes = 0

    # -- recovery ------------------------------------------------------------------------------
    def recover(self, after: int) -> list[tuple[int, tuple[_Segment, int, int], float]]:
        """Entries of a previous run with a sequence number above ``after``, in order, as
        ``(seq, ref, arrived)``; segments wholly at or before ``after`` are deleted and a torn
        last entry (a crash while it was written) is cut off."""
        found = []
        for path in self.folder.iterdir():
            match = _SEGMENT.match(path.name)
            if match and match["name"] == self.name:
                found.append((int(match["n"]), path))
        entries = []
        for number, path in sorted(found):
            self._number = number
            fd = os.open(path, os.O_RDWR)
            segment, size, offset = _Segment(path, fd), os.fstat(fd).st_size, 0
            while offset + _HEAD.size <= size:
                seq, length, arrived = _HEAD.unpack(os.pread(fd, _HEAD.size, offset))
                if offset + _HEAD.size + length > size:
                    break
                segment.first = segment.first or seq
                segment.last = seq
                if seq > after:
                    entries.append((seq, (segment, offset + _HEAD.size, length), arrived))
                offset += _HEAD.size + length
            if offset < size:
                os.ftruncate(fd, offset)
            segment.size = offset
            if segment.last <= after:
                os.close(fd)
                path.unlink()
                continue
            self._segments.append(segment)
            self.bytes += segment.size
        return entries

    # -- writer side ---------------------------------------------------------------------------
    def append(self, message, seq: int, arrived: float) -> tuple[_Segment, int, int] | None:
        """Write one message; returns its reference for ``read``, or None when over the limit."""
        length = len(message)
        with self._lock:
            if self.bytes + _HEAD.size + length > self.limit:
                return None
            if not self._segments or self._segments[-1].size >= self.segment_bytes:
                self._number += 1
                path = self.folder / f"{self.name}.{self._number:06d}.journal"
                self._segments.append(_Segment(path, os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)))
            segment = self._segments[-1]
            offset = segment.size
            os.pwritev(segment.fd, [_HEAD.pack(seq, length, arrived), message], offset)
            segment.size += _HEAD.size + length
            segment.first = segment.first or seq
            segment.last = seq
            self.bytes += _HEAD.size + length
        return segment, offset + _HEAD.size, length

    # -- reader side ---------------------------------------------------------------------------
    @staticmethod
    def read(ref: tuple[_Segment, int, int]) -> bytes:
        """The message at ``ref`` (its segment is kept until the message is committed)."""
        segment, offset, length = ref
        return os.pread(segment.fd, length, offset)

    def trim(self, committed: int) -> None:
        """Delete the segments whose messages are all at or before ``committed``."""
        with self._lock:
            while self._segments and self._segments[0].last <= committed:
                segment = self._segments.pop(0)
                os.close(segment.fd)
                segment.path.unlink(missing_ok=True)
                self.bytes -= segment.size

    def close(self, committed: int) -> None:
        """Trim to ``committed`` and close; what is left is replayed by a retry."""
        self.trim(committed)
        with self._lock:
            for segment in self._segments:
                os.close(segment.fd)
            self._segments.clear()
        try:
            self.folder.rmdir()
        except OSError:
            pass
