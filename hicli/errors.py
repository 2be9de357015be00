"""Exit codes and error rendering shared by every hicli command."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from hisci.errors import HisciError, Problem, UnknownPluginError
from hisci.runner import OUTPUT_POINTER

#: Documented exit codes (README, "Exit codes").
EXIT_OK = 0
EXIT_INVALID = 1      # invalid plugin, request, input file or option
EXIT_FAILED = 2       # the plugin ran and failed
EXIT_CANCELLED = 3    # the job was cancelled
EXIT_SERVICE = 4      # the service could not be reached or refused the request
EXIT_INTERNAL = 70    # a bug in hisci itself


def cli_hints(error: HisciError) -> list[str]:
    """What to type, for the problems core describes neutrally (by pointer and error type)."""
    hints: list[str] = []

    def add(text: str) -> None:
        if text not in hints:
            hints.append(text)

    if isinstance(error, UnknownPluginError):
        add(f"hicli validate {error.file}" if error.file else "hicli list shows the plugins")
    for problem in error.problems:
        hint = _problem_hint(problem)
        if hint:
            add(hint)
    return hints


def _problem_hint(problem: Problem) -> str:
    parts = problem.pointer.split("/")
    if problem.pointer == OUTPUT_POINTER:
        return "choose another folder with -o"
    if problem.pointer == "/gpu":
        return "hicli worker --queue gpu,cpu --gpu"
    if problem.pointer == "/worker_token":
        return "an admin runs: hicli user add NAME --worker (pass it with --token)"
    if problem.pointer == "/sweep":
        return "--sweep extra.center=1020:1030:0.5 or --sweep extra.alpha=0.2,0.5,0.8"
    if parts[1:2] == ["live"]:
        return "--live --watch NAME=FOLDER, --zmq NAME=tcp://HOST:PORT or --bluesky NAME=tcp://HOST:PORT"
    if problem.pointer == "/redis_url":
        return "hicli serve prints the HISCI_REDIS_URL of its Redis"
    if problem.pointer == "/data" and isinstance(problem.allowed, list) and problem.allowed:
        return "name the input: " + " or ".join(f"--input {name}={problem.given or 'PATH'}"
                                                for name in problem.allowed)
    if len(parts) == 3 and parts[1] == "data" and problem.given is None:
        return f"pass --input {parts[2]}=PATH"
    if len(parts) == 3 and parts[1] == "extra":
        return f"set it with --set extra.{parts[2]}=VALUE"
    return ""


def report(error: HisciError | str, debug: bool = False) -> None:
    text = str(error)
    click.echo(f"error: {text}", err=True)
    if isinstance(error, HisciError):
        for hint in cli_hints(error):
            click.echo(f"  hicli: {hint}", err=True)
    if debug and sys.exc_info()[0] is not None:
        import traceback

        traceback.print_exc()


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn HisciError into one message on stderr and its exit code; --debug shows the traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool((click.get_current_context().find_root().obj or {}).get("debug"))
        try:
            return func(*args, **kwargs)
        except HisciError as err:
            report(err, debug)
            sys.exit(err.exit_code)
        except (click.ClickException, click.exceptions.Exit, SystemExit, KeyboardInterrupt):
            raise
        except Exception as err:  # noqa: BLE001 - last resort: one line, code 70
            if debug:
                raise
            click.echo(f"error: internal error: {type(err).__name__}: {err} "
                       "(run with --debug for the traceback)", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper
