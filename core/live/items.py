"""One item from a live source, and the counters every source keeps."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LiveItem:
    """What ``ctx.live_items(name)`` yields.

    Attributes
    ----------
    seq : sequence number within its source, from 1, never reused (a gap means a drop).
    source : the live input name (``image``, ``hits``, ...).
    path : the file, for a folder source.
    data : the message bytes (ZeroMQ) or a dict of mapped arrays (Bluesky).
    meta : source details (start document fields, file size, ...).
    arrived : ``time.time()`` when the source saw the item complete.
    last : True for an end-of-run message; the source yields nothing after it.
    """

    seq: int
    source: str
    path: Path | None = None
    data: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    arrived: float = field(default_factory=time.time)
    last: bool = False

    def read_bytes(self) -> bytes:
        """The item's bytes: the file's content or the message."""
        if self.path is not None:
            return self.path.read_bytes()
        return bytes(self.data)


class Counters:
    """Thread-safe counters of one source (received, dropped, spooled, bytes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, int] = {"received": 0, "bytes": 0, "dropped": 0, "dropped_bytes": 0,
                                       "spooled": 0, "replayed": 0, "rejected": 0, "lost": 0}

    def add(self, **deltas: int) -> None:
        with self._lock:
            for key, value in deltas.items():
                self.values[key] = self.values.get(key, 0) + value

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)
