"""Small helpers shared by the three N-Hit ``plugin.py`` files (parameter parsing, errors)."""

from __future__ import annotations

from typing import Any


def input_error(message: str, **fields: Any) -> Exception:
    """A ``hisci.errors.InputError`` (a ``ValueError`` where the core is not installed)."""
    try:
        from hisci.errors import InputError
    except ImportError:  # pure-module use without the core
        return ValueError(message)
    return InputError(message, **fields)


def as_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """Parse an integer parameter (number or numeric text) from ``extra``.

    Raises
    ------
    Exception
        An input error naming ``/extra/<name>`` when the value is not an integer
        or is below ``minimum``.
    """
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
        if number != int(number):
            raise ValueError
        number = int(number)
    except (TypeError, ValueError, OverflowError):
        raise input_error(f"extra.{name}: {value!r} is not an integer",
                          pointer=f"/extra/{name}", given=value, allowed="an integer") from None
    if minimum is not None and number < minimum:
        raise input_error(f"extra.{name} must be >= {minimum}, got {number}",
                          pointer=f"/extra/{name}", given=value, allowed=f">= {minimum}")
    return number
