"""The trigger rule and the input stream as the N-Hit plugins read them from a request."""

from __future__ import annotations

from .glue import as_int, input_error
from .hitstream import HitStream, StreamFormatError
from .trigger import TriggerConfig


def load_config(extra: dict) -> TriggerConfig:
    """The trigger rule from ``params["extra"]``; bad values become input errors."""
    threshold = as_int(extra.get("threshold", 20), "threshold")
    if threshold <= 0:
        raise input_error(f"extra.threshold (N) must be > 0, got {threshold}",
                          pointer="/extra/threshold", given=threshold, allowed="an integer > 0")
    window = as_int(extra.get("window_ns", 400), "window_ns", minimum=1)
    mode = extra.get("trigger", "ed")
    try:
        return TriggerConfig(threshold, window, mode)
    except ValueError as exc:
        raise input_error(str(exc), pointer="/extra/trigger", given=mode,
                          allowed=["ed", "ed+md"]) from None


def open_stream(path) -> HitStream:
    """Open a ``.hits`` file; format problems become input errors naming the file."""
    try:
        return HitStream(path)
    except StreamFormatError as exc:
        raise input_error(str(exc), file=str(path), pointer=f"byte {exc.offset}",
                          hint="give a .hits stream written by nhit_simulate (nhit.md 4.2)"
                          ) from None
