"""Where ``ctx.publish`` goes: the job's event log file, and (in the service) its Redis stream."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

EVENTS_FILE = "live/events.jsonl"
Sink = Callable[[str, dict[str, Any]], None]


def jsonable(value: Any) -> Any:
    """numpy arrays and scalars as plain JSON values (non-finite floats become null)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return [jsonable(v) for v in value.tolist()] if value.ndim > 1 else \
                [None if not np.isfinite(v) else v for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class EventLog:
    """Appends one JSON line per event to ``<output>/live/events.jsonl`` and forwards it to an
    optional ``sink(kind, fields)`` (the service's Redis event stream).

    Lines: ``{"n": N, "type": "live"|"lag"|"live_end", "time": t, ...fields}``; ``n`` counts from 1
    so a reader can ask for events after the last one it saw (``read_events(path, after)``).
    """

    def __init__(self, output_dir: Path, sink: Sink | None = None) -> None:
        self.path = Path(output_dir) / EVENTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.n = sum(1 for _ in self.path.open("rb")) if self.path.exists() else 0
        self._fh = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self.sink = sink

    def emit(self, kind: str, **fields: Any) -> None:
        fields = jsonable(fields)
        with self._lock:
            self.n += 1
            line = {"n": self.n, "type": kind, "time": time.time(), **fields}
            self._fh.write(json.dumps(line, allow_nan=False) + "\n")
            self._fh.flush()
        if self.sink is not None:
            self.sink(kind, fields)

    def close(self) -> None:
        self._fh.close()


def read_events(path: Path, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """Events with ``n > after`` from an events.jsonl file (a torn last line is left for later)."""
    out: list[dict[str, Any]] = []
    if not Path(path).exists():
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            event = json.loads(line)
            if event["n"] > after:
                out.append(event)
                if len(out) >= limit:
                    break
    return out
