"""The one normaliser of run requests: every front end's request becomes one canonical shape.

Canonical: ``{"textarea"?, "data"?, "dataArg"?, "general"?, "extra"?}``. Accepted on the way
in, exactly one level of Hiplot wrapping:

- ``{"params": {...}}`` where ``{...}`` is canonical or the config shape below (nothing
  beside ``params``);
- ``{"config": {...}, "textarea"?: {...}}`` (Hiplot's ``params`` body).

Anything wrapped more deeply (``params.params``, ``config.config``, ``params.config.config``,
``params.config.params``) is refused with a ParamsError (422), so no
later step can unwrap a different request than the one that was checked.
``canonical_request`` is idempotent: a canonical request comes back equal.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ParamsError, Problem

SECTIONS = ("textarea", "data", "dataArg", "general", "extra")
WRAPPERS = ("params", "config")
HINT = ("send {\"extra\": ...} (canonical), {\"config\": ...} or {\"params\": {\"config\": ...}}: "
        "one level of Hiplot wrapping at most")


def _refuse(message: str, pointer: str, given: Any = None, plugin_id: str | None = None) -> ParamsError:
    return ParamsError([Problem(message, pointer=pointer, given=given, hint=HINT)], plugin_id=plugin_id,
                       summary="invalid request shape")


def canonical_request(request: Any, plugin_id: str | None = None) -> dict[str, Any]:
    """Return ``request`` in the canonical shape (a deep copy).

    Parameters
    ----------
    request
        What the client sent as the request (None means ``{}``).
    plugin_id
        Named in the error.

    Returns
    -------
    dict
        Keys among ``textarea, data, dataArg, general, extra``; other keys are left for the
        parameter schema to name.

    Raises
    ------
    ParamsError
        Not an object, more than one level of wrapping, or a wrapper with siblings.
    """
    if request is None:
        return {}
    if not isinstance(request, dict):
        raise _refuse(f"a request must be a JSON object, not {type(request).__name__}", "", plugin_id=plugin_id)
    request = copy.deepcopy(request)
    pointer = ""
    if "params" in request:
        extra = sorted(set(request) - {"params"})
        if extra:
            raise _refuse(f"'params' must be the only key of a wrapped request; also given {extra}",
                          "/params", extra, plugin_id)
        request, pointer = request["params"], "/params"
        if not isinstance(request, dict):
            raise _refuse("'params' must be an object", pointer, plugin_id=plugin_id)
    if "config" in request:
        extra = sorted(set(request) - {"config", "textarea"})
        if extra:
            raise _refuse(f"'config' may only stand beside 'textarea'; also given {extra}",
                          f"{pointer}/config", extra, plugin_id)
        config = request["config"]
        if not isinstance(config, dict):
            raise _refuse("'config' must be an object", f"{pointer}/config", plugin_id=plugin_id)
        flat = dict(config)
        if "textarea" in request:
            flat["textarea"] = request["textarea"]
        request, pointer = flat, f"{pointer}/config"
    nested = _nested_wrapper(request)
    if nested:
        raise _refuse(f"more than one level of Hiplot wrapping ('{nested[1:]}' inside a wrapped request)"
                      " is not accepted", f"{pointer}{nested}", plugin_id=plugin_id)
    return request


def _nested_wrapper(request: dict[str, Any]) -> str:
    """The pointer of a ``params``/``config`` key left after unwrapping, or ``""``."""
    for key in WRAPPERS:
        if key in request:
            return f"/{key}"
    return ""
