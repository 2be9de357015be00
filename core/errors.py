"""One exception tree for hisci.

::

    HisciError                      base; carries file, pointer, given, allowed, hint
    ├── ValidationError             one or more Problems in a plugin's JSON or a request
    │   ├── PluginLoadError         a plugin folder is invalid (meta/data/ui/entry)
    │   └── ParamsError             a run request does not match the parameter schema
    ├── InputError                  a user-supplied input file is missing or unreadable
    ├── ConflictError               the request conflicts with a job's state (API 409)
    ├── UnknownPluginError          no plugin with that id
    ├── DuplicatePluginError        two sources provide the same id
    └── JobCancelled                the job was cancelled (raised from ctx.progress)

Front ends render these; they never parse the message. ``exit_code`` is the hicli exit code.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def did_you_mean(given: str, known: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest known name, or ``""``."""
    matches = difflib.get_close_matches(str(given), list(known), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


@dataclass
class Problem:
    """One validation problem, located by file and JSON pointer (RFC 6901)."""

    message: str
    pointer: str = ""
    file: str = ""
    given: Any = None
    allowed: Any = None
    hint: str = ""

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.pointer or ("/" if self.file else "")) if p)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text}. Hint: {self.hint}" if self.hint else text

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "pointer": self.pointer,
            "message": self.message,
            "given": self.given,
            "allowed": self.allowed,
            "hint": self.hint,
        }


class HisciError(Exception):
    """Base class of every hisci error."""

    exit_code = 1
    code = "error"

    def __init__(
        self,
        message: str,
        *,
        file: str = "",
        pointer: str = "",
        given: Any = None,
        allowed: Any = None,
        hint: str = "",
        plugin_id: str = "",
        job_id: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.pointer = pointer
        self.given = given
        self.allowed = allowed
        self.hint = hint
        self.plugin_id = plugin_id
        self.job_id = job_id

    @property
    def problems(self) -> list[Problem]:
        return [Problem(self.message, self.pointer, self.file, self.given, self.allowed, self.hint)]

    def __str__(self) -> str:
        return str(self.problems[0]) if len(self.problems) == 1 else self.message


class ValidationError(HisciError):
    """A collection of :class:`Problem` s; ``str()`` lists all of them."""

    code = "invalid"

    def __init__(self, problems: list[Problem], *, plugin_id: str = "", summary: str = "") -> None:
        self._problems = list(problems)
        head = summary or f"{len(problems)} problem(s)"
        super().__init__(head, plugin_id=plugin_id)

    @property
    def problems(self) -> list[Problem]:
        return self._problems

    def __str__(self) -> str:
        lines = [str(p) for p in self._problems]
        if len(lines) == 1:
            return lines[0]
        return "\n".join([f"{self.message}:"] + [f"  - {line}" for line in lines])


class PluginLoadError(ValidationError):
    """A plugin folder failed validation."""

    code = "invalid_plugin"


class ParamsError(ValidationError):
    """A request's parameters do not match the plugin's parameter schema."""

    code = "invalid_params"


class InputError(HisciError):
    """A user input (file, table, value) is missing or unusable."""

    code = "invalid_input"


class ConflictError(HisciError):
    """The request conflicts with the current state (retry of a job that has not ended)."""

    code = "conflict"


class UnknownPluginError(HisciError):
    code = "unknown_plugin"


class DuplicatePluginError(HisciError):
    code = "duplicate_plugin"


class JobCancelled(HisciError):
    exit_code = 3
    code = "cancelled"
