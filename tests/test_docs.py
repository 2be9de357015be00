"""The docs keep up with the code: subcommands, widget types, public names."""

from __future__ import annotations

from pathlib import Path

import hisci
from hicli.main import SUBCOMMANDS
from hisci.models.ui import WIDGET_TYPES

README = (Path(__file__).parents[1] / "README.md").read_text("utf-8")


def test_every_subcommand_is_in_the_readme() -> None:
    missing = [name for name in SUBCOMMANDS if f"hicli {name}" not in README]
    assert missing == []


def test_every_widget_type_is_in_the_readme() -> None:
    assert [w for w in WIDGET_TYPES if f"| `{w}` |" not in README] == []


def test_public_api_is_pinned() -> None:
    assert sorted(hisci.__all__) == [
        "HisciError", "InputError", "JobCancelled", "ParamsError", "Plugin", "PluginLoadError", "Problem",
        "Registry", "RunContext", "RunResult", "Settings", "UnknownPluginError", "ValidationError",
        "load_plugin", "run_plugin"]
    assert all(hasattr(hisci, name) for name in hisci.__all__)


def test_exit_codes_are_documented() -> None:
    from hicli import errors

    for code in (errors.EXIT_OK, errors.EXIT_INVALID, errors.EXIT_FAILED, errors.EXIT_CANCELLED,
                 errors.EXIT_SERVICE, errors.EXIT_INTERNAL):
        assert f"| {code} |" in README


def test_hicli_jobs_options_match_the_list_filters_and_are_documented() -> None:
    """`hicli jobs` offers every filter of GET /jobs, and the README names each option."""
    import inspect

    from hicli.main import cli
    from hisci.api.routes_jobs import list_jobs

    command = cli.get_command(None, "jobs")
    options = {o for p in command.params for o in p.opts if o.startswith("--")}
    filters = [name for name in inspect.signature(list_jobs).parameters if name != "request"]
    assert {f"--{f.replace('_', '-')}" for f in filters} <= options
    assert [o for o in sorted(options) if o not in README] == []
