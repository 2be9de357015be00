"""The trigger rule and the input stream as the N-Hit plugins read them from a request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hisci import InputError, RunContext

from .hitstream import HitStream, StreamFormatError
from .trigger import TriggerConfig


def whole_number(value: Any, minimum: int = 0) -> int:
    """An integer >= ``minimum`` typed into a text field (``7`` or ``"7"``).

    Raises
    ------
    ValueError
        Not a whole number, or below ``minimum``.
    """
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise ValueError(f"{value!r} is not a whole number")
    number = int(text)
    if number < minimum:
        raise ValueError(f"must be >= {minimum}, got {number}")
    return number


def load_config(ctx: RunContext, threshold: int | None = None) -> TriggerConfig:
    """The trigger rule of the request (``threshold`` overrides the request's N)."""
    extra = ctx.params["extra"]
    n = extra["threshold"] if threshold is None else threshold
    with ctx.field("threshold"):
        if n <= 0:
            raise ValueError(f"the threshold N must be > 0, got {n}")
    with ctx.field("trigger"):
        return TriggerConfig(n, extra["window_ns"], extra["trigger"])


def open_stream(path: Path) -> HitStream:
    """Open a ``.hits`` file; format problems become input errors naming the file."""
    try:
        return HitStream(path)
    except StreamFormatError as exc:
        raise InputError(str(exc), file=str(path), pointer=f"byte {exc.offset}",
                         hint="give a .hits stream written by nhit_simulate (nhit.md 4.2)") from None
