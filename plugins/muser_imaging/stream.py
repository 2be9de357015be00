"""Stream mode: follow target.bin as frames are appended, yield complete 5-s batches."""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path

from . import frames as F
from .dataset import Batch, read_frames


def follow_batches(
    path: str | Path,
    t_ref: _dt.datetime | None,
    cadence_s: float = 5.0,
    *,
    poll_s: float = 0.05,
    idle_timeout_s: float = 10.0,
    dropped: list | None = None,
    should_stop=None,
):
    """Yield ``(batch, arrival)`` as batches complete in a growing frame file.

    A batch is complete when all 8 codes arrived or when a frame of a later batch
    arrives (the missing codes are then reported by the imaging step). ``arrival`` is
    the ``time.monotonic()`` at which the batch's last frame was read, so the caller can
    report the per-batch latency. The generator ends after ``idle_timeout_s`` seconds
    without new data (the pending batch is then yielded) or when ``should_stop()`` is
    true.

    Parameters
    ----------
    path : path
        target.bin, possibly still being written.
    t_ref : datetime or None
        Time of batch 0 (None: the first frame's time).
    cadence_s : float
        Batch cadence.
    poll_s : float
        Polling interval while waiting for data.
    idle_timeout_s : float
        Stop after this long without new complete frames.
    dropped : list, optional
        Dropped frames (broken sync) are appended here.
    should_stop : callable, optional
    """
    path = Path(path)
    offset = 0
    pending: dict[int, Batch] = {}
    last_time = None
    last_data = time.monotonic()
    while True:
        size = path.stat().st_size if path.exists() else 0
        n = (size - offset) // F.FRAME_SIZE
        if n > 0:
            report = read_frames(path, offset, offset + n * F.FRAME_SIZE)
            offset += n * F.FRAME_SIZE
            now = time.monotonic()
            last_data = now
            if dropped is not None:
                dropped.extend(report.dropped)
            for f in report.frames:
                if t_ref is None:
                    t_ref = f.time
                k = round((f.time - t_ref).total_seconds() / cadence_s)
                b = pending.setdefault(k, Batch(k))
                if last_time is not None and f.time <= last_time:
                    b.problems.append(f"frame {f.counter}: time does not increase; dropped")
                    continue
                last_time = f.time
                b.frames[f.code] = f
            newest = max(pending) if pending else None
            for k in sorted(pending):
                if len(pending[k].frames) == F.N_CODES or k < newest:
                    yield pending.pop(k), now
            continue
        if (should_stop and should_stop()) or time.monotonic() - last_data > idle_timeout_s:
            for k in sorted(pending):
                yield pending.pop(k), time.monotonic()
            return
        time.sleep(poll_s)
